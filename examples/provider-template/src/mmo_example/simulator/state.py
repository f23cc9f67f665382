"""Example Pay's sandbox state: tokens, payments by id, payment ids by our reference."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency
from mmo_core.simulation import Simulation

from mmo_example.settings import ExampleSettings
from mmo_example.wire import PaymentView


class ExampleSandbox(Simulation):
    def __init__(self, settings: ExampleSettings) -> None:
        super().__init__()
        self.settings = settings
        self.tokens: set[str] = set()
        self.payments: dict[str, PaymentView] = {}  # by Example Pay's id
        self.by_reference: dict[str, str] = {}  # our reference -> Example Pay's id

    def authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[ExampleSandbox]
