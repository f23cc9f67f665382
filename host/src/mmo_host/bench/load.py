"""The load generator: async httpx on loopback, open-loop (requests sent on a clock, not
when the previous answer came) or as one burst. Every request is bounded by its timeout."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

KEY = "sk_bench_0123456789abcdefghijklmn"
ACCEPTED = (200, 201, 202)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


@dataclass
class Calls:
    """What the requests of one scenario got: latencies, statuses, the payments created."""

    latencies: list[float] = field(default_factory=list)  # seconds, answered requests only
    statuses: Counter[str] = field(default_factory=Counter)
    created: dict[str, str] = field(default_factory=dict)  # payment id -> idempotency key
    refused_fast: list[float] = field(default_factory=list)  # latencies of 429/503 answers
    retry_after: int = 0  # 429/503 answers that said when to come back
    retried: int = 0  # refusals sent again after their Retry-After (the burst, as a caller)
    sent: int = 0
    late_starts: int = 0  # requests the generator sent more than 50 ms after their time
    started: float = 0.0
    sent_until: float = 0.0  # the last request sent
    ended: float = 0.0  # the last answer in

    def record(self, started: float, response: httpx.Response | None, error: str | None) -> None:
        took = time.monotonic() - started
        if response is None:
            self.statuses[error or "error"] += 1
            return
        self.latencies.append(took)
        code = response.status_code
        self.statuses[str(code)] += 1
        if code in (429, 503):
            self.refused_fast.append(took)
            if "retry-after" in response.headers:
                self.retry_after += 1

    def errors(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if k not in ("200", "201", "202")}

    def summary(self, latency_s: float) -> dict[str, Any]:
        duration = max(self.ended - self.started, 1e-9)
        sending = max((self.sent_until or self.ended) - self.started, 1e-9)
        answered = len(self.latencies)
        ok = sum(v for k, v in self.statuses.items() if k in ("200", "201", "202"))
        added = [max(0.0, t - latency_s) for t in self.latencies]
        return {
            "requests": self.sent,
            "answered": answered,
            "accepted": ok,
            "offered_rate": round(self.sent / sending, 1),
            "achieved_rate": round(ok / duration, 1),
            "duration_s": round(duration, 2),
            "api_latency_ms": {
                "p50": ms(percentile(self.latencies, 50)),
                "p95": ms(percentile(self.latencies, 95)),
                "p99": ms(percentile(self.latencies, 99)),
                "mean": ms(statistics.fmean(self.latencies)) if self.latencies else None,
            },
            "gateway_added_ms": {
                "p50": ms(percentile(added, 50)),
                "p95": ms(percentile(added, 95)),
                "p99": ms(percentile(added, 99)),
            },
            "errors": self.errors(),
            "refused": {
                "count": len(self.refused_fast),
                "with_retry_after": self.retry_after,
                "p99_ms": ms(percentile(self.refused_fast, 99)),
                "retried": self.retried,
            },
            "late_starts": self.late_starts,
        }


class Numbers:
    """Distinct Safaricom numbers whose last four digits are no simulator scenario (3000 to
    8999 succeed), so that no STK push waits on another to the same phone."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def next(self) -> tuple[int, str]:
        i = next(self._count)
        return i, f"+25471{(i // 6000) % 1000:03d}{3000 + i % 6000:04d}"


LANES = 8


class Client:
    """The gateway's API as the bench calls it; with several host URLs (`--hosts`), each
    request goes to the next one in turn, as a load balancer in front of them would."""

    def __init__(
        self, url: str | list[str], run: str, timeout: float, connections: int = 1200
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        self.url = urls[0]
        self.run = run
        self.numbers = Numbers()
        # several clients per host, each with connections of its own, taken in turn: the
        # processes of `mmo serve --workers N` share one listening socket, and one client's
        # few keep-alive connections could all have been accepted by the same process
        each = max(1, connections // (len(urls) * LANES))
        limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
        self.clients = [
            httpx.AsyncClient(
                base_url=u,
                timeout=httpx.Timeout(timeout, connect=timeout, pool=timeout),
                limits=limits,
                headers={"Authorization": f"Bearer {KEY}"},
            )
            for _ in range(LANES)
            for u in urls
        ]
        self._turn = itertools.cycle(self.clients)
        self.processes: set[str] = set()  # the host processes that answered (X-Mmo-Process)

    @property
    def http(self) -> httpx.AsyncClient:
        """The client of the host whose turn it is."""
        return next(self._turn)

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()

    async def create(self, calls: Calls, retries: int = 0) -> str | None:
        """One payment; with `retries`, a refusal that says when to come back (429/503 with
        `Retry-After`, the host's admission control) is sent again then, with the same
        Idempotency-Key, as an orchestrator would: counted as refused, not as an error."""
        i, msisdn = self.numbers.next()
        key = f"bench-{self.run}-{i}"
        body = {
            "type": "collection",
            "amount": "100",
            "currency": "KES",
            "msisdn": msisdn,
            "reference": f"B{i}",
        }
        calls.sent += 1
        while True:
            started = time.monotonic()
            try:
                response = await self.http.post(
                    "/api/v1/payments", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError as exc:
                calls.record(started, None, type(exc).__name__)
                return None
            wait = response.headers.get("retry-after", "")
            if retries > 0 and response.status_code in (429, 503) and wait.isdigit():
                retries -= 1
                calls.refused_fast.append(time.monotonic() - started)
                calls.retry_after += 1
                calls.retried += 1
                await asyncio.sleep(int(wait))
                continue
            break
        calls.record(started, response, None)
        self.processes.add(response.headers.get("x-mmo-process", "?"))
        if response.status_code in ACCEPTED:
            payment_id = str(response.json()["id"])
            calls.created[payment_id] = key
            return payment_id
        return None

    async def read(self, calls: Calls, payment_id: str) -> None:
        calls.sent += 1
        started = time.monotonic()
        try:
            response = await self.http.get(f"/api/v1/payments/{payment_id}")
        except httpx.HTTPError as exc:
            calls.record(started, None, type(exc).__name__)
            return
        calls.record(started, response, None)


async def open_loop(
    rate: float,
    seconds: float,
    action: Callable[[], Coroutine[Any, Any, Any]],
    calls: Calls,
    *,
    max_requests: int | None = None,
    in_flight_cap: int = 2000,
    tick: Callable[[int], None] | None = None,
) -> None:
    """`action` started `rate` times a second for `seconds` (or `max_requests`), on a clock:
    a slow answer does not slow the sending. Past `in_flight_cap` open requests the
    generator waits (counted in `late_starts`), so its own memory stays bounded."""
    total = int(rate * seconds)
    if max_requests is not None:
        total = min(total, max_requests)
    tasks: set[asyncio.Task[Any]] = set()
    calls.started = time.monotonic()
    for n in range(total):
        due = calls.started + n / rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.05:
            calls.late_starts += 1
        while len(tasks) >= in_flight_cap:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        task: asyncio.Task[Any] = asyncio.create_task(action())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if tick is not None:
            tick(n + 1)
    calls.sent_until = time.monotonic()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    calls.ended = time.monotonic()


async def burst(count: int, action: Callable[[], Awaitable[Any]], calls: Calls) -> None:
    """`count` requests started at once."""
    calls.started = time.monotonic()
    await asyncio.gather(*(action() for _ in range(count)), return_exceptions=True)
    calls.ended = time.monotonic()


async def pool(
    items: list[Any],
    concurrency: int,
    action: Callable[[Any], Awaitable[Any]],
    calls: Calls,
    tick: Callable[[int], None] | None = None,
    seconds: float | None = None,
) -> None:
    """Every item through `action`, `concurrency` at a time, as fast as answers come; with
    `seconds`, no new item is started after that long."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    done = 0

    deadline = None if seconds is None else time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        while not queue.empty() and (deadline is None or time.monotonic() < deadline):
            await action(queue.get_nowait())
            done += 1
            if tick is not None:
                tick(done)

    calls.started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    calls.ended = time.monotonic()
