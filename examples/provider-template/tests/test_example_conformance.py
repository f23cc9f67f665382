"""Example Pay runs the core's conformance suite, as any third-party provider would."""

import mmo_example.plugin
from mmo_core.testing import ProviderConformance


class TestExampleConformance(ProviderConformance):
    plugin = mmo_example.plugin
    msisdn = "+254712345678"
    currency = "KES"
    amount = "150"
