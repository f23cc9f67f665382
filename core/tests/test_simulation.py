"""The simulator base: scenario -> callback plan, notify, gate, background work, the app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar import get
from litestar.di import NamedDependency
from mmo_core.simulation import LATE_FACTOR, Faults, Simulation, callback_plan, scenario


class Box(Simulation):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


@get("/whoami", sync_to_thread=False)
def whoami(sandbox: NamedDependency[Box]) -> dict[str, str]:
    return {"name": sandbox.name}


@pytest.mark.parametrize(
    ("number", "copies", "delay"),
    [
        ("254700000000", 1, 2.0),
        ("254700009990", 0, 2.0),
        ("254700009991", 2, 2.0),
        ("254700009992", 1, 2.0 * LATE_FACTOR),
        ("254700000001", 1, 2.0),
    ],
)
def test_callback_plan_follows_the_test_numbers(number, copies, delay):
    assert callback_plan(scenario(number), 2.0) == (copies, delay)


def test_a_lead_is_not_scaled_by_a_late_callback():
    assert callback_plan("late_callback", 1.0, lead=0.5) == (1, 0.5 + LATE_FACTOR)


async def test_notify_schedules_as_the_scenario_wants():
    sim = Simulation()
    scheduled: list[dict[str, Any]] = []
    sim.callbacks.schedule = lambda url, body, **kw: scheduled.append({"url": url, **kw})  # type: ignore[method-assign]
    assert sim.notify("http://x/cb", b"{}", case="no_callback", delay=1.0) is False
    assert sim.notify("http://x/cb", b"{}", case="double_callback", delay=1.0, method="PUT")
    assert scheduled == [
        {"url": "http://x/cb", "headers": None, "method": "PUT", "delay": 1.0, "copies": 2}
    ]


async def test_gate_checks_credentials_before_injected_failures():
    sim = Simulation()
    sim.injector.configure(Faults(error_rate=1.0, error_status=503))
    assert await sim.gate(lambda: "refused", lambda status: status) == "refused"
    assert await sim.gate(lambda: None, lambda status: status) == 503
    assert await sim.gate(lambda: None) is None


async def test_close_cancels_background_work():
    sim = Simulation()
    sim.spawn(asyncio.sleep(60))
    assert sim._tasks
    await sim.close()
    assert not sim._tasks


async def test_each_app_hands_its_own_state_to_shared_handlers():
    one, two = Box("one"), Box("two")
    apps = [one.app([whoami]), two.app([whoami])]
    for app, name in zip(apps, ("one", "two"), strict=True):
        assert app.state.simulation.name == name
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            assert (await http.get("/whoami")).json() == {"name": name}
            assert (await http.get("/_simulator/ledger")).json()["entries"] == []
