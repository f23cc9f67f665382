"""What one payment transition costs the database: no reset on every connection release,
and one status change in two statements inside its transaction, with the same writes as
before (history, event, delivery jobs, follow-up jobs, attention, first answer)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from mmo_host import attention, database, db, payments
from mmo_host.records import JobRecord

from tests.test_webhooks import create_fake_payment


async def test_a_released_connection_costs_no_reset_round_trip(migrated_db):
    pool = database.get_engine().pool
    assert pool is not None
    sent: list[str] = []

    def logger(record: Any) -> None:
        sent.append(record.query)

    async with pool.acquire() as connection:
        connection.add_query_logger(logger)
        await connection.fetch("SELECT 1")
        raw = connection._con  # the connection itself, which outlives the pool's proxy
    try:
        # asyncpg's default reset would have sent `SELECT pg_advisory_unlock_all(); ...`
        assert sent == ["SELECT 1"]
    finally:
        raw.remove_query_logger(logger)


async def test_a_connection_released_in_a_transaction_comes_back_rolled_back(migrated_db):
    pool = database.get_engine().pool
    assert pool is not None
    async with pool.acquire() as connection:
        await connection.execute("BEGIN")
        await connection.execute("CREATE TEMPORARY TABLE left_open (x int) ON COMMIT DROP")
        raw = connection._con
    assert not raw.is_in_transaction()
    # the rolled-back table is gone: nothing of the abandoned transaction stayed
    assert await raw.fetchval("SELECT to_regclass('pg_temp.left_open')") is None


def test_a_batch_numbers_each_parts_parameters_after_the_last():
    batch = db.Batch()
    batch.add("INSERT INTO a VALUES ($1, $2)", 1, 2)
    batch.add("UPDATE b SET x = $2 WHERE id = $1", 3, 4)
    assert (
        batch.sql()
        == "WITH w0 AS (INSERT INTO a VALUES ($1, $2)) UPDATE b SET x = $4 WHERE id = $3"
    )
    assert batch.args == [1, 2, 3, 4]


def _counting(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = db.fetch

    async def fetch(sql: str, *args: Any):
        seen.append(sql)
        return await real(sql, *args)

    monkeypatch.setattr(db, "fetch", fetch)
    return seen


async def test_a_status_change_is_two_statements_with_every_write(api, host, monkeypatch):
    created = await create_fake_payment(api)
    pid = uuid.UUID(created["id"])
    before = await payments.get(created["id"])
    await attention.flag(pid, "cannot_ask")
    statements = _counting(monkeypatch)

    transition = await payments.apply_transition(
        host.gateway,
        pid,
        "succeeded",
        source="poll",
        provider_transaction_id="RCPT-1",
        detail={"why": "test"},
        record_response=True,
    )

    assert len(statements) == 2, statements  # lock and update; everything it writes
    assert transition.changed and transition.previous == before.status
    row = transition.row
    assert row.status == "succeeded" and row.provider_transaction_id == "RCPT-1"
    assert row.version == before.version + 1
    history = await db.fetch(
        "SELECT * FROM payment_transitions WHERE payment_id = $1 ORDER BY id", pid
    )
    last = history[-1]
    assert (last["from_status"], last["to_status"], last["source"]) == (
        before.status,
        "succeeded",
        "poll",
    )
    assert db.loads(last["detail"]) == {"why": "test"}
    event = await db.fetchrow(
        "SELECT * FROM outbox_events WHERE payment_id = $1 AND type = 'payment.succeeded'", pid
    )
    assert event is not None and db.loads(event["payload"])["status"] == "succeeded"
    deliveries = await db.fetch_as(JobRecord, "SELECT * FROM jobs WHERE event_id = $1", event["id"])
    assert [(j.kind, j.target) for j in deliveries] == [
        ("deliver", target) for target in host.gateway.schedule.event_targets
    ]
    assert (
        await db.fetch(
            "SELECT kind FROM jobs WHERE payment_id = $1 AND event_id IS NULL AND done_at IS NULL",
            pid,
        )
        == []
    )
    entries = await db.fetch("SELECT * FROM attention WHERE payment_id = $1", pid)
    assert [(e["resolution"], e["resolved_at"] is not None) for e in entries] == [
        ("payment succeeded", True)
    ]
    stored = await payments.get(created["id"])
    assert db.loads(stored.first_response)["status"] == "succeeded"


async def test_a_change_not_allowed_writes_only_a_missing_identifier(api, host, monkeypatch):
    created = await create_fake_payment(api)
    pid = uuid.UUID(created["id"])
    await payments.apply_transition(host.gateway, pid, "failed", source="poll")
    count = len(await db.fetch("SELECT 1 FROM payment_transitions WHERE payment_id = $1", pid))
    statements = _counting(monkeypatch)

    late = await payments.apply_transition(
        host.gateway, pid, "succeeded", source="callback", provider_transaction_id="LATE-1"
    )

    assert len(statements) == 1
    assert not late.changed and late.previous == "failed"
    assert late.row.status == "failed" and late.row.provider_transaction_id == "LATE-1"
    after = await db.fetch("SELECT 1 FROM payment_transitions WHERE payment_id = $1", pid)
    assert len(after) == count


async def test_two_concurrent_final_reports_change_a_payment_once(api, host):
    created = await create_fake_payment(api)
    pid = uuid.UUID(created["id"])
    outcomes = await asyncio.gather(
        *(
            payments.apply_transition(host.gateway, pid, status, source="callback")
            for status in ("succeeded", "failed", "succeeded", "expired")
        )
    )
    changed = [t for t in outcomes if t.changed]
    assert len(changed) == 1
    final = changed[0].row.status
    assert all(t.row.status == final for t in outcomes)
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1 AND type = $2",
        pid,
        f"payment.{final}",
    )
    assert len(events) == 1


async def test_a_missing_payment_is_not_found(host, clean_db):
    import pytest

    with pytest.raises(payments.PaymentNotFound):
        await payments.apply_transition(host.gateway, uuid.uuid4(), "failed", source="poll")


def test_the_host_leaves_no_session_state_a_reset_would_undo():
    """The pool's connections are not reset on release (database.keep_session): no host
    statement may leave session state behind (a session advisory lock, LISTEN, a
    session SET, a cursor WITH HOLD)."""
    import re
    from pathlib import Path

    import mmo_host

    session_state = re.compile(
        r"pg_(try_)?advisory_lock(_shared)?\s*\(|(?-i:\bLISTEN\b)|add_listener|WITH\s+HOLD"
        r"|[\"']\s*SET\s+(SESSION\s+)?(?!LOCAL\b)\w+\s*(=|TO\b)",
        re.IGNORECASE,
    )
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in Path(mmo_host.__file__).parent.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if session_state.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
