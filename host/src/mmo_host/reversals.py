"""Reversals of payments: the one owner of their state machine and of the reversed money.

A reversal is a row of `reversals`. Its states and the changes allowed between them are
the table `ALLOWED`, like the payment's; every change goes through `move` (a checked,
row-locked update) and the reversed amount is counted in exactly one place, `complete`,
which also ends the payment (`succeeded -> reversed` through `payments.apply_transition`)
once nothing is left, or emits `payment.partially_reversed`.

- `begin` opens a reversal for the API (a new row, or a failed one tried again with its
  Idempotency-Key) with the job that settles it should the process die mid-call;
- `answer` records what the operator said to `reverse`, or to the worker's
  `reversal_status`, from an `operator.Answer`;
- `reported_by_operator` is a callback or a status answer saying the whole payment is
  reversed: it completes the open reversal, or records the operator's own reversal of
  what was left, so the money is still counted once.

The host, not the plugin, tells a partial reversal from a full one: every reversal is
handed to the provider's hooks in `Payment.reversals` (payments.core_payment).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from mmo_core import money
from mmo_core.types import Reversal, StatusReport

from mmo_host import attention, db, jobs, payments
from mmo_host.gateway import Gateway
from mmo_host.operator import Answer
from mmo_host.records import PaymentRecord, ReversalRecord

log = logging.getLogger("mmo.reversals")

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"in_progress", "reversed"}),
    "in_progress": frozenset({"pending", "unknown", "reversed", "failed"}),
    "pending": frozenset({"pending", "unknown", "reversed", "failed"}),
    "unknown": frozenset({"pending", "unknown", "reversed", "failed"}),
    "failed": frozenset({"in_progress"}),  # known not to have taken effect: tried again
    "reversed": frozenset(),
}
# states that forbid another reversal of the payment, and that the worker follows up
OPEN = ("in_progress", "pending", "unknown")


class ReversalRefused(Exception):
    """A change the reversal state machine does not allow (a bug of the caller)."""


def resource(row: ReversalRecord, currency: str) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "payment_id": str(row.payment_id),
        "status": row.status,
        "amount": money.format_amount(row.amount_minor, currency),
        "currency": currency,
        "reason": row.reason,
        "provider_reference": row.provider_reference,
        "provider_transaction_id": row.provider_transaction_id,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def to_core(row: ReversalRecord, currency: str) -> Reversal:
    """The reversal as handed to the provider's `reversal_status` hook."""
    return payments.reversal_to_core(row, currency)


async def get(payment_id: uuid.UUID, reversal_id: uuid.UUID | None) -> ReversalRecord | None:
    if reversal_id is None:
        return None
    return await db.fetchrow_as(
        ReversalRecord,
        "SELECT * FROM reversals WHERE id = $1 AND payment_id = $2",
        reversal_id,
        payment_id,
    )


async def of_payment(payment_id: uuid.UUID) -> list[ReversalRecord]:
    return await db.fetch_as(
        ReversalRecord,
        "SELECT * FROM reversals WHERE payment_id = $1 ORDER BY created_at, id",
        payment_id,
    )


async def by_key(payment_id: uuid.UUID, key: str | None) -> ReversalRecord | None:
    if key is None:
        return None
    return await db.fetchrow_as(
        ReversalRecord,
        "SELECT * FROM reversals WHERE payment_id = $1 AND idempotency_key = $2",
        payment_id,
        key,
    )


async def open_of(payment_id: uuid.UUID) -> ReversalRecord | None:
    """The payment's open reversal (at most one, by a unique index), or None."""
    return await db.fetchrow_as(
        ReversalRecord,
        "SELECT * FROM reversals WHERE payment_id = $1 AND status = ANY($2::text[])",
        payment_id,
        list(OPEN),
    )


# -- the state machine --------------------------------------------------------------------


async def move(
    reversal_id: uuid.UUID,
    to: str,
    *,
    error: str | None = None,
    report: StatusReport | None = None,
) -> Any:
    """Move a reversal to `to` with what the operator said of it; the row afterwards.

    Raises `ReversalRefused` for a change `ALLOWED` forbids. `reversed` is `complete`'s
    alone, since it counts the money.
    """
    async with db.transaction():
        row = await db.fetchone_as(
            ReversalRecord, "SELECT * FROM reversals WHERE id = $1 FOR UPDATE", reversal_id
        )
        _check(row.status if row else None, to, reversal_id)
        return await _write(reversal_id, to, error, report)


def _check(current: str | None, to: str, reversal_id: Any) -> None:
    if to not in ALLOWED[current]:
        raise ReversalRefused(f"reversal {reversal_id}: {current} -> {to} is not allowed")


async def _write(
    reversal_id: uuid.UUID, to: str, error: str | None, report: StatusReport | None
) -> Any:
    written = await _update(reversal_id, to, error, report)
    if to in ("reversed", "failed"):  # ended: a person need not look at it any more
        await attention.resolve(written.payment_id, f"reversal {to}", attention.REVERSAL_REASONS)
    return written


async def _update(
    reversal_id: uuid.UUID, to: str, error: str | None, report: StatusReport | None
) -> Any:
    return await db.fetchone_as(
        ReversalRecord,
        """UPDATE reversals SET status = $2, error = COALESCE($3, error),
               provider_reference = COALESCE($4, provider_reference),
               provider_transaction_id = COALESCE($5, provider_transaction_id),
               provider_data = provider_data || COALESCE($6::jsonb, '{}'::jsonb),
               updated_at = now()
           WHERE id = $1 RETURNING *""",
        reversal_id,
        to,
        error,
        report.provider_reference if report else None,
        report.provider_transaction_id if report else None,
        db.jsonb(report.provider_data or None) if report else None,
    )


async def begin(
    gateway: Gateway, row: PaymentRecord, *, key: str | None, digest: str, minor: int, reason: str
) -> Any:
    """Open a reversal of `row` (locked by the caller's transaction): a new one, or the
    failed one of the same Idempotency-Key tried again. With it, the job that settles it
    should this process die while calling the operator."""
    earlier = await by_key(row.id, key)
    if earlier is not None:
        _check(earlier.status, "in_progress", earlier.id)
        reversal = await db.fetchone_as(
            ReversalRecord,
            """UPDATE reversals SET status = 'in_progress', error = NULL, amount_minor = $2,
                   updated_at = now()
               WHERE id = $1 RETURNING *""",
            earlier.id,
            minor,
        )
    else:
        reversal = await db.fetchone_as(
            ReversalRecord,
            """INSERT INTO reversals (id, payment_id, idempotency_key, request_hash,
                   amount_minor, reason, status)
               VALUES ($1, $2, $3, $4, $5, $6, 'in_progress') RETURNING *""",
            uuid.uuid4(),
            row.id,
            key,
            digest,
            minor,
            reason,
        )
    await jobs.enqueue_payment_job("reversal", row.id, gateway.schedule.resolve_after)
    return reversal


async def answer(
    gateway: Gateway, row: PaymentRecord, reversal: ReversalRecord, answer: Answer, source: str
) -> Any:
    """Record what the operator said of a reversal (to `reverse` or `reversal_status`);
    return the reversal afterwards. Open ones are followed up by the worker."""
    if answer.ok:
        await _reported(gateway, row, reversal, answer.value, source)
    elif answer.kind in ("declined", "not_sent"):
        # a refusal, or a request that certainly did not take effect: may be tried again
        code = answer.error.provider_code if answer.error is not None else None
        error = f"{answer.reason}:{code}" if code else answer.reason
        await move(reversal.id, "failed", error=error)
    elif answer.kind == "unknown_to_operator":
        await move(reversal.id, "failed", error=f"{answer.reason}:never received")
    else:
        await move(reversal.id, "unknown", error=answer.reason)
        await follow_up(gateway, row)
    return await db.fetchone_as(
        ReversalRecord, "SELECT * FROM reversals WHERE id = $1", reversal.id
    )


async def _reported(
    gateway: Gateway,
    row: PaymentRecord,
    reversal: ReversalRecord,
    report: StatusReport,
    source: str,
) -> None:
    if report.status == "reversed":
        await complete(gateway, row.id, reversal.id, report, source)
    elif report.status in ("failed", "expired"):
        failure = report.failure
        error = f"declined:{failure.code}" if failure else report.status
        await move(reversal.id, "failed", error=error)
    elif report.status == "pending":
        await move(reversal.id, "pending", report=report)
        if report.provider_data:  # what the provider keeps of it is the payment's too
            await db.fetch(
                "UPDATE payments SET provider_data = provider_data || $2::jsonb WHERE id = $1",
                row.id,
                db.jsonb(report.provider_data),
            )
        await follow_up(gateway, row)
    else:  # an answer a reversal cannot have (e.g. "succeeded")
        await move(reversal.id, "unknown", error=f"unexpected_status:{report.status}")
        await follow_up(gateway, row)


async def follow_up(gateway: Gateway, row: PaymentRecord) -> None:
    """Have the worker ask the operator about a pending or unknown reversal."""
    if gateway.registry.get(row.provider).implements("reversal_status"):
        await jobs.enqueue_payment_job(
            "reversal", row.id, gateway.schedule.first_poll(row.provider)
        )


# -- the reversed money -----------------------------------------------------------------------


async def complete(
    gateway: Gateway,
    payment_id: uuid.UUID,
    reversal_id: uuid.UUID,
    report: StatusReport,
    source: str,
    note: str | None = None,
    callback_id: uuid.UUID | None = None,
) -> Any:
    """The operator reversed it: count its amount once, end the payment when nothing is
    left (`reversed`), else tell the orchestrator (`payment.partially_reversed`). `note`
    goes to the reversal's `error` column (a person's note when settled by hand)."""
    async with db.transaction():
        row = await db.fetchone_as(
            PaymentRecord, "SELECT * FROM payments WHERE id = $1 FOR UPDATE", payment_id
        )
        reversal = await db.fetchone_as(
            ReversalRecord, "SELECT * FROM reversals WHERE id = $1 FOR UPDATE", reversal_id
        )
        if reversal.status == "reversed":  # counted already
            return row
        _check(reversal.status, "reversed", reversal_id)
        reversal = await _write(reversal_id, "reversed", note, report)
        minor = reversal.amount_minor
        row = await db.fetchone_as(
            PaymentRecord,
            """UPDATE payments SET
                   amount_reversed_minor = LEAST(amount_minor, amount_reversed_minor + $2),
                   provider_data = provider_data || COALESCE($3::jsonb, '{}'::jsonb),
                   updated_at = now(), version = version + 1
               WHERE id = $1 RETURNING *""",
            payment_id,
            minor,
            db.jsonb(report.provider_data or None),
        )
        detail = {
            "reversal": str(reversal_id),
            "amount": money.format_amount(minor, row.currency),
            "partial": minor < row.amount_minor,
            "reason": reversal.reason,
            "provider_transaction_id": report.provider_transaction_id,
        }
        if row.amount_reversed_minor >= row.amount_minor and row.status == "succeeded":
            transition = await payments.apply_transition(
                gateway,
                payment_id,
                "reversed",
                source=source,
                detail=detail,
                callback_id=callback_id,
            )
            row = transition.row
        else:
            await payments.emit_event(gateway, row, "payment.partially_reversed")
    log.info("payment %s: reversal %s done", payment_id, reversal_id)
    return row


async def reported_by_operator(
    gateway: Gateway,
    row: PaymentRecord,
    report: StatusReport,
    *,
    source: str,
    callback_id: uuid.UUID | None = None,
) -> payments.Transition:
    """A callback or a status answer says the payment is reversed.

    It completes the payment's open reversal; with none open, the operator reversed what
    was left on its own (its portal, a person there), which is recorded as a reversal of
    that amount. A payment that is not `succeeded` changes nothing (`changed=False`).
    """
    if row.status != "succeeded":
        return payments.Transition(row, False, row.status)
    async with db.transaction():
        reversal = await open_of(row.id)
        if reversal is None:
            left = row.amount_minor - row.amount_reversed_minor
            reversal = await db.fetchone_as(
                ReversalRecord,
                """INSERT INTO reversals (id, payment_id, request_hash, amount_minor, reason,
                       status)
                   VALUES ($1, $2, '', $3, 'reported by the operator', 'in_progress')
                   RETURNING *""",
                uuid.uuid4(),
                row.id,
                left,
            )
        after = await complete(
            gateway, row.id, reversal.id, report, source, callback_id=callback_id
        )
    return payments.Transition(after, after.status != row.status, row.status)


__all__ = [
    "ALLOWED",
    "OPEN",
    "ReversalRefused",
    "answer",
    "begin",
    "complete",
    "follow_up",
    "move",
    "open_of",
    "reported_by_operator",
    "resource",
    "to_core",
]
