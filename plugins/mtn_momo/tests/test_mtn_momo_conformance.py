"""MTN MoMo runs the core's conformance suite against its own simulator."""

from typing import Any

import mmo_mtn_momo.plugin
from mmo_core.testing import ProviderConformance

# A second MoMo account: its own subscription key, API user and API key for each product,
# and its own providerCallbackHost (the kit's callback receivers listen on 127.0.0.1), so
# the simulator checks its callback URLs where the default account's users take any host.
# Its target environment stays `sandbox`: the kit pays both accounts in one currency (EUR),
# and an account of a country's environment (mtnuganda, mtnghana) is tested in
# test_mtn_momo_accounts.py.
SECOND_ACCOUNT: dict[str, Any] = {
    "collection_subscription_key": "5ec0d0a1c0115ec710c74fbd9e4bd0a1",
    "collection_api_user": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "collection_api_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "disbursement_subscription_key": "5ec0d15b0125e3e64c1f8a7b6c5d4e3f",
    "disbursement_api_user": "8b7c6d5e-4f3a-4b2c-9d1e-0f9a8b7c6d5e",
    "disbursement_api_key": "1e2d3c4b5a69788796a5b4c3d2e1f00f",
    "remittance_subscription_key": "5ec07e3175ce9a2b4c6d8e0f1a2b3c4d",
    "remittance_api_user": "7c6d5e4f-3a2b-4c1d-8e0f-9a8b7c6d5e4f",
    "remittance_api_key": "2d3c4b5a69788796a5b4c3d2e1f00f1e",
    "callback_host": "127.0.0.1",
}


class TestMtnMomoConformance(ProviderConformance):
    plugin = mmo_mtn_momo.plugin
    msisdn = "+46701234567"
    currency = "EUR"
    amount = "150"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05"}
    second_account = SECOND_ACCOUNT


class TestMtnMomoConformanceSandboxNumber(ProviderConformance):
    """MTN's own sandbox numbers: 56733123453 succeeds, 46733123451 is rejected."""

    plugin = mmo_mtn_momo.plugin
    msisdn = "+56733123453"
    declined_msisdn = "+46733123451"
    currency = "EUR"
    amount = "1500"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05", "MMO_MTN_MOMO_CALLBACK_METHOD": "POST"}
    second_account = SECOND_ACCOUNT


class TestMtnMomoConformanceDisbursement(ProviderConformance):
    plugin = mmo_mtn_momo.plugin
    msisdn = "+46701234567"
    currency = "EUR"
    amount = "59"
    payment_type = "disbursement"
    settings_env = {"MMO_MTN_MOMO_CALLBACK_DELAY": "0.05"}
    second_account = SECOND_ACCOUNT
