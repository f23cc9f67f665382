"""The job queue of the background worker, on the gateway's own Postgres.

Jobs are rows of `jobs`, inserted in the same transaction as the change that needs them
(a payment going `pending` gets its `poll` job, an event its `deliver` jobs), so a crash
can never leave a change without its follow-up. Workers claim due jobs with
`FOR UPDATE SKIP LOCKED` and a lease: two workers never run one job at once, and the job of
a worker that died is taken again when its lease ends. Handlers are idempotent (every
status change goes through `apply_transition`), so running a job again is harmless.

Kinds:
- `poll`: ask the operator where a `pending` / `unknown` payment stands.
- `resolve`: a payment still `new` after the initiate window (the host died mid-call).
- `send`: send a queued `new` payment (breaker open, or operator unavailable).
- `deliver`: deliver an event to one orchestrator URL; `stream`: to the Redis stream.
- `rematch`: match again a callback that arrived before the payment could be found.
- `reconcile`: the periodic reconciliation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from mmo_host import db
from mmo_host.records import JobRecord, PaymentRecord
from mmo_host.schedule import Schedule

PAYMENT_KINDS = ("poll", "resolve", "send")


def _at(delay: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)


_ENQUEUE_PAYMENT_JOB = """INSERT INTO jobs (kind, payment_id, run_at) VALUES ($1, $2, $3)
   ON CONFLICT (kind, payment_id)
       WHERE done_at IS NULL AND payment_id IS NOT NULL AND event_id IS NULL
   DO UPDATE SET
       run_at = CASE WHEN jobs.locked_by IS NOT NULL THEN EXCLUDED.run_at
                     ELSE LEAST(jobs.run_at, EXCLUDED.run_at) END,
       rescheduled = jobs.locked_by IS NOT NULL"""

_CLOSE_PAYMENT_JOBS = """UPDATE jobs SET done_at = now(), last_error = 'no longer needed'
   WHERE payment_id = $1 AND kind = ANY($2::text[]) AND done_at IS NULL
     AND (locked_until IS NULL OR locked_until < now())"""

_ENQUEUE_EVENT = """INSERT INTO jobs (kind, payment_id, event_id, target)
   SELECT kind, $1, $2, target FROM unnest($3::text[], $4::text[]) AS t (kind, target)
   ON CONFLICT (event_id, target) WHERE event_id IS NOT NULL DO NOTHING"""

# the same as attention.resolve with no reasons: every open entry of the payment
_RESOLVE_ATTENTION = """UPDATE attention SET resolved_at = now(), resolution = $2,
       updated_at = now()
   WHERE payment_id = $1 AND resolved_at IS NULL"""


async def enqueue_payment_job(kind: str, payment_id: uuid.UUID, delay: float) -> None:
    """One open job of `kind` per payment; an existing one is moved earlier, never later.

    When the open job is one running now (its own handler, or a change it caused, asks
    for a job of its kind), it is marked `rescheduled` for the new time: finishing it then
    keeps it open instead of closing it, so the follow-up is never lost. "Running" is
    "claimed and not yet finished or retried", whether or not its lease has run out: a
    handler slower than its lease (operator calls that time out) still finishes it.
    """
    batch = db.Batch()
    add_payment_job(batch, kind, payment_id, delay)
    await batch.run()


def add_payment_job(batch: db.Batch, kind: str, payment_id: uuid.UUID, delay: float) -> None:
    """`enqueue_payment_job` as a part of `batch`."""
    batch.add(_ENQUEUE_PAYMENT_JOB, kind, payment_id, _at(delay))


async def close_payment_jobs(payment_id: uuid.UUID, kinds: tuple[str, ...]) -> None:
    """Close the open, unclaimed jobs of a payment that no longer needs them."""
    batch = db.Batch()
    add_close_payment_jobs(batch, payment_id, kinds)
    await batch.run()


def add_close_payment_jobs(batch: db.Batch, payment_id: uuid.UUID, kinds: tuple[str, ...]) -> None:
    """`close_payment_jobs` as a part of `batch`."""
    batch.add(_CLOSE_PAYMENT_JOBS, payment_id, list(kinds))


async def enqueue_event(
    schedule: Schedule, event_id: uuid.UUID, payment_id: uuid.UUID | None
) -> None:
    """The delivery jobs of an event (`payment_id` None for a batch's event)."""
    batch = db.Batch()
    add_event_jobs(batch, schedule, event_id, payment_id)
    await batch.run()


def add_event_jobs(
    batch: db.Batch, schedule: Schedule, event_id: uuid.UUID, payment_id: uuid.UUID | None
) -> None:
    """The delivery jobs of an event as one part of `batch`: a `deliver` job per URL, and
    a `stream` job when Redis is configured (none at all: no part)."""
    kinds = ["deliver"] * len(schedule.event_targets)
    targets = list(schedule.event_targets)
    if schedule.event_stream:
        kinds.append("stream")
        targets.append("redis")
    if targets:
        batch.add(_ENQUEUE_EVENT, payment_id, event_id, kinds, targets)


async def enqueue_rematch(callback_id: uuid.UUID, delay: float) -> None:
    await db.fetch(
        "INSERT INTO jobs (kind, target, run_at) VALUES ('rematch', $1, $2)",
        str(callback_id),
        _at(delay),
    )


async def after_transition(schedule: Schedule, row: PaymentRecord, previous: str | None) -> None:
    """The follow-up jobs of a status change (called inside its transaction)."""
    batch = db.Batch()
    add_after_transition(batch, schedule, row, previous)
    await batch.run()


def add_after_transition(
    batch: db.Batch, schedule: Schedule, row: PaymentRecord, previous: str | None
) -> None:
    """`after_transition` as parts of `batch` (they touch different jobs: the kinds
    closed are never the kind enqueued)."""
    status = row.status
    pid = row.id
    if status == "new" and previous is None:
        add_payment_job(batch, "resolve", pid, schedule.resolve_after)
    elif status == "pending":
        add_close_payment_jobs(batch, pid, ("resolve", "send"))
        add_payment_job(batch, "poll", pid, schedule.first_poll(row.provider))
    elif status == "unknown":
        add_close_payment_jobs(batch, pid, ("resolve", "send"))
        add_payment_job(batch, "poll", pid, schedule.unknown_first)
    else:  # final: nothing to follow up, and nothing left for a person about it
        add_close_payment_jobs(batch, pid, PAYMENT_KINDS)
        batch.add(_RESOLVE_ATTENTION, pid, f"payment {status}")


# -- claiming and finishing ----------------------------------------------------------------


async def claim(worker_id: str, limit: int, lease: float) -> list[Any]:
    """Due jobs, leased to `worker_id`. A job whose last holder's lease ran out without
    finishing or retrying it comes back `interrupted`: whatever that holder was doing (an
    operator call) may have happened."""
    return await db.fetch_as(
        JobRecord,
        """WITH due AS (
               SELECT id, locked_by IS NOT NULL AS interrupted FROM jobs
               WHERE done_at IS NULL AND run_at <= now()
                 AND (locked_until IS NULL OR locked_until < now())
               ORDER BY run_at
               LIMIT $3
               FOR UPDATE SKIP LOCKED)
           UPDATE jobs SET locked_by = $1, locked_until = now() + make_interval(secs => $2),
                           attempts = attempts + 1, rescheduled = false
           FROM due WHERE jobs.id = due.id
           RETURNING jobs.*, due.interrupted""",
        worker_id,
        lease,
        limit,
    )


async def finish(job: JobRecord, worker_id: str, note: str | None = None) -> None:
    """Close a claimed job, unless it was rescheduled while it ran (then give it back)."""
    await db.fetch(
        """UPDATE jobs SET done_at = CASE WHEN rescheduled THEN NULL ELSE now() END,
                           locked_by = NULL, locked_until = NULL, rescheduled = false,
                           last_error = COALESCE($3, last_error)
           WHERE id = $1 AND locked_by = $2""",
        job.id,
        worker_id,
        note,
    )


async def retry(job: JobRecord, worker_id: str, delay: float, error: str | None = None) -> None:
    await db.fetch(
        """UPDATE jobs SET run_at = $3, locked_by = NULL, locked_until = NULL, last_error = $4
           WHERE id = $1 AND locked_by = $2""",
        job.id,
        worker_id,
        _at(delay),
        error,
    )


async def open_jobs(payment_id: uuid.UUID | None = None) -> list[Any]:
    if payment_id is None:
        return await db.fetch_as(
            JobRecord, "SELECT * FROM jobs WHERE done_at IS NULL ORDER BY run_at"
        )
    return await db.fetch_as(
        JobRecord,
        "SELECT * FROM jobs WHERE done_at IS NULL AND payment_id = $1 ORDER BY run_at",
        payment_id,
    )
