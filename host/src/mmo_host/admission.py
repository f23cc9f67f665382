"""Admission control: past its capacity the host refuses at once instead of queueing.

A process has a bounded number of API requests in flight (`MMO_MAX_IN_FLIGHT`); one more
is answered `503 overloaded` with `Retry-After: 1` before it reads its body, looks up its
key or touches the database, so what cannot be served costs the host almost nothing and
the caller hears so in milliseconds instead of waiting seconds in a queue.

Operators' webhooks (`hygiene.WEBHOOK_PREFIX`) count against a limit of their own
(`MMO_MAX_IN_FLIGHT_WEBHOOKS`): however many payment POSTs arrive, callbacks keep their
share of the process, so they are stored and applied and their payments need no poll. A
webhook over its own limit is refused the same way (operators send a callback again after
a 503). Everything outside `/api/` (health, metrics, the dashboard, mounted simulators) is
never counted nor refused: a mounted simulator is called by the API requests in flight.

A count of requests cannot tell a process whose requests wait for their operator (cheap)
from one whose CPU is spent (each request makes the rest slower): so API requests are
also refused while the event loop runs late (`MMO_MAX_LOOP_LAG_MS`). `LoopLag` wakes every
20 ms and measures how late it woke: a process whose CPU is taken runs every other ready
callback first. Its figure rises at once and falls smoothly, so that a saturated host sheds
new payments until the work it holds (callbacks, their confirmations, events) has caught
up, instead of letting every payment slow down together. Webhooks are not refused for
lag: they are the work that ends payments.

The count is per process (each `mmo serve --workers` process has its own), kept in the
event loop's thread, so it needs no lock. Refusals are counted in /metrics
(`mmo_admission_refused_total`) beside the requests in flight per pool, and the lag as
`mmo_loop_lag_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from mmo_host.hygiene import API_PREFIX, WEBHOOK_PREFIX, Refused

if TYPE_CHECKING:
    from mmo_host.metrics import Metrics

RETRY_AFTER = b"1"  # seconds: requests in flight last tens to hundreds of milliseconds


class Pool:
    """The requests in flight of one family of routes, and its limit (0: no limit)."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    def admit(self) -> bool:
        if self.limit and self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def count(self) -> float:
        return float(self.in_flight)


class LoopLag:
    """How late this process's event loop runs a timer, smoothed (seconds).

    `limit_ms` 0: measured, never refusing. The figure takes a late wake-up at once and
    falls by a third of the gap per tick (about 120 ms from 100 ms to 10 ms)."""

    INTERVAL = 0.02

    def __init__(self, limit_ms: float) -> None:
        self.limit = limit_ms / 1000
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def busy(self) -> bool:
        return self.limit > 0 and self.lag > self.limit

    def read(self) -> float:
        return self.lag

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.INTERVAL)
            late = max(0.0, loop.time() - started - self.INTERVAL)
            self.lag = late if late > self.lag else self.lag + (late - self.lag) / 3

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.lag = 0.0


def overloaded(pool: Pool) -> Refused:
    return Refused(
        503,
        code="overloaded",
        message=f"The gateway has {pool.limit} {pool.name} requests in flight: retry shortly",
    )


def lagging(lag: LoopLag) -> Refused:
    return Refused(
        503,
        code="overloaded",
        message=(
            f"The gateway is at capacity (its work runs {lag.lag * 1000:.0f} ms late): "
            "retry shortly"
        ),
    )


async def send_overloaded(send: Send, refused: Refused) -> None:
    """The error body every route answers (mmo_host.errors), with `Retry-After`; the
    request's body is left unread (the server drops it, the connection stays open)."""
    body = msgspec.json.encode({"error": {"code": refused.code, "message": refused.message}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", RETRY_AFTER),
    ]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AdmissionMiddleware(ASGIMiddleware):
    """Counts API and webhook requests in flight; over a pool's limit, refuses at once."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        api_limit: int,
        webhook_limit: int,
        metrics: Metrics | None = None,
        lag: LoopLag | None = None,
    ):
        self.api = Pool("api", api_limit)
        self.webhooks = Pool("webhooks", webhook_limit)
        self.lag = lag or LoopLag(0)
        self.metrics = metrics
        if metrics is not None:
            for pool in (self.api, self.webhooks):
                metrics.admission_watch(pool.name, pool.count)
            metrics.loop_lag_watch(self.lag.read)

    def pool_of(self, path: str) -> Pool | None:
        if path.startswith(WEBHOOK_PREFIX):
            return self.webhooks
        if path.startswith(API_PREFIX):
            return self.api
        return None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        pool = self.pool_of(scope["path"])
        if pool is None:
            await next_app(scope, receive, send)
            return
        if pool is self.api and self.lag.busy():
            pool.refused += 1
            if self.metrics is not None:
                self.metrics.admission_refused("lag")
            await send_overloaded(send, lagging(self.lag))
            return
        if not pool.admit():
            if self.metrics is not None:
                self.metrics.admission_refused(pool.name)
            await send_overloaded(send, overloaded(pool))
            return
        try:
            await next_app(scope, receive, send)
        finally:
            pool.release()


__all__ = ["AdmissionMiddleware", "LoopLag", "Pool", "lagging", "overloaded"]
