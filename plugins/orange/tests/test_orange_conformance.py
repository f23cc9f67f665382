"""Orange runs the core's conformance suite on its sandbox default: WebPay (auto-pay)."""

import mmo_orange.plugin
from mmo_core.testing import ProviderConformance


class TestOrangeConformance(ProviderConformance):
    plugin = mmo_orange.plugin
    msisdn = "+2250701234567"
    currency = "XOF"
    amount = "1500"
    settings_env = {"MMO_ORANGE_CALLBACK_DELAY": "0.05"}
    # WebPay reports a refusal as a bare FAILED (no code, no text) and a cancelled payment
    # stays INITIATED [O1]: only the expiry of the prompt is told apart, so the other test
    # numbers are checked through Cameroon and Sonatel in test_orange_numbers_host.py.
    failure_scenarios = {"1037": "prompt_expired"}
