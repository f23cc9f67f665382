"""The gateway's Prometheus metrics: every metric is defined here, one registry per app.

`GET /metrics` (text exposition; `MMO_METRICS=false` turns it off) serves them. Counted
where things happen, one call each:

- HTTP requests by method, route template and status (`ObserveMiddleware`, which also
  gives every request its id: mmo_host.logs);
- operator calls by provider, account, hook and outcome, with their latency
  (`operator_call`, around `mmo_host.operator.call`);
- each account's outbound rate limit: calls that waited for their slot, calls queued for
  a later one, operator 429 pauses (`outbound_*`, from `mmo_host.outbound`);
- callbacks by outcome flag (`callback`, where `callbacks._mark` writes it);
- payments reaching a status, by provider, type, status and gateway failure code
  (`transition`, in `payments.apply_transition`);
- event deliveries by event type and outcome (`delivery`, in the worker);
- requests refused by admission control, by pool (`admission_refused`, from
  `mmo_host.admission`), beside each pool's requests in flight (read when scraped).

Read from their owners when Prometheus scrapes (`exposition`): circuit-breaker state per
key, the job queue (open and due jobs per kind, age of the oldest due job), open attention
entries, and token refreshes (`TokenCache.fetches`: the core keeps the count and knows
nothing of Prometheus; the host reads it).

Each app has its own `Metrics` (`of(gateway)`), so two apps in one process never share a
series. `_mark` is given no gateway: it counts into the `Metrics` bound for the request or
the worker (`use`), and counts nothing outside them.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from mmo_core.errors import MmoError, OutcomeUnknown, ProviderUnavailable
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from mmo_host import attention, db, logs
from mmo_host.breaker import breaker_key

if TYPE_CHECKING:
    from mmo_host.gateway import Gateway
    from mmo_host.records import EventRecord, JobRecord, PaymentRecord

log = logs.get_logger("mmo.metrics")
http_log = logs.get_logger("mmo.http")
operator_log = logs.get_logger("mmo.operator")
payment_log = logs.get_logger("mmo.payments")
callback_log = logs.get_logger("mmo.callbacks")
event_log = logs.get_logger("mmo.events")

# seconds: operators answer in tens of milliseconds to tens of seconds
OPERATOR_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BREAKER_STATES = ("closed", "half_open", "open")


class _TokenRefreshes(Collector):
    """`mmo_token_refreshes_total`: the gateway token cache's fetches, read at scrape."""

    def __init__(self) -> None:
        self.value = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "mmo_token_refreshes",
            "Access tokens fetched from operators (by this process's token cache)",
            value=self.value,
        )

    def describe(self) -> Iterator[CounterMetricFamily]:
        return self.collect()


class Metrics:
    """One app's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "mmo_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "mmo_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.operator_seconds = Histogram(
            "mmo_operator_call_duration_seconds",
            "Calls to a provider's hook (the operator's API), by provider, account, hook "
            "and outcome (ok, refused, unavailable, unknown, timeout, error)",
            ["provider", "account", "hook", "outcome"],
            buckets=OPERATOR_BUCKETS,
            registry=r,
        )
        self.operator_skipped = Counter(
            "mmo_operator_calls_not_made",
            "Calls not made because the circuit breaker was open",
            ["provider", "account", "hook"],
            registry=r,
        )
        # each account's outbound rate limit (mmo_host.outbound)
        self.outbound_waits = Counter(
            "mmo_outbound_waits",
            "Operator calls that waited in process for their account's next slot",
            ["provider", "account"],
            registry=r,
        )
        self.outbound_wait_seconds = Histogram(
            "mmo_outbound_wait_seconds",
            "How long operator calls waited for their account's next slot",
            ["provider", "account"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.outbound_queued = Counter(
            "mmo_outbound_queued",
            "Operator calls not made because their account's next slot was too far "
            "(a send is queued for its slot)",
            ["provider", "account", "hook"],
            registry=r,
        )
        self.outbound_pauses = Counter(
            "mmo_outbound_pauses",
            "Operator 429 answers that paused the whole account for their Retry-After",
            ["provider", "account"],
            registry=r,
        )
        self.callbacks = Counter(
            "mmo_callbacks",
            "Operators' callbacks, by outcome flag (applied, accepted, or the flag kept on "
            "the callback: unmatched, unverified, duplicate, ...)",
            ["outcome"],
            registry=r,
        )
        self.payments = Counter(
            "mmo_payments",
            "Payments reaching a status, by provider, type, status and gateway failure code",
            ["provider", "type", "status", "failure_code"],
            registry=r,
        )
        self.deliveries = Counter(
            "mmo_event_deliveries",
            "Attempts to deliver an event to an orchestrator URL, by event type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        # admission control (mmo_host.admission): refusals, and what is in flight now
        self.admission_refusals = Counter(
            "mmo_admission_refused",
            "Requests refused 503 overloaded: their pool (api, webhooks) was full, or (lag) "
            "the process's event loop ran later than MMO_MAX_LOOP_LAG_MS",
            ["pool"],
            registry=r,
        )
        self.admission_in_flight = Gauge(
            "mmo_admission_in_flight",
            "Requests in flight in this process, by admission pool (api, webhooks)",
            ["pool"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "mmo_loop_lag_seconds",
            "How late this process's event loop runs a timer, smoothed (admission control)",
            registry=r,
        )
        self.breaker_state = Gauge(
            "mmo_breaker_state",
            "Circuit-breaker state per key: 1 for the state it is in, 0 for the others",
            ["key", "provider", "account", "state"],
            registry=r,
        )
        self.breaker_failures = Gauge(
            "mmo_breaker_recent_failures",
            "Failures counted by the breaker within its window",
            ["key", "provider", "account"],
            registry=r,
        )
        self.jobs_open = Gauge("mmo_jobs_open", "Jobs not done, by kind", ["kind"], registry=r)
        self.jobs_due = Gauge(
            "mmo_jobs_due",
            "Jobs due now and not held by a worker (the queue's depth), by kind",
            ["kind"],
            registry=r,
        )
        self.jobs_oldest_due = Gauge(
            "mmo_jobs_oldest_due_age_seconds",
            "How long the oldest due job has waited past its time, by kind",
            ["kind"],
            registry=r,
        )
        self.attention_open = Gauge(
            "mmo_attention_open", "Open attention entries (payments for a person)", registry=r
        )
        self.database_up = Gauge(
            "mmo_metrics_database_up",
            "1 when the scrape could read the database (jobs, attention), else 0",
            registry=r,
        )
        self.token_refreshes = _TokenRefreshes()
        r.register(self.token_refreshes)

    # -- counted where it happens ------------------------------------------------------------

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def admission_refused(self, pool: str) -> None:
        self.admission_refusals.labels(pool).inc()

    def loop_lag_watch(self, lag: Callable[[], float]) -> None:
        self.loop_lag.set_function(lag)

    def admission_watch(self, pool: str, in_flight: Callable[[], float]) -> None:
        """Read a pool's requests in flight when scraped; its refusals start at 0."""
        self.admission_in_flight.labels(pool).set_function(in_flight)
        self.admission_refusals.labels(pool)

    # -- read at scrape time -----------------------------------------------------------------

    async def refresh(self, gateway: Gateway) -> None:
        """Read the state that has an owner elsewhere: breakers, jobs, attention, tokens."""
        self.token_refreshes.value = gateway.tokens.fetches
        self.breaker_state.clear()
        self.breaker_failures.clear()
        for name, provider in sorted(gateway.registry.providers.items()):
            for account in gateway.accounts.get(name, {}):
                countries = (
                    provider.declaration.countries
                    if provider.declaration.breaker_per_country
                    else ()
                )
                for country in (None, *countries):
                    key = breaker_key(provider, country, account)
                    state = await gateway.breakers.state(key)
                    for each in BREAKER_STATES:
                        value = 1.0 if state.state == each else 0.0
                        self.breaker_state.labels(key, name, account, each).set(value)
                    self.breaker_failures.labels(key, name, account).set(state.failures)
        for gauge in (self.jobs_open, self.jobs_due, self.jobs_oldest_due):
            gauge.clear()
        try:
            rows = await db.fetch(
                """SELECT kind, count(*) AS open,
                          count(*) FILTER (WHERE run_at <= now()
                              AND (locked_until IS NULL OR locked_until < now())) AS due,
                          EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE run_at <= now()
                              AND (locked_until IS NULL OR locked_until < now()))) AS oldest
                   FROM jobs WHERE done_at IS NULL GROUP BY kind"""
            )
            open_entries = await attention.count_open()
        except Exception as exc:  # the database is down: say so, keep serving the rest
            log.warning("metrics: database not readable", error=type(exc).__name__)
            self.database_up.set(0)
            return
        self.database_up.set(1)
        for row in rows:
            self.jobs_open.labels(row["kind"]).set(row["open"])
            self.jobs_due.labels(row["kind"]).set(row["due"])
            self.jobs_oldest_due.labels(row["kind"]).set(float(row["oldest"] or 0))
        self.attention_open.set(open_entries)

    async def exposition(self, gateway: Gateway) -> bytes:
        await self.refresh(gateway)
        return generate_latest(self.registry)


# -- which app's metrics ---------------------------------------------------------------------

_BY_GATEWAY: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()
_CURRENT: ContextVar[Metrics | None] = ContextVar("mmo_metrics", default=None)


def of(gateway: Gateway) -> Metrics:
    """The metrics of the app whose gateway this is."""
    found = _BY_GATEWAY.get(gateway)
    if found is None:
        found = _BY_GATEWAY[gateway] = Metrics()
    return found


@contextmanager
def use(metrics: Metrics) -> Iterator[None]:
    """Count into `metrics` what is counted without a gateway at hand (callbacks)."""
    token = _CURRENT.set(metrics)
    try:
        yield
    finally:
        _CURRENT.reset(token)


# -- the call sites --------------------------------------------------------------------------


class OperatorCall:
    """One call to a provider's hook being observed; `outcome` set by the caller when it
    knows better than the exception (the breaker was open)."""

    def __init__(self) -> None:
        self.outcome: str | None = None


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    if isinstance(exc, OutcomeUnknown):
        return "unknown"
    if isinstance(exc, MmoError):
        return "refused"  # the operator answered, and said no (or knew nothing of it)
    return "error"


@contextmanager
def operator_call(
    gateway: Gateway, provider: str, account: str, hook: str, payment_id: uuid.UUID | None
) -> Iterator[OperatorCall]:
    """Time the block (a call to `hook`), count it, write its line; the payment's id is
    bound for every line written inside."""
    observed = OperatorCall()
    started = time.perf_counter()
    failure: BaseException | None = None
    with logs.bound(payment_id=payment_id):
        try:
            yield observed
        except BaseException as exc:
            failure = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics = of(gateway)
            outcome = observed.outcome or _outcome(failure)
            if outcome == "breaker_open":
                metrics.operator_skipped.labels(provider, account, hook).inc()
            else:
                metrics.operator_seconds.labels(provider, account, hook, outcome).observe(seconds)
            fields: dict[str, Any] = {
                "provider": provider,
                "account": account,
                "hook": hook,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 1),
            }
            if isinstance(failure, MmoError):
                fields["error"] = failure.code
            elif failure is not None:
                fields["error"] = type(failure).__name__
            level = "info" if outcome in ("ok", "refused") else "warning"
            getattr(operator_log, level)("operator call", **fields)


def outbound_wait(gateway: Gateway, provider: str, account: str, seconds: float) -> None:
    """An operator call waited `seconds` for its account's slot (mmo_host.outbound)."""
    found = of(gateway)
    found.outbound_waits.labels(provider, account).inc()
    found.outbound_wait_seconds.labels(provider, account).observe(seconds)


def outbound_queued(
    gateway: Gateway, provider: str, account: str, hook: str, seconds: float
) -> None:
    """An operator call was not made: its account's slot is `seconds` away."""
    of(gateway).outbound_queued.labels(provider, account, hook).inc()
    operator_log.info(
        "outbound slot too far",
        provider=provider,
        account=account,
        hook=hook,
        slot_in_ms=round(seconds * 1000, 1),
    )


def outbound_pause(gateway: Gateway, provider: str, account: str, seconds: float) -> None:
    """The operator answered 429: the account pauses `seconds` (its Retry-After)."""
    of(gateway).outbound_pauses.labels(provider, account).inc()
    operator_log.warning(
        "operator asked to slow down: account paused",
        provider=provider,
        account=account,
        pause_s=round(seconds, 3),
    )


def transition(gateway: Gateway, row: PaymentRecord, previous: str | None, source: str) -> None:
    """A payment changed status (`payments.apply_transition`, once the history is written)."""
    of(gateway).payments.labels(row.provider, row.type, row.status, row.failure_code or "").inc()
    payment_log.info(
        "payment status",
        payment_id=str(row.id),
        provider=row.provider,
        account=row.account,
        previous=previous,
        status=row.status,
        source=source,
        failure_code=row.failure_code,
    )


def callback(callback_id: uuid.UUID, fields: dict[str, Any]) -> None:
    """A callback's outcome was written (`callbacks._mark`)."""
    flag = fields.get("flag")
    payment_id = fields.get("payment_id")
    outcome = flag or ("applied" if payment_id else "accepted")
    metrics = _CURRENT.get()
    if metrics is not None:
        metrics.callbacks.labels(outcome).inc()
    callback_log.info(
        "callback",
        callback_id=str(callback_id),
        outcome=outcome,
        verified=fields.get("verified"),
        processed=fields.get("processed"),
        payment_id=str(payment_id) if payment_id else None,
        error=str(fields["error"])[:200] if fields.get("error") else None,
    )


def delivery(gateway: Gateway, job: JobRecord, event: EventRecord, error: str | None) -> None:
    """One attempt to deliver an event to an orchestrator URL (the worker's `deliver`)."""
    outcome = "delivered" if error is None else "failed"
    of(gateway).deliveries.labels(event.type, outcome).inc()
    event_log.info(
        "event delivery",
        event_id=str(event.id),
        payment_id=str(event.payment_id),
        type=event.type,
        outcome=outcome,
        attempt=job.attempts,
        error=error,
    )


# -- HTTP ------------------------------------------------------------------------------------


class ObserveMiddleware(ASGIMiddleware):
    """Every HTTP request: its id (bound for its lines, returned in `X-Request-Id`), its
    line, and its count by route template and status (when `count`)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: Metrics, *, count: bool = True) -> None:
        self.metrics = metrics
        self.count = count

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = logs.request_id(given)
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        route = scope.get("path_template") or "unrouted"
        method = str(scope.get("method", ""))
        with logs.bound(request_id=request_id), use(self.metrics):
            try:
                await next_app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                if self.count:
                    self.metrics.http(method, route, status, seconds)
                http_log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                )


@get("/metrics", include_in_schema=False, name="metrics")
async def metrics_endpoint(request: Request) -> Response[bytes]:
    """Prometheus's text exposition of this app's metrics (no API key: bind it privately)."""
    gateway = request.app.state.gateway
    body = await of(gateway).exposition(gateway)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


__all__ = [
    "Metrics",
    "ObserveMiddleware",
    "callback",
    "delivery",
    "metrics_endpoint",
    "of",
    "operator_call",
    "outbound_pause",
    "outbound_queued",
    "outbound_wait",
    "transition",
    "use",
]
