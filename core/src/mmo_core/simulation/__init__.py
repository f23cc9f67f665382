"""Building blocks every operator simulator shares.

A simulator is a small ASGI app in the plugin (Litestar by convention) that behaves like
the operator's sandbox. What is the same for all of them lives here, so that a simulator
holds only its operator's routes and payloads (docs/testing.md, "How a simulator is built"):

- `Simulation` (`base`): the base of a simulator's state. `gate` (latency, credentials,
  injected 5xx), `notify` (a callback as the scenario wants it), `hang` (injected
  timeouts), `spawn` / `close` (background work), `app` (the Litestar app, with the state
  given to handlers as `sandbox` and the `/_simulator` routes).
- `scenario(msisdn)` and `callback_plan` (`scenarios`): the shared test numbers of
  shared/DESIGN.md, by last four digits, and what each does to the callback.
- `Faults` / `FaultInjector` (`faults`): latency, 5xx answers, timeouts (the request is
  done, the answer never comes in time), dropped, duplicated, delayed and out-of-order
  callbacks, set at run time through `POST /_simulator/faults`.
- `Ledger` (`ledger`): what the operator holds as done, served at `GET /_simulator/ledger`,
  so tests can compare the gateway's records with the operator's truth.
- `CallbackSender` (`callbacks`): sends callbacks to the caller's URL after a delay.
- `simulator_routes(sim)` (`routes`): the `/_simulator` routes for a Litestar app (needs
  the `simulator` extra).
"""

from __future__ import annotations

from mmo_core.simulation.base import DEPENDENCY, Simulation
from mmo_core.simulation.callbacks import CallbackSender
from mmo_core.simulation.faults import FaultInjector, Faults
from mmo_core.simulation.ledger import Ledger
from mmo_core.simulation.routes import simulator_routes
from mmo_core.simulation.scenarios import (
    LATE_FACTOR,
    SCENARIOS,
    CallbackPlan,
    Scenario,
    callback_plan,
    scenario,
)

__all__ = [
    "DEPENDENCY",
    "LATE_FACTOR",
    "SCENARIOS",
    "CallbackPlan",
    "CallbackSender",
    "FaultInjector",
    "Faults",
    "Ledger",
    "Scenario",
    "Simulation",
    "callback_plan",
    "scenario",
    "simulator_routes",
]
