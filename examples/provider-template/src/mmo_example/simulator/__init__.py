"""A simulator of Example Pay's sandbox, over real HTTP.

OAuth client credentials (`POST /oauth/token`, Basic auth), payments created with
`POST /v1/payments` (our reference is the idempotency key: a reused one answers 409),
read with `GET /v1/payments/{id}` or `/v1/payments/by-reference/{reference}`, and a signed
callback to the payment's callback URL after `callback_delay` seconds. Test numbers follow
shared/DESIGN.md.

Built on `mmo_core.simulation.Simulation`, the way every simulator is (docs/testing.md):
`state.ExampleSandbox` holds the state, indexed by what it is looked up by; one module per
API family (`oauth`, `payments`) holds only the operator's routes and payloads. The base
owns the test numbers' callbacks, faults, the ledger and the `/_simulator` routes.
"""

from __future__ import annotations

from litestar import Litestar

from mmo_example.settings import ExampleSettings
from mmo_example.simulator import oauth, payments
from mmo_example.simulator.state import ExampleSandbox


def create_simulator(
    settings: ExampleSettings, accounts: dict[str, ExampleSettings] | None = None
) -> Litestar:
    sandbox = ExampleSandbox(settings, accounts)
    return sandbox.app([*oauth.ROUTES, *payments.ROUTES])


__all__ = ["ExampleSandbox", "create_simulator"]
