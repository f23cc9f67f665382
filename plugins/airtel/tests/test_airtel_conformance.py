"""Airtel Money runs the core's conformance suite against its own simulator."""

import mmo_airtel.plugin
from mmo_core.testing import ProviderConformance


class TestAirtelConformance(ProviderConformance):
    plugin = mmo_airtel.plugin
    msisdn = "+256712345678"
    currency = "UGX"
    amount = "5000"
    settings_env = {"MMO_AIRTEL_CALLBACK_DELAY": "0.05"}
    # a second Airtel Uganda application (another merchant): its own client id and secret
    second_account = {
        "client_id": "airtel-uganda-second-client",
        "client_secret": "airtel-uganda-second-secret",
        "countries": "UG",
    }


class TestAirtelConformanceSignedCallbacks(ProviderConformance):
    """The same round trip with callback authentication on (callbacks carry `hash`)."""

    plugin = mmo_airtel.plugin
    msisdn = "+260971234567"
    currency = "ZMW"
    amount = "150.50"
    settings_env = {"MMO_AIRTEL_CALLBACK_AUTH": "true", "MMO_AIRTEL_CALLBACK_DELAY": "0.05"}
    # Airtel Zambia's own application: its credentials, its callback private key, its
    # country (X-Country ZM for calls about no payment, and only ZM)
    second_account = {
        "client_id": "airtel-zambia-client",
        "client_secret": "airtel-zambia-secret",
        "callback_private_key": "airtel-zambia-callback-key",
        "country": "ZM",
        "currency": "ZMW",
        "countries": "ZM",
    }
