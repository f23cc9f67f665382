"""`Simulation`: the base every operator simulator's state builds on.

An operator's simulator subclasses `Simulation` for its state (tokens, transactions and
their indexes) and writes only its operator's routes and payloads. The base owns what is
the same for every operator: the injected faults, the ledger, the callbacks (and which
scenario sends them once, never, twice or late), background work, shutdown, and the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mmo_core.simulation.callbacks import CallbackSender
from mmo_core.simulation.faults import FaultInjector
from mmo_core.simulation.ledger import Ledger
from mmo_core.simulation.scenarios import Scenario, callback_plan

if TYPE_CHECKING:
    from litestar import Litestar

R = TypeVar("R")

# The name under which route handlers receive the simulator's state (`sandbox: MySandbox`).
DEPENDENCY = "sandbox"


class Simulation:
    """The state of one simulator: faults, ledger, callbacks and background tasks."""

    def __init__(self) -> None:
        self.injector = FaultInjector()
        self.ledger = Ledger()
        self.callbacks = CallbackSender(self.injector)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- requests ------------------------------------------------------------------------

    async def gate(
        self, authorise: Callable[[], R | None], fault: Callable[[int], R] | None = None
    ) -> R | None:
        """What an operator endpoint does first: the injected latency, then the caller's
        credentials (`authorise` answers the operator's refusal, or None), then an injected
        5xx (answered with `fault(status)`; None skips that step). None: go ahead."""
        await self.injector.latency()
        refused = authorise()
        if refused is not None:
            return refused
        if fault is not None:
            status = self.injector.error_status()
            if status is not None:
                return fault(status)
        return None

    async def hang(self, late: bool | None = None) -> None:
        """After the request was done: the injected timeout, if it strikes (`late`: drawn
        beforehand with `self.injector.strikes_hang()`, when what the request does depends
        on whether its caller will see the answer)."""
        await self.injector.maybe_hang(late)

    # -- callbacks -----------------------------------------------------------------------

    def notify(
        self,
        url: str,
        body: bytes,
        *,
        case: Scenario = "success",
        delay: float,
        lead: float = 0.0,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> bool:
        """Send a callback as the scenario wants it (`callback_plan`), through the injected
        callback faults. False when the scenario sends none."""
        plan = callback_plan(case, delay, lead=lead)
        if not plan.copies:
            return False
        self.callbacks.schedule(
            url, body, headers=headers, method=method, delay=plan.delay, copies=plan.copies
        )
        return True

    # -- background work and shutdown ----------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` in the background; it is cancelled when the simulator shuts down."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel background work and pending callbacks; close the callback client."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.callbacks.close()

    # -- the app -------------------------------------------------------------------------

    def app(
        self,
        route_handlers: Iterable[Any],
        *,
        exception_handlers: Mapping[Any, Any] | None = None,
        on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
    ) -> Litestar:
        """The simulator's Litestar app: the operator's routes, the `/_simulator` routes,
        this state given to every handler that asks for `sandbox`, closed on shutdown."""
        from litestar import Litestar
        from litestar.di import Provide

        from mmo_core.simulation.routes import simulator_routes

        def provide() -> Simulation:
            return self

        app = Litestar(
            route_handlers=[*route_handlers, *simulator_routes(self)],
            dependencies={DEPENDENCY: Provide(provide, use_cache=True, sync_to_thread=False)},
            exception_handlers=dict(exception_handlers or {}),
            on_shutdown=[*on_shutdown, self.close],
            openapi_config=None,
        )
        app.state.simulation = self
        return app


__all__ = ["DEPENDENCY", "Simulation"]
