from typing import ClassVar

from mmo_core.settings import ProviderSettings


class ExampleSettings(ProviderSettings):  # kw_only and forbid_unknown_fields are inherited
    """Filled from `MMO_EXAMPLE_*` variables; the defaults are the simulator's."""

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    webhook_secret: str = "sandbox-webhook-secret"
    # simulator only: seconds between a request and its callback
    callback_delay: float = 0.2

    required_in_production: ClassVar[tuple[str, ...]] = (
        "base_url",
        "client_id",
        "client_secret",
        "webhook_secret",
    )
    secret_fields: ClassVar[tuple[str, ...]] = (
        "callback_secret",
        "client_secret",
        "webhook_secret",
    )
