"""Example Pay's sandbox state: tokens, payments by id, payment ids by our reference."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency
from mmo_core.simulation import Simulation

from mmo_example.settings import ExampleSettings
from mmo_example.wire import PaymentView


class ExampleSandbox(Simulation):
    """Every account's credentials are accepted; a token, a payment and a reference
    belong to one account, and another account's token does not see them (404)."""

    def __init__(
        self, settings: ExampleSettings, accounts: dict[str, ExampleSettings] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.accounts = accounts or {"default": settings}
        self.tokens: dict[str, str] = {}  # token -> account
        self.payments: dict[str, PaymentView] = {}  # by Example Pay's id
        self.owner: dict[str, str] = {}  # Example Pay's id -> account
        self.by_reference: dict[tuple[str, str], str] = {}  # (account, reference) -> id

    def account_of(self, client_id: str, client_secret: str) -> str | None:
        for name, settings in self.accounts.items():
            if (client_id, client_secret) == (settings.client_id, settings.client_secret):
                return name
        return None

    def authorised(self, request: Request) -> str | None:
        """The account of the request's token, or None."""
        header = request.headers.get("authorization", "")
        return self.tokens.get(header[7:]) if header.startswith("Bearer ") else None


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[ExampleSandbox]
