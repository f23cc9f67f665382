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

The count is per process (each `mmo serve --workers` process has its own), kept in the
event loop's thread, so it needs no lock. Refusals are counted in /metrics
(`mmo_admission_refused_total`) beside the requests in flight per pool.
"""

from __future__ import annotations

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


def overloaded(pool: Pool) -> Refused:
    return Refused(
        503,
        code="overloaded",
        message=f"The gateway has {pool.limit} {pool.name} requests in flight: retry shortly",
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

    def __init__(self, api_limit: int, webhook_limit: int, metrics: Metrics | None = None):
        self.api = Pool("api", api_limit)
        self.webhooks = Pool("webhooks", webhook_limit)
        self.metrics = metrics
        if metrics is not None:
            for pool in (self.api, self.webhooks):
                metrics.admission_watch(pool.name, pool.count)

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
        if not pool.admit():
            if self.metrics is not None:
                self.metrics.admission_refused(pool.name)
            await send_overloaded(send, overloaded(pool))
            return
        try:
            await next_app(scope, receive, send)
        finally:
            pool.release()


__all__ = ["AdmissionMiddleware", "Pool", "overloaded"]
