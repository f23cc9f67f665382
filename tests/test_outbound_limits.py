"""Outbound rate limits per operator account (issue 17), over real HTTP, Postgres and Redis.

The MTN simulator runs in a thread of its own behind a recorder that notes when each
operator request arrives (token requests aside: one hook call is one slot) and can answer
429 with a Retry-After, as an operator over its cap does. Two host apps share one Redis
and one Postgres, each with its own worker, and the account allows N calls per second.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from mmo_core.accounts import load_accounts
from mmo_core.testing import serve_app, serving
from mmo_host import db, outbound
from mmo_host.app import build_registry, create_app
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway

from tests.conftest import API_KEY, _free_port, attach_log_scan, host_environ

AUTH = {"Authorization": f"Bearer {API_KEY}"}
FINAL = {"succeeded", "failed", "expired"}


# -- the operator, recorded ------------------------------------------------------------------


@dataclass
class Recorder:
    """An ASGI wrapper around the simulator: when each operator request arrived, and an
    optional 429 + Retry-After for the next `refuse` payment requests."""

    app: Any
    seen: list[tuple[float, str, str, str]] = field(default_factory=list)
    refuse: int = 0
    retry_after: str = "2"
    refused_at: list[float] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_simulator") or "/token" in path:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        method = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        if method == "POST" and path.endswith("/requesttopay") and self.refuse > 0:
            self.refuse -= 1
            self.refused_at.append(now)
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", self.retry_after.encode()),
                    ],
                }
            )
            body = b'{"code": "TOO_MANY_REQUESTS", "message": "slow down"}'
            await send({"type": "http.response.body", "body": body})
            return
        self.seen.append((now, method, path, headers.get("x-reference-id", "")))
        await self.app(scope, receive, send)

    def sends(self) -> list[str]:
        """Our payment ids, in the order the operator took the payments."""
        return [ref for _, method, path, ref in self.seen if method == "POST" and ref]

    def busiest_second(self) -> int:
        """The most operator requests that arrived within any one second."""
        times = sorted(t for t, *_ in self.seen)
        most, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def span(self) -> float:
        """Seconds from the first operator request to the last."""
        times = [t for t, *_ in self.seen]
        return max(times) - min(times)

    def paced(self, rate: float) -> bool:
        """Whether the requests took at least as long as `rate` allows, less a second for
        the first one's lag. A loaded machine only makes them later, so this holds however
        slow it is; an unlimited sender would send them all within a fraction of it."""
        return self.span() >= (len(self.seen) - 1) / rate - 1.0

    def arrivals(self) -> list[tuple[float, str]]:
        """(seconds since the first, method), for a failure's message."""
        start = min(t for t, *_ in self.seen)
        return [(round(t - start, 3), method) for t, method, *_ in sorted(self.seen)]

    def per_second(self) -> list[int]:
        times = sorted(t for t, *_ in self.seen)
        if not times:
            return []
        counts = Counter(int(t - times[0]) for t in times)
        return [counts.get(i, 0) for i in range(max(counts) + 1)]


@pytest.fixture
def operator() -> Iterator[tuple[Recorder, str]]:
    config = HostConfig.from_env(
        {"MMO_ENABLED_PROVIDERS": "mtn_momo", "MMO_MTN_MOMO_CALLBACK_DELAY": "0.05"}
    )
    gateway = Gateway(config, build_registry(config))
    provider = gateway.registry.get("mtn_momo")
    accounts = {a.name: a.settings for a in gateway.accounts["mtn_momo"].values()}
    simulator = provider.call_sync(
        "simulator_app", settings=next(iter(accounts.values())), accounts=accounts
    )
    recorder = Recorder(simulator)
    with serve_app(recorder) as served:
        yield recorder, served.url


# -- the hosts -----------------------------------------------------------------------------------


@dataclass
class Hosts:
    urls: list[str]
    gateways: list[Gateway]


def limited_env(dsn: str, port: int, sim_url: str, redis_url: str, rate: int) -> dict[str, str]:
    return host_environ(
        dsn,
        MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
        MMO_PORT=str(port),
        REDIS_URL=redis_url,
        MMO_ENABLED_PROVIDERS="mtn_momo",
        MMO_MOUNT_SIMULATORS="false",
        MMO_MTN_MOMO_BASE_URL=sim_url,
        MMO_MTN_MOMO_RATE_LIMIT=str(rate),
        MMO_RUN_WORKER="true",  # each host sends its share of the queued payments
        MMO_POLL_AFTER="1",
        # a payment still `new` this long is presumed orphaned: longer than any slot wait
        MMO_RESOLVE_AFTER="30",
        MMO_POLL_MAX_DELAY="2",
        MMO_RATE_LIMIT_API="0",
        MMO_RECONCILE_EVERY="0",
        MMO_BREAKER_THRESHOLD="10",
    )


async def start_hosts(
    stack: AsyncExitStack, count: int, sim_url: str, redis_url: str, dsn: str, rate: int
) -> Hosts:
    hosts = Hosts([], [])
    for _ in range(count):
        port = _free_port()
        config = HostConfig.from_env(limited_env(dsn, port, sim_url, redis_url, rate))
        app = create_app(config)
        served = await stack.enter_async_context(serving(app, port=port))
        hosts.urls.append(served.url)
        hosts.gateways.append(app.state.gateway)
    attach_log_scan()  # Litestar's logging set-up replaced the root handlers
    return hosts


@pytest.fixture
async def own_redis(redis_url: str) -> AsyncIterator[str]:
    """A database of the suite's Redis for these tests alone, empty: no slot, pause or
    token of another test."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


def mtn_body(i: int) -> dict[str, str]:
    """An MTN sandbox collection that succeeds (EUR, a Swedish test number)."""
    return {
        "type": "collection",
        "amount": "150",
        "currency": "EUR",
        "msisdn": f"+4670123{6000 + i:04d}",
        "provider": "mtn_momo",
        "reference": f"OUT{i}",
    }


async def pay(client: httpx.AsyncClient, url: str, i: int) -> dict[str, Any]:
    response = await client.post(
        f"{url}/api/v1/payments",
        json=mtn_body(i),
        headers={**AUTH, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("new", "pending"), response.text
    return response.json()


async def pay_in_turn(
    client: httpx.AsyncClient, urls: list[str], count: int, start: int = 0
) -> list[dict[str, Any]]:
    """`count` payments, one after the other, to each host in turn: their creation order."""
    return [await pay(client, urls[i % len(urls)], start + i) for i in range(count)]


async def burst(client: httpx.AsyncClient, urls: list[str], count: int) -> list[dict[str, Any]]:
    """`count` payments at once over the hosts: more than the account may send now."""
    return list(
        await asyncio.gather(*(pay(client, urls[i % len(urls)], 1000 + i) for i in range(count)))
    )


def ids_of(answers: list[dict[str, Any]]) -> list[str]:
    return [a["id"] for a in answers]


class Lines(logging.Handler):
    """The lines of one logger, whatever Litestar did to the root handlers."""

    def __init__(self, name: str) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> Lines:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self)


async def wait_final(ids: list[str], timeout: float = 90.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetch(
            "SELECT id::text AS id, status FROM payments WHERE id = ANY($1::uuid[])", ids
        )
        found = {r["id"]: r["status"] for r in rows}
        if len(found) == len(ids) and set(found.values()) <= FINAL:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not final after {timeout} s: {Counter(found.values())}")
        await asyncio.sleep(0.25)


async def metric(client: httpx.AsyncClient, url: str, name: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


# -- the tests -----------------------------------------------------------------------------------


async def test_two_hosts_share_one_limit_and_excess_goes_out_in_order(
    operator, own_redis, clean_db, migrated_db
):
    recorder, sim_url = operator
    rate = 5
    async with AsyncExitStack() as stack:
        hosts = await start_hosts(stack, 2, sim_url, own_redis, migrated_db, rate)
        async with httpx.AsyncClient(timeout=20) as client:
            # one payment first: the token fetched, so no first call arrives late by it
            await wait_final(ids_of(await pay_in_turn(client, hosts.urls, 1, start=900)))
            await asyncio.sleep(1.0)
            recorder.seen.clear()
            started = time.monotonic()
            # a burst fills the account's queue; the payments made after it queue behind it
            first = await burst(client, hosts.urls, 12)
            then = await pay_in_turn(client, hosts.urls, 10)
            answered = time.monotonic() - started
            ids = ids_of(first) + ids_of(then)
            final = await wait_final(ids)
            took = time.monotonic() - started
            queued = sum([await metric(client, u, "mmo_outbound_queued_total") for u in hosts.urls])
            waits = sum([await metric(client, u, "mmo_outbound_waits_total") for u in hosts.urls])
    assert Counter(final.values()) == {"succeeded": len(ids)}
    # the excess was not refused: answered `new`, queued for its slot
    assert [a["status"] for a in then] == ["new"] * len(then)
    assert queued >= len(then) and waits > 0
    # the operator took each payment once, the burst first, then the rest in creation order
    sends = recorder.sends()
    assert sorted(sends[: len(first)]) == sorted(ids_of(first))
    assert sends[len(first) :] == ids_of(then)
    # never more than the account's rate in any one second. Slots start 1/rate apart
    # (Redis's clock); the arrivals may bunch by the hosts' own lag (both hosts, their
    # workers and this test share one event loop here), so the busiest second is printed,
    # and what is asserted is the pace overall, which a slow machine cannot break
    busiest = recorder.busiest_second()
    assert recorder.paced(rate), recorder.arrivals()
    print(
        f"\noutbound limit {rate}/s over 2 hosts: {len(ids)} payments answered in "
        f"{answered:.2f} s, all final in {took:.2f} s; operator requests "
        f"{len(recorder.seen)}, per second {recorder.per_second()}, busiest second "
        f"{busiest}; queued {queued:.0f}, waited {waits:.0f}"
    )


async def test_without_redis_each_process_keeps_the_limit(operator, clean_db, migrated_db):
    recorder, sim_url = operator
    rate = 6
    dead_redis = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    async with AsyncExitStack() as stack:
        hosts = await start_hosts(stack, 1, sim_url, dead_redis, migrated_db, rate)
        with Lines("mmo") as logged:
            async with httpx.AsyncClient(timeout=20) as client:
                first = await burst(client, hosts.urls, 12)
                then = await pay_in_turn(client, hosts.urls, 6)
                ids = ids_of(first) + ids_of(then)
                final = await wait_final(ids)
        slots = outbound.of(hosts.gateways[0]).slots()
    assert Counter(final.values()) == {"succeeded": len(ids)}
    assert isinstance(slots, outbound.RedisSlots)  # configured, and did without
    assert any("outbound_limits degraded" in line for line in logged.lines), logged.lines
    assert [a["status"] for a in then] == ["new"] * len(then)
    assert recorder.sends()[len(first) :] == ids_of(then)
    assert recorder.paced(rate), recorder.arrivals()
    print(f"\nwithout Redis, {rate}/s in one process: per second {recorder.per_second()}")


async def test_an_operators_429_pauses_the_whole_account(
    operator, own_redis, clean_db, migrated_db
):
    recorder, sim_url = operator
    recorder.refuse, recorder.retry_after = 1, "2"
    async with AsyncExitStack() as stack:
        hosts = await start_hosts(stack, 2, sim_url, own_redis, migrated_db, rate=20)
        async with httpx.AsyncClient(timeout=20) as client:
            answers = await pay_in_turn(client, hosts.urls, 6)
            ids = ids_of(answers)
            final = await wait_final(ids)
            pauses = sum([await metric(client, u, "mmo_outbound_pauses_total") for u in hosts.urls])
    assert Counter(final.values()) == {"succeeded": 6}
    assert len(recorder.refused_at) == 1 and pauses == 1
    # the refused payment and the ones made during the pause were queued, not failed
    assert [a["status"] for a in answers] == ["new"] * 6
    refused = recorder.refused_at[0]
    # nothing of the account reached the operator during the Retry-After, from either host
    during = [round(t - refused, 3) for t, *_ in recorder.seen if t < refused + 1.9]
    assert during == [], during
    # the refused payment went first after the pause, and the others after it, in order
    assert recorder.sends() == ids
    after = min(t for t, *_ in recorder.seen) - refused
    print(f"\n429 with Retry-After 2: the account's next request {after:.2f} s later")


def test_rate_limit_is_an_account_field() -> None:
    from mmo_core.registry import ProviderRegistry

    registry = ProviderRegistry(environ={"MMO_ENABLED_PROVIDERS": "mtn_momo"})
    registry.load_entrypoints()
    provider = registry.get("mtn_momo")
    config = {
        "providers": {
            "mtn_momo": {
                "accounts": {
                    "uganda": {"markets": ["UG"], "rate_limit": 25},
                    "ghana": {"markets": ["GH"], "rate_limit": "fast"},
                    "zambia": {"markets": ["ZM"]},
                }
            }
        }
    }
    environ = {"MMO_MTN_MOMO_RATE_LIMIT": "5", "MMO_MTN_MOMO__UGANDA__RATE_LIMIT": "12.5"}
    found = load_accounts(provider.declaration, provider.settings_type, environ, config)
    # the variable wins over the file; the flat variable is every account's starting value
    assert found.accounts["uganda"].rate_limit == 12.5
    assert found.accounts["zambia"].rate_limit == 5
    assert "rate_limit must be a number" in found.problems["ghana"]
    plain = load_accounts(provider.declaration, provider.settings_type, {}, {})
    assert plain.accounts["default"].rate_limit == 0  # no limit unless configured
