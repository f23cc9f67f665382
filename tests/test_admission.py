"""Admission control (mmo_host.admission): past its limit of requests in flight the host
refuses at once (`503 overloaded`, `Retry-After`) instead of queueing, stores nothing for
what it refused, and keeps a share for operators' webhooks so their callbacks are applied.

A host of its own on a real port, with a small limit and the M-Pesa simulator mounted and
made slow (its `latency_ms` fault), so that a few POSTs hold every API slot while a burst
arrives. Figures (refusal latency) are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mmo_core.errors import ConfigurationError
from mmo_core.testing import serving
from mmo_host import db
from mmo_host.admission import Pool
from mmo_host.app import create_app
from mmo_host.config import HostConfig

from tests.conftest import API_KEY, _free_port, attach_log_scan, host_environ, wait_for_status

LIMIT = 4
BURST = 40
EARLY = 6  # payments made before the burst, whose callbacks arrive during it
LATENCY_MS = 3000  # each admitted POST holds its slot this long (the STK push)
CALLBACK_DELAY_MS = 1000  # the early payments' callbacks land while the slots are held


@contextlib.asynccontextmanager
async def admission_host(migrated_db: str, **settings: str) -> AsyncIterator[httpx.AsyncClient]:
    """A host of its own on a real port, M-Pesa's simulator mounted, with `settings`."""
    port = _free_port()
    config = HostConfig.from_env(
        host_environ(
            migrated_db,
            MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MMO_PORT=str(port),
            MMO_ENABLED_PROVIDERS="mpesa",
            # the limits under test are admission's, not the per-client rate limits
            MMO_RATE_LIMIT_API="0",
            MMO_RATE_LIMIT_WEBHOOKS="0",
            **settings,
        )
    )
    async with serving(create_app(config), port=port) as served:
        attach_log_scan()  # Litestar's logging set-up replaced the root handlers
        limits = httpx.Limits(max_connections=BURST + 20, max_keepalive_connections=BURST + 20)
        async with httpx.AsyncClient(
            base_url=served.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
            limits=limits,
        ) as client:
            yield client


@pytest.fixture
async def small_host(migrated_db: str, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    async with admission_host(
        migrated_db,
        MMO_MAX_IN_FLIGHT=str(LIMIT),
        MMO_MAX_IN_FLIGHT_WEBHOOKS="16",
        MMO_OPERATOR_TIMEOUT="10",
    ) as client:
        yield client
        await faults(client)  # the simulator's faults off again


class ServerTimes(logging.Handler):
    """The host's own time for each `503` it answered (its `mmo.http` request lines)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.refusals: list[float] = []
        self.logger = logging.getLogger("mmo.http")

    def emit(self, record: logging.LogRecord) -> None:
        line = record.msg
        if isinstance(line, dict) and line.get("event") == "request" and line["status"] == 503:
            self.refusals.append(float(line["duration_ms"]))

    def __enter__(self) -> ServerTimes:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self)


async def faults(client: httpx.AsyncClient, **given: Any) -> None:
    response = await client.post("/_sim/mpesa/_simulator/faults", json=given)
    assert response.status_code == 200, response.text


def collection(i: int) -> dict[str, str]:
    """An M-Pesa sandbox collection that succeeds."""
    return {
        "type": "collection",
        "amount": "150",
        "currency": "KES",
        "msisdn": f"+25471234{5000 + i:04d}",
        "provider": "mpesa",
        "reference": f"ADM{i}",
    }


async def timed_post(client: httpx.AsyncClient, i: int, key: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.post(
        "/api/v1/payments", json=collection(i), headers={"Idempotency-Key": key}
    )
    return response, time.perf_counter() - started


async def stored(keys: list[str]) -> int:
    row = await db.fetchrow(
        "SELECT count(*) AS n FROM payments WHERE idempotency_key = ANY($1::text[])", keys
    )
    assert row is not None
    return int(row["n"])


async def test_a_burst_past_the_limit_is_refused_fast_and_webhooks_keep_their_share(small_host):
    client = small_host
    # payments made at once, whose callbacks are due while the burst holds every API slot
    await faults(client, callback_delay_ms=CALLBACK_DELAY_MS)
    early = []
    for i in range(EARLY):
        response = await client.post(
            "/api/v1/payments", json=collection(i), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 202, response.text
        early.append(response.json()["id"])

    # the operator is slow now: each admitted POST holds its slot for LATENCY_MS
    await faults(client, latency_ms=LATENCY_MS, callback_delay_ms=CALLBACK_DELAY_MS)
    # one open connection per request of the burst, so it times answers and not connects
    await asyncio.gather(*(client.get("/health/live") for _ in range(BURST)))
    keys = [str(uuid.uuid4()) for _ in range(BURST)]
    burst_started = datetime.now(UTC)
    with ServerTimes() as server:
        posts = asyncio.gather(*(timed_post(client, 100 + i, key) for i, key in enumerate(keys)))
        # health and metrics are never refused, even while every API slot is taken
        await asyncio.sleep(0.3)
        side = [await client.get(path) for path in ("/health/live", "/health/ready", "/metrics")]
        answers = await posts
    first_admitted_done = datetime.now(UTC)

    statuses = [response.status_code for response, _ in answers]
    assert set(statuses) <= {202, 503}, statuses  # no 500 anywhere
    accepted = [key for key, (r, _) in zip(keys, answers, strict=True) if r.status_code == 202]
    refused = [
        (key, r, s) for key, (r, s) in zip(keys, answers, strict=True) if r.status_code == 503
    ]
    assert 1 <= len(accepted) <= LIMIT, statuses
    assert len(refused) >= BURST - LIMIT, statuses
    for _, response, _ in refused:
        assert response.json()["error"]["code"] == "overloaded", response.text
        assert response.headers["Retry-After"] == "1"
        assert response.headers["x-request-id"]  # refusals are observed like any request
    assert [r.status_code for r in side] == [200, 200, 200], [r.text[:200] for r in side]
    refusal_ms = sorted(seconds * 1000 for _, _, seconds in refused)
    admitted_ms = [s * 1000 for r, s in answers if r.status_code == 202]
    inside = sorted(server.refusals)
    print(
        f"\nburst of {BURST} at a limit of {LIMIT}: {len(accepted)} accepted "
        f"({min(admitted_ms):.0f}-{max(admitted_ms):.0f} ms), {len(refused)} refused: "
        f"as the client saw it (one event loop with the host) p50 "
        f"{statistics.median(refusal_ms):.1f} ms, max {refusal_ms[-1]:.1f} ms; inside the "
        f"host p50 {statistics.median(inside):.2f} ms, max {inside[-1]:.2f} ms"
    )
    assert len(inside) == len(refused)

    # nothing is stored for a refused request; every accepted one is
    refused_keys = [key for key, _, _ in refused]
    assert await stored(refused_keys) == 0
    assert await stored(accepted) == len(accepted)

    # the callbacks sent during the burst were all accepted and applied
    await faults(client)
    for payment_id in early:
        done = await wait_for_status(client, payment_id, {"succeeded"}, timeout=30)
        assert done["status"] == "succeeded"
    rows = await db.fetch(
        "SELECT payment_id, processed, flag, received_at FROM callbacks WHERE payment_id = ANY($1)",
        [uuid.UUID(p) for p in early],
    )
    assert {str(r["payment_id"]) for r in rows} == set(early)
    assert all(r["processed"] and r["flag"] is None for r in rows), rows
    during = sum(burst_started <= r["received_at"] <= first_admitted_done for r in rows)
    print(f"callbacks received while the burst held the API slots: {during} of {len(rows)}")

    exposition = (await client.get("/metrics")).text
    assert f'mmo_admission_refused_total{{pool="api"}} {float(len(refused))}' in exposition
    assert 'mmo_admission_refused_total{pool="webhooks"} 0.0' in exposition
    assert 'mmo_admission_in_flight{pool="api"}' in exposition
    assert 'status="500"' not in exposition


def test_a_pool_admits_up_to_its_limit_and_zero_is_no_limit():
    pool = Pool("api", 2)
    assert pool.admit() and pool.admit()
    assert not pool.admit() and pool.refused == 1
    pool.release()
    assert pool.admit() and pool.in_flight == 2
    unlimited = Pool("api", 0)
    assert all(unlimited.admit() for _ in range(1000))


@pytest.mark.parametrize("name", ["MMO_MAX_IN_FLIGHT", "MMO_MAX_IN_FLIGHT_WEBHOOKS"])
def test_the_limits_are_read_and_checked(name):
    assert HostConfig.from_env({name: "0"}) is not None
    config = HostConfig.from_env({"MMO_MAX_IN_FLIGHT": "7", "MMO_MAX_IN_FLIGHT_WEBHOOKS": "3"})
    assert (config.max_in_flight, config.max_in_flight_webhooks) == (7, 3)
    with pytest.raises(ConfigurationError, match=name):
        HostConfig.from_env({name: "-1"})


@pytest.fixture
async def lag_host(migrated_db: str, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    async with admission_host(migrated_db, MMO_MAX_LOOP_LAG_MS=str(LAG_LIMIT_MS)) as client:
        yield client


LAG_LIMIT_MS = 100


async def test_a_host_whose_loop_runs_late_refuses_api_requests_but_takes_webhooks(lag_host):
    """The server shares the test's event loop: blocking it half a second is a host whose
    CPU is spent. Until its work has caught up, API requests are refused `503 overloaded`
    (`Retry-After`), while webhooks and health are still served; then it admits again."""
    missing = f"/api/v1/payments/{uuid.uuid4()}"
    assert (await lag_host.get(missing)).status_code == 404  # admitted: no such payment
    time.sleep(0.5)  # noqa: ASYNC251 - the point: the loop runs nothing else meanwhile
    refused = await lag_host.get(missing)
    webhook = await lag_host.post("/api/v1/webhooks/mpesa/stk", content=b"not json")
    health = await lag_host.get("/health/live")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert "late" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    assert webhook.status_code not in (503, 500), webhook.text  # taken: refused as malformed
    assert health.status_code == 200
    deadline = time.monotonic() + 10
    while True:  # the smoothed lag falls within about 100 ms of an idle loop
        await asyncio.sleep(0.1)
        again = await lag_host.get(missing)
        if again.status_code != 503 or time.monotonic() > deadline:
            break
    assert again.status_code == 404, again.text
    exposition = (await lag_host.get("/metrics")).text
    assert 'mmo_admission_refused_total{pool="lag"}' in exposition
    assert "mmo_loop_lag_seconds" in exposition


def test_the_loop_lag_limit_is_read_and_checked():
    assert HostConfig.from_env({}).max_loop_lag_ms == 20.0
    assert HostConfig.from_env({"MMO_MAX_LOOP_LAG_MS": "0"}).max_loop_lag_ms == 0
    with pytest.raises(ConfigurationError, match="MMO_MAX_LOOP_LAG_MS"):
        HostConfig.from_env({"MMO_MAX_LOOP_LAG_MS": "-5"})
