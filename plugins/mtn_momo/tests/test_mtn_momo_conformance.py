"""MTN MoMo runs the core's conformance suite against its own simulator."""

import mmo_mtn_momo.plugin
from mmo_core.testing import ProviderConformance


class TestMtnMomoConformance(ProviderConformance):
    plugin = mmo_mtn_momo.plugin
    msisdn = "+46701234567"
    currency = "EUR"
    amount = "150"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05"}


class TestMtnMomoConformanceSandboxNumber(ProviderConformance):
    """MTN's own sandbox numbers: 56733123453 succeeds, 46733123451 is rejected."""

    plugin = mmo_mtn_momo.plugin
    msisdn = "+56733123453"
    declined_msisdn = "+46733123451"
    currency = "EUR"
    amount = "1500"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05", "MMO_MTN_MOMO_CALLBACK_METHOD": "POST"}


class TestMtnMomoConformanceDisbursement(ProviderConformance):
    plugin = mmo_mtn_momo.plugin
    msisdn = "+46701234567"
    currency = "EUR"
    amount = "59"
    payment_type = "disbursement"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05"}
