"""M-Pesa runs the core's conformance suite against its own simulator."""

import mmo_mpesa.plugin
from mmo_core.testing import ProviderConformance


class TestMpesaConformance(ProviderConformance):
    plugin = mmo_mpesa.plugin
    msisdn = "+254712345678"
    currency = "KES"
    amount = "150"
    settings_env = {"MMO_MPESA_CALLBACK_DELAY": "0.05"}
