"""M-Pesa runs the core's conformance suite against its own simulator."""

import mmo_mpesa.plugin
from mmo_core.testing import ProviderConformance

# A second paybill: another Daraja app (consumer key and secret), its own STK shortcode
# and passkey, B2C and C2B shortcodes and initiator.
SECOND_PAYBILL = {
    "consumer_key": "mmo-second-paybill-key",
    "consumer_secret": "mmo-second-paybill-secret",
    "shortcode": "600100",
    "passkey": "2c0e51b8d5f3a9e47c1b6d28f0a4e9c35b7d1f6a82e4c09b3d5f7a1c6e8b2d40",
    "b2c_shortcode": "600997",
    "c2b_shortcode": "600985",
    "initiator_name": "secondapi",
    "initiator_password": "Second#Paybill%1",
}


class TestMpesaConformance(ProviderConformance):
    plugin = mmo_mpesa.plugin
    msisdn = "+254712345678"
    currency = "KES"
    amount = "150"
    settings_env = {"MMO_MPESA_CALLBACK_DELAY": "0.05"}
    second_account = SECOND_PAYBILL
