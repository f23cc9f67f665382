"""Orange runs the core's conformance suite on two of its families: WebPay (auto-pay, the
sandbox default) and Orange Cameroon (USSD push). Each runs with a second account of other
credentials in the same simulator (`second_account`)."""

from typing import Any, ClassVar

import mmo_orange.plugin
from mmo_core.testing import ProviderConformance

# Another Orange merchant: its own application (client credentials and merchant key) and
# WebPay offer (a country: one application serves one country [O1]), its own Orange
# Cameroon consumer and channel user, its own Sonatel client, merchant code and retailer.
SECOND_ACCOUNT: dict[str, Any] = {
    "client_id": "second-orange-client",
    "client_secret": "second-orange-secret",
    "merchant_key": "5e1f0c44",
    "webpay_country": "ci",
    "cameroon_consumer_key": "second-cm-key",
    "cameroon_consumer_secret": "second-cm-secret",
    "cameroon_auth_token": "c2Vjb25kLWNoYW5uZWw6c2Vjb25kLXBhc3N3b3Jk",
    "cameroon_channel_msisdn": "699887766",
    "cameroon_pin": "4321",
    "sonatel_client_id": "second-sonatel-client",
    "sonatel_client_secret": "second-sonatel-secret",
    "sonatel_merchant_code": "771100",
    "sonatel_retailer_msisdn": "781112233",
    "sonatel_pin": "8642",
    "sonatel_api_key": "second-sonatel-callback-key",
}


class TestOrangeConformance(ProviderConformance):
    plugin = mmo_orange.plugin
    msisdn = "+2250701234567"
    currency = "XOF"
    amount = "1500"
    settings_env = {"MMO_ORANGE_CALLBACK_DELAY": "0.05"}
    # WebPay reports a refusal as a bare FAILED (no code, no text) and a cancelled payment
    # stays INITIATED [O1]: only the expiry of the prompt is told apart, so the other test
    # numbers are checked through Cameroon (below) and Sonatel (test_orange_numbers_host.py).
    failure_scenarios = {"1037": "prompt_expired"}
    second_account: ClassVar[dict[str, Any]] = SECOND_ACCOUNT


class TestOrangeCameroonConformance(ProviderConformance):
    plugin = mmo_orange.plugin
    msisdn = "+237699124567"
    currency = "XAF"
    amount = "1500"
    settings_env = {"MMO_ORANGE_CALLBACK_DELAY": "0.05"}
    second_account: ClassVar[dict[str, Any]] = SECOND_ACCOUNT
