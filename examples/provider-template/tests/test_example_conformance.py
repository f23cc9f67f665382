"""Example Pay runs the core's conformance suite, as any third-party provider would."""

import mmo_example.plugin
from mmo_core.testing import ProviderConformance


class TestExampleConformance(ProviderConformance):
    plugin = mmo_example.plugin
    msisdn = "+254712345678"
    currency = "KES"
    amount = "150"
    # a second account of Example Pay: other client credentials and webhook secret
    second_account = {
        "client_id": "second-client",
        "client_secret": "second-secret",
        "webhook_secret": "second-webhook-secret",
    }
