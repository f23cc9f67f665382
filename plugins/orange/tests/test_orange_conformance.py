"""Orange runs the core's conformance suite on its sandbox default: WebPay (auto-pay)."""

import mmo_orange.plugin
from mmo_core.testing import ProviderConformance


class TestOrangeConformance(ProviderConformance):
    plugin = mmo_orange.plugin
    msisdn = "+2250701234567"
    currency = "XOF"
    amount = "1500"
    settings_env = {"MMO_ORANGE_CALLBACK_DELAY": "0.05"}
