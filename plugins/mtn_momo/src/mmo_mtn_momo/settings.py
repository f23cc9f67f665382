"""Settings of the MTN MoMo plugin, filled from `MMO_MTN_MOMO_*` variables.

The defaults are the simulator's pre-provisioned sandbox users, so `mmo serve` works out of
the box in the sandbox. Each MoMo product (collection, disbursement, remittance) has its own
subscription key (`Ocp-Apim-Subscription-Key`), API user and API key.
"""

from typing import ClassVar

from mmo_core.settings import ProviderSettings


class MtnMomoSettings(ProviderSettings):  # kw_only and forbid_unknown_fields are inherited
    # `X-Target-Environment`: "sandbox" (EUR) or a country's value such as "mtnuganda"
    target_environment: str = "sandbox"
    # Against the gateway's own simulator with `target_environment` "sandbox" (the default
    # sandbox), a payment goes to its country's environment: MTN's names (UG=mtnuganda,
    # GH=mtnghana, CM=mtncameroon, ...), changed here as "UG=mtnuganda,CI=mtnivorycoast".
    # Pointed at MTN's own sandbox (`base_url` set), "sandbox" stays: EUR only.
    country_environments: str = ""

    collection_subscription_key: str = "c0115ec710c74fbd9e4bd0a1c2b3d4e5"
    collection_api_user: str = "0b1c7a52-5f3e-4d8a-9c61-2e7f3a4b5c6d"
    collection_api_key: str = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

    disbursement_subscription_key: str = "d15b0125e3e64c1f8a7b6c5d4e3f2a10"
    disbursement_api_user: str = "1c2d8b63-6a4f-4e9b-8d72-3f8a4b5c6d7e"
    disbursement_api_key: str = "b2c3d4e5f60718293a4b5c6d7e8f90a1"

    remittance_subscription_key: str = "7e3175ce9a2b4c6d8e0f1a2b3c4d5e6f"
    remittance_api_user: str = "2d3e9c74-7b5a-4fac-9e83-4a9b5c6d7e8f"
    remittance_api_key: str = "c3d4e5f60718293a4b5c6d7e8f90a1b2"

    # `providerCallbackHost` of API users created by `mmo setup mtn_momo`; empty: the host
    # name of the gateway's public URL
    callback_host: str = ""
    # collections: "requesttopay" (MTN's usual debit request) or "requesttowithdraw"; a
    # payment's metadata {"mtn_momo_collection": "requesttowithdraw"} chooses per payment
    collection_mode: str = "requesttopay"
    # disbursements: "transfer" or "deposit" (both pay a payee from the disbursement account)
    disbursement_mode: str = "transfer"
    # version of the refund, deposit and requesttowithdraw creates: "v1_0" or "v2_0"
    # (their status reads exist in v1_0 only)
    create_version: str = "v1_0"
    # resends of a create whose answer was lost (same X-Reference-Id: never a second payment)
    resend_attempts: int = 2

    # -- simulator only ----------------------------------------------------------------------
    # seconds between a request and its callback
    callback_delay: float = 0.5
    # "PUT" (MoMo's API description) or "POST" (seen on the sandbox in 2026)
    callback_method: str = "PUT"
    # seconds the "ongoing" number 46733123453 answers PENDING before it succeeds
    ongoing_seconds: float = 30.0
    # HTTP status of a token request with wrong credentials: 500 (seen) or 401 (documented)
    login_failed_status: int = 500
    # how MTN's error test numbers (…55 to …63) fail: "async" (202, then FAILED + reason)
    # or "sync" (an HTTP error with {code, message} on the create)
    sandbox_errors: str = "async"
    # lifetime of the simulator's access tokens, seconds
    token_lifetime: int = 3600

    required_in_production: ClassVar[tuple[str, ...]] = (
        "base_url",
        "target_environment",
        "collection_subscription_key",
        "collection_api_user",
        "collection_api_key",
    )
    secret_fields: ClassVar[tuple[str, ...]] = (
        "callback_secret",
        "collection_subscription_key",
        "collection_api_key",
        "disbursement_subscription_key",
        "disbursement_api_key",
        "remittance_subscription_key",
        "remittance_api_key",
    )

    def credentials(self, product: str) -> tuple[str, str, str]:
        """(subscription key, API user, API key) of a product."""
        return (
            getattr(self, f"{product}_subscription_key"),
            getattr(self, f"{product}_api_user"),
            getattr(self, f"{product}_api_key"),
        )
