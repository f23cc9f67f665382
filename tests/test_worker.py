"""The reliability engine: polling, crash recovery, breakers, events, reconciliation.

The host's own worker is off in the tests (MMO_RUN_WORKER=false); each test runs a
`Worker` on the host's gateway and drains due jobs, so every step is deterministic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import msgspec
from mmo_host import db, events, jobs, payments
from mmo_host.app import build_registry
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway
from mmo_host.reconcile import reconcile
from mmo_host.schedule import DELIVERY_STEPS, Schedule
from mmo_host.schemas import PaymentCreate
from mmo_host.worker import Worker

from tests import fake_provider
from tests.conftest import EVENT_SECRETS, host_environ, wait_for_status
from tests.test_webhooks import create_fake_payment


def worker(host) -> Worker:
    return Worker(host.gateway, worker_id="test-worker")


async def status_of(api, payment_id):
    return (await api.get(f"/api/v1/payments/{payment_id}")).json()


async def sources(payment_id):
    rows = await db.fetch(
        "SELECT to_status, source FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
        uuid.UUID(payment_id),
    )
    return [(r["to_status"], r["source"]) for r in rows]


async def crashed_before_send(host, **changes):
    """A payment stored as `new` whose host died before it recorded the operator's answer."""
    body = {
        "type": "collection",
        "amount": "1000",
        "currency": "TZS",
        "msisdn": "+255712345678",
        "provider": "fake",
        "reference": "CRASH",
    }
    body.update(changes)
    request = PaymentCreate(**body)
    accepted = payments.check_request(host.gateway, request)
    row, created = await payments.insert_new(
        host.gateway, "client-x", str(uuid.uuid4()), payments.request_hash(request), accepted
    )
    assert created
    return row


async def test_a_pending_payment_with_no_callback_is_polled_to_its_end(api, host):
    payment = await create_fake_payment(api)
    fake_provider.OPERATOR[payment["provider_reference"]]["status"] = "succeeded"
    await worker(host).drain()
    assert (await status_of(api, payment["id"]))["status"] == "succeeded"
    assert ("succeeded", "poll") in await sources(payment["id"])
    assert await jobs.open_jobs(uuid.UUID(payment["id"])) == []


async def test_a_payment_still_pending_is_polled_again_later(api, host):
    payment = await create_fake_payment(api)
    await worker(host).run_once()
    [job] = await jobs.open_jobs(uuid.UUID(payment["id"]))
    assert job["kind"] == "poll" and job["attempts"] == 1
    assert job["run_at"] >= dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert (await status_of(api, payment["id"]))["status"] == "pending"


async def test_poll_failures_retry_without_changing_the_payment(api, host):
    payment = await create_fake_payment(api)
    fake_provider.DOWN["status"] = True
    await worker(host).run_once()
    [job] = await jobs.open_jobs(uuid.UUID(payment["id"]))
    assert "ProviderUnavailable" in job["last_error"]
    assert (await status_of(api, payment["id"]))["status"] == "pending"


async def test_crash_before_the_answer_was_recorded_is_found_out_not_resent(api, host):
    row = await crashed_before_send(host)
    fake_provider.OPERATOR["FK-" + str(row["id"])[:8]] = {"status": "succeeded"}
    await worker(host).drain()
    assert (await status_of_row(row))["status"] == "succeeded"
    assert "initiate" not in fake_provider.CALLS  # never resent blind
    assert await sources(str(row["id"])) == [
        ("new", "api"),
        ("unknown", "worker"),
        ("succeeded", "poll"),
    ]


async def test_crash_before_send_that_never_reached_the_operator_fails(api, host):
    row = await crashed_before_send(host)
    await worker(host).drain()
    payment = await status_of_row(row)
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "not_received"
    assert "initiate" not in fake_provider.CALLS


async def _interrupted_send(row) -> None:
    """The worker that held the payment's send job died in the operator call."""
    await db.fetch(
        """INSERT INTO jobs (kind, payment_id, run_at, attempts, locked_by, locked_until)
           VALUES ('send', $1, now(), 1, 'dead-worker', now() - interval '1 second')""",
        row["id"],
    )
    await db.fetch("UPDATE jobs SET done_at = now() WHERE kind = 'resolve'")


async def test_an_interrupted_queued_send_is_asked_about_not_resent(api, host):
    row = await crashed_before_send(host)
    await _interrupted_send(row)
    await worker(host).run_once()
    assert "initiate" not in fake_provider.CALLS
    assert (await status_of_row(row))["status"] == "unknown"
    assert ("unknown", "worker") in await sources(str(row["id"]))


async def test_an_interrupted_queued_send_is_resent_where_the_operator_makes_it_safe(api, host):
    row = await crashed_before_send(
        host, provider="example", currency="KES", amount="150", msisdn="+254712345678"
    )
    await _interrupted_send(row)
    await worker(host).run_once()
    assert (await status_of_row(row))["status"] in ("pending", "succeeded")


async def status_of_row(row):
    return msgspec.to_builtins(payments.resource(await payments.get(str(row["id"]))))


async def test_crash_before_send_is_resent_where_the_operator_makes_it_safe(api, host):
    row = await crashed_before_send(
        host, provider="example", currency="KES", amount="150", msisdn="+254712345678"
    )
    await worker(host).drain()
    for _ in range(100):  # the simulator's callback arrives
        if (await status_of_row(row))["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert (await status_of_row(row))["status"] == "succeeded"
    ledger = (await api.get("/_sim/example/_simulator/ledger")).json()["entries"]
    assert len([e for e in ledger if e["reference"] == str(row["id"])]) == 1


async def test_breaker_opens_queues_and_recovers(api, host):
    fake_provider.DOWN["initiate"] = True
    created = [await create_fake_payment(api) for _ in range(4)]
    assert {p["status"] for p in created} == {"new"}
    # each send's first step (`prepare`) failed; the 4th was not even tried
    assert fake_provider.CALLS.count("prepare") == 3
    breakers = (await api.get("/api/v1/admin/breakers")).json()["data"]
    assert {b["key"]: b["state"] for b in breakers}["fake"] == "open"

    fake_provider.DOWN["initiate"] = False
    await asyncio.sleep(1.1)  # the cooldown (MMO_BREAKER_COOLDOWN=1)
    w = worker(host)
    for _ in range(20):
        await w.drain()
        statuses = {(await status_of(api, p["id"]))["status"] for p in created}
        if statuses == {"pending"}:
            break
        await asyncio.sleep(0.3)
    final = [await status_of(api, p["id"]) for p in created]
    assert statuses == {"pending"}, [(p["status"], p["failure"]) for p in final]
    assert fake_provider.CALLS.count("initiate") == 4
    breakers = (await api.get("/api/v1/admin/breakers")).json()["data"]
    assert {b["key"]: b["state"] for b in breakers}["fake"] == "closed"
    # the idempotent replay of a queued payment is its first answer
    assert created[0]["status"] == "new"


async def test_a_payment_queued_too_long_fails_clearly(api, host, monkeypatch):
    monkeypatch.setattr(
        host.gateway, "schedule", dataclasses.replace(host.gateway.schedule, queue_for=0.0)
    )
    fake_provider.DOWN["initiate"] = True
    payment = await create_fake_payment(api)
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "provider_unavailable"
    await host.gateway.breakers.success("fake")


async def test_every_state_change_is_delivered_signed(api, host, event_receiver):
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "150",
            "currency": "KES",
            "msisdn": "+254712345678",
            "provider": "example",
            "reference": "EVT",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    payment = await wait_for_status(api, response.json()["id"], {"succeeded"})
    await worker(host).drain()
    received = [
        r for r in event_receiver.requests if json.loads(r.body)["payment"]["id"] == payment["id"]
    ]
    types = [json.loads(r.body)["type"] for r in received]
    assert sorted(types) == ["payment.created", "payment.pending", "payment.succeeded"]
    for r in received:
        header = r.headers["mmo-signature"]
        assert header.count("v1=") == 2  # both secrets while rotating
        for secret in EVENT_SECRETS:
            assert events.verify(r.body, header, secret)
        assert not events.verify(r.body, header, "whsec_wrong")
        assert not events.verify(r.body + b" ", header, EVENT_SECRETS[0])
        assert r.headers["mmo-event-id"] == json.loads(r.body)["id"]
    undelivered = await db.fetch(
        "SELECT id FROM outbox_events WHERE payment_id = $1 AND delivered_at IS NULL",
        uuid.UUID(payment["id"]),
    )
    assert undelivered == []

    listed = (await api.get(f"/api/v1/admin/payments/{payment['id']}/events")).json()["data"]
    succeeded = next(e for e in listed if e["type"] == "payment.succeeded")
    before = len(event_receiver.requests)
    resend = await api.post(f"/api/v1/admin/events/{succeeded['id']}/resend")
    assert resend.status_code == 202 and resend.json()["queued"] == 1
    await worker(host).drain()
    again = event_receiver.requests[before:]
    assert [json.loads(r.body)["id"] for r in again] == [succeeded["id"]]
    assert (await api.post(f"/api/v1/admin/events/{uuid.uuid4()}/resend")).status_code == 404


async def test_one_claims_events_are_read_together_and_marked_delivered(
    api, host, event_receiver, monkeypatch
):
    payment = await create_fake_payment(api)
    await worker(host).drain()  # whatever the payment queued so far
    found = await db.fetch(
        "SELECT id FROM outbox_events WHERE payment_id = $1", uuid.UUID(payment["id"])
    )
    target = event_receiver.url + "?again"
    for row in found:
        await db.fetch(
            "INSERT INTO jobs (kind, payment_id, event_id, target) VALUES ('deliver', $1, $2, $3)",
            uuid.UUID(payment["id"]),
            row["id"],
            target,
        )
    await db.fetch(
        "UPDATE outbox_events SET delivered_at = NULL WHERE payment_id = $1",
        uuid.UUID(payment["id"]),
    )
    reads: list[str] = []
    fetch_as = db.fetch_as

    async def counted(record, sql, *args):
        if "outbox_events" in sql:
            reads.append(sql)
        return await fetch_as(record, sql, *args)

    monkeypatch.setattr(db, "fetch_as", counted)
    before = len(event_receiver.requests)
    await worker(host).drain()
    assert len(found) >= 2 and len(reads) == 1  # one statement for the claim's events
    sent = {json.loads(r.body)["id"] for r in event_receiver.requests[before:]}
    assert sent == {str(row["id"]) for row in found}
    jobs_left = await db.fetch(
        "SELECT id FROM jobs WHERE target = $1 AND (done_at IS NULL OR locked_by IS NOT NULL)",
        target,
    )
    undelivered = await db.fetch(
        "SELECT id FROM outbox_events WHERE payment_id = $1 AND delivered_at IS NULL",
        uuid.UUID(payment["id"]),
    )
    assert jobs_left == [] and undelivered == []


async def test_a_failed_delivery_is_retried_later(api, host):
    payment = await create_fake_payment(api)
    event = await db.fetchrow(
        "SELECT id FROM outbox_events WHERE payment_id = $1 LIMIT 1", uuid.UUID(payment["id"])
    )
    await db.fetch(
        "INSERT INTO jobs (kind, payment_id, event_id, target) VALUES ('deliver', $1, $2, $3)",
        uuid.UUID(payment["id"]),
        event["id"],
        "http://127.0.0.1:9/unreachable",
    )
    await worker(host).drain()
    job = await db.fetchrow("SELECT * FROM jobs WHERE target = 'http://127.0.0.1:9/unreachable'")
    assert job["done_at"] is None and job["attempts"] == 1
    assert job["last_error"] == "ConnectError"
    assert job["run_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=45)


def test_the_delivery_schedule_lasts_at_least_three_days():
    assert sum(DELIVERY_STEPS) >= 3 * 86400
    delivery = Schedule().delivery
    assert delivery.base(1) == 60 and delivery.after(len(DELIVERY_STEPS) + 1) is None


def test_signatures_expire_after_the_tolerance():
    body = b'{"id":"evt"}'
    header = events.sign(body, ("s",), timestamp=1_000_000)
    assert events.verify(body, header, "s", now=1_000_100)
    assert not events.verify(body, header, "s", now=1_000_400)
    assert not events.verify(body, "v1=abc", "s")


async def test_events_reach_the_redis_stream(api, host, migrated_db, redis_url, monkeypatch):
    config = HostConfig.from_env(
        host_environ(migrated_db, REDIS_URL=redis_url, MMO_EVENT_STREAM="mmo:test-events")
    )
    gateway = Gateway(config, build_registry(config))
    await gateway.open()
    try:
        assert gateway.schedule.event_stream
        # the suite's host writes the payment's events as a host with this Redis would
        monkeypatch.setattr(host.gateway, "schedule", gateway.schedule)
        payment = await create_fake_payment(api)
        await Worker(gateway, worker_id="stream-worker").drain()
        entries = await gateway.store._redis.xrange("mmo:test-events")
        bodies = [json.loads(fields[b"body"]) for _, fields in entries]
        assert "payment.created" in [
            b["type"] for b in bodies if b["payment"]["id"] == payment["id"]
        ]
    finally:
        await gateway.close()


async def test_reconcile_repairs_and_reports(api, host):
    repaired = await create_fake_payment(api)
    fake_provider.OPERATOR[repaired["provider_reference"]]["status"] = "succeeded"
    contested = await create_fake_payment(api)
    await payments.apply_transition(
        host.gateway, uuid.UUID(contested["id"]), "failed", source="callback"
    )
    fake_provider.OPERATOR[contested["provider_reference"]]["status"] = "succeeded"
    stale = await crashed_before_send(host)
    report = await reconcile(host.gateway, since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    changed = {c["id"]: (c["from"], c["to"]) for c in report.changed}
    assert changed[repaired["id"]] == ("pending", "succeeded")
    assert changed[str(stale["id"])] == ("new", "unknown")
    assert report.disagreements == [
        {"id": contested["id"], "ours": "failed", "operator": "succeeded"}
    ]
    assert report.checked == 3
    assert (await status_of(api, contested["id"]))["status"] == "failed"


def test_reconcile_and_worker_commands(migrated_db):
    env = {**os.environ, "DATABASE_URL": migrated_db, "MMO_RECONCILE_EVERY": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "mmo_host.cli", "reconcile", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"checked", "changed", "disagreements", "errors"}
    bad = subprocess.run(
        [sys.executable, "-m", "mmo_host.cli", "reconcile", "--since", "yesterday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "--since" in bad.stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "mmo_host.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    output = ""
    while time.monotonic() < deadline and "started" not in output:
        output += process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    output += process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert "worker" in output and "stopped" in output


async def test_scheduled_reconciliation_runs_and_reschedules(api, host):
    from mmo_host.worker import schedule_reconcile

    await schedule_reconcile(0.0001)
    await schedule_reconcile(0.0001)  # still one open
    rows = await db.fetch("SELECT * FROM jobs WHERE kind = 'reconcile' AND done_at IS NULL")
    assert len(rows) == 1
    await asyncio.sleep(0.01)
    await worker(host).run_once()
    done = await db.fetchrow("SELECT * FROM jobs WHERE kind = 'reconcile' AND done_at IS NOT NULL")
    assert done["last_error"].startswith("checked")
    assert (
        len(await db.fetch("SELECT id FROM jobs WHERE kind = 'reconcile' AND done_at IS NULL")) == 1
    )


async def test_two_workers_never_run_one_job_twice(api, host):
    created = [await create_fake_payment(api) for _ in range(6)]
    for p in created:
        fake_provider.OPERATOR[p["provider_reference"]]["status"] = "succeeded"
    first, second = Worker(host.gateway, worker_id="w1"), Worker(host.gateway, worker_id="w2")
    await asyncio.gather(first.drain(), second.drain())
    assert fake_provider.CALLS.count("status") == 6
    for p in created:
        assert await sources(p["id"]) == [("new", "api"), ("pending", "api"), ("succeeded", "poll")]


async def test_a_callback_that_overtakes_its_payment_is_matched_later(api, host):
    from tests.test_webhooks import fake_url, post

    # The operator's callback names a reference the gateway has not recorded yet.
    early = json.dumps({"ref": "FK-early123", "status": "succeeded"}).encode()
    assert (await post(fake_url(host), early)).status_code == 200
    [callback] = await db.fetch("SELECT * FROM callbacks")
    assert callback["flag"] == "unmatched"
    [job] = await db.fetch("SELECT * FROM jobs WHERE kind = 'rematch'")
    assert job["target"] == str(callback["id"])

    # Still nothing to match: the job tries again later, then gives up and keeps it flagged.
    await db.fetch("UPDATE jobs SET run_at = now() WHERE kind = 'rematch'")
    await worker(host).run_once()
    job = await db.fetchrow("SELECT * FROM jobs WHERE kind = 'rematch'")
    assert job["done_at"] is None and job["last_error"] == "still unmatched"

    # Now the payment exists under that reference: the callback is applied.
    payment = await create_fake_payment(api)
    await db.fetch(
        "UPDATE payments SET provider_reference = 'FK-early123' WHERE id = $1",
        uuid.UUID(payment["id"]),
    )
    fake_provider.OPERATOR["FK-early123"] = {"status": "succeeded"}
    await db.fetch("UPDATE jobs SET done_at = now() WHERE kind = 'poll'")  # only the rematch
    await db.fetch("UPDATE jobs SET run_at = now() WHERE kind = 'rematch'")
    await worker(host).run_once()
    callback = await db.fetchrow("SELECT * FROM callbacks WHERE id = $1", callback["id"])
    assert callback["flag"] is None and str(callback["payment_id"]) == payment["id"]
    assert (await status_of(api, payment["id"]))["status"] == "succeeded"
    job = await db.fetchrow("SELECT * FROM jobs WHERE kind = 'rematch'")
    assert job["done_at"] is not None


async def test_a_job_rescheduled_while_it_runs_stays_open(api, host):
    payment = await create_fake_payment(api)
    pid = uuid.UUID(payment["id"])
    [claimed] = [j for j in await jobs.claim("w-test", 50, 60) if j["kind"] == "poll"]
    assert claimed["payment_id"] == pid
    # a change made by this job's own work asks for another poll of the payment
    async with db.transaction():
        await jobs.enqueue_payment_job("poll", pid, 30)
    await jobs.finish(claimed, "w-test")
    [job] = [j for j in await jobs.open_jobs(pid) if j["kind"] == "poll"]
    assert job["id"] == claimed["id"] and job["done_at"] is None and job["locked_by"] is None
    assert job["run_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    # an ordinary finish closes it
    await db.fetch("UPDATE jobs SET run_at = now() WHERE id = $1", job["id"])
    [again] = [j for j in await jobs.claim("w-test", 50, 60) if j["kind"] == "poll"]
    await jobs.finish(again, "w-test")
    assert [j for j in await jobs.open_jobs(pid) if j["kind"] == "poll"] == []


async def test_a_job_rescheduled_after_its_lease_ran_out_stays_open(api, host):
    """A handler slower than its lease (operator calls that time out) still holds its
    job: a follow-up it asks for is kept when it finishes (the chaos test saw M-Pesa B2C
    payments left `pending` with their poll job closed)."""
    payment = await create_fake_payment(api)
    pid = uuid.UUID(payment["id"])
    [claimed] = [j for j in await jobs.claim("w-slow", 50, 60) if j["kind"] == "poll"]
    await db.fetch(
        "UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1", claimed.id
    )
    async with db.transaction():
        await jobs.enqueue_payment_job("poll", pid, 30)
    await jobs.finish(claimed, "w-slow")
    [job] = [j for j in await jobs.open_jobs(pid) if j["kind"] == "poll"]
    assert job["id"] == claimed["id"] and job["locked_by"] is None
    assert job["run_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)


async def test_gateways_sharing_redis_share_their_providers_results(migrated_db, redis_url):
    """What one process's webhook puts on `context.results`, another's waiting hook sees
    (the worker and a web process apart); without Redis each keeps its own."""
    config = HostConfig.from_env(host_environ(migrated_db, REDIS_URL=redis_url))
    web, worker = Gateway(config, build_registry(config)), Gateway(config, build_registry(config))
    alone_config = HostConfig.from_env(host_environ(migrated_db))
    alone = Gateway(alone_config, build_registry(alone_config))
    for gateway in (web, worker, alone):
        await gateway.open()
    try:
        key = f"mpesa:result:{uuid.uuid4()}"
        await web.context("mpesa").results.put(key, b"result")
        assert await worker.context("mpesa").results.wait(key, 1.0) == b"result"
        assert await worker.context("airtel").results.wait(key, 0.05) is None  # per provider
        assert await alone.context("mpesa").results.wait(key, 0.05) is None
    finally:
        for gateway in (web, worker, alone):
            await gateway.close()
