"""The `/_simulator` routes every simulator serves (needs the `simulator` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from mmo_core.simulation.faults import Faults

if TYPE_CHECKING:
    from mmo_core.simulation.base import Simulation


def simulator_routes(sim: Simulation) -> list[Any]:
    """`GET /_simulator/ledger`, `POST` and `GET /_simulator/faults` as Litestar handlers."""
    from litestar import Request, get, post
    from litestar.exceptions import ValidationException
    from litestar.params import FromQuery

    @get("/_simulator/ledger", sync_to_thread=False, include_in_schema=False)
    def ledger(account: FromQuery[str | None] = None) -> dict[str, Any]:
        """Every entry, or with `?account=` one account's (an entry without `account`
        belongs to `default`)."""
        entries = sim.ledger.entries()
        if account is not None:
            entries = [e for e in entries if e.get("account", "default") == account]
        return {"entries": entries, "callbacks_sent": list(sim.callbacks.sent)}

    @post("/_simulator/faults", include_in_schema=False, status_code=200)
    async def faults(request: Request) -> dict[str, Any]:
        try:
            new = msgspec.json.decode(await request.body(), type=Faults)
        except (msgspec.MsgspecError, ValueError) as exc:
            raise ValidationException(str(exc)) from None
        sim.injector.configure(new)
        return msgspec.to_builtins(new)

    @get("/_simulator/faults", sync_to_thread=False, include_in_schema=False)
    def current_faults() -> dict[str, Any]:
        return msgspec.to_builtins(sim.injector.faults)

    return [ledger, faults, current_faults]


__all__ = ["simulator_routes"]
