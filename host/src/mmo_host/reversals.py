"""Reversals of payments: their rows, and what happens when one is done.

A reversal is created by `POST /api/v1/payments/{id}/reversal` (controllers/operations.py)
and ended either there, when the operator answers at once, or by the worker's `reversal`
job, which asks the provider's `reversal_status` hook until the operator says. Both end it
through `complete` or `settle`, so a reversal's money is counted once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from mmo_core import money
from mmo_core.types import Reversal, StatusReport

from mmo_host import db, jobs, payments

log = logging.getLogger("mmo.reversals")

# states that forbid another reversal of the payment, and that the worker follows up
OPEN = ("in_progress", "pending", "unknown")


def resource(row: Any, currency: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "payment_id": str(row["payment_id"]),
        "status": row["status"],
        "amount": money.format_amount(row["amount_minor"], currency),
        "currency": currency,
        "reason": row["reason"],
        "provider_reference": row["provider_reference"],
        "provider_transaction_id": row["provider_transaction_id"],
        "error": row["error"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def to_core(row: Any, currency: str) -> Reversal:
    """The reversal as handed to the provider's `reversal_status` hook."""
    return payments.reversal_to_core(row, currency)


async def open_of(payment_id: uuid.UUID) -> Any:
    """The payment's open reversal (at most one, by a unique index), or None."""
    return await db.fetchrow(
        "SELECT * FROM reversals WHERE payment_id = $1 AND status = ANY($2::text[])",
        payment_id,
        list(OPEN),
    )


async def settle(reversal_id: uuid.UUID, status: str, **fields: Any) -> Any:
    """Record a reversal's new state and what the operator said about it."""
    return await db.fetchrow(
        """UPDATE reversals SET status = $2, error = COALESCE($3, error),
               provider_reference = COALESCE($4, provider_reference),
               provider_transaction_id = COALESCE($5, provider_transaction_id),
               provider_data = provider_data || COALESCE($6::jsonb, '{}'::jsonb),
               updated_at = now()
           WHERE id = $1 RETURNING *""",
        reversal_id,
        status,
        fields.get("error"),
        fields.get("provider_reference"),
        fields.get("provider_transaction_id"),
        db.jsonb(fields.get("provider_data") or None),
    )


def found(report: StatusReport) -> dict[str, Any]:
    return {
        "provider_reference": report.provider_reference,
        "provider_transaction_id": report.provider_transaction_id,
        "provider_data": report.provider_data,
    }


async def complete(
    payment_id: uuid.UUID,
    reversal_id: uuid.UUID,
    report: StatusReport,
    source: str,
    note: str | None = None,
) -> Any:
    """The operator reversed it: count its amount once, end the payment when nothing is
    left (`reversed`), else tell the orchestrator (`payment.partially_reversed`). `note`
    goes to the reversal's `error` column (a person's note when settled by hand)."""
    async with db.transaction():
        row = await db.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE", payment_id)
        reversal = await db.fetchrow(
            "SELECT * FROM reversals WHERE id = $1 FOR UPDATE", reversal_id
        )
        if reversal["status"] == "reversed":  # counted already (a callback ended the payment)
            return row
        reversal = await settle(reversal_id, "reversed", error=note, **found(report))
        minor = reversal["amount_minor"]
        row = await db.fetchrow(
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
            "amount": money.format_amount(minor, row["currency"]),
            "partial": minor < row["amount_minor"],
            "reason": reversal["reason"],
            "provider_transaction_id": report.provider_transaction_id,
        }
        if row["amount_reversed_minor"] >= row["amount_minor"] and row["status"] == "succeeded":
            row = (
                await payments.apply_transition(
                    payment_id, "reversed", source=source, detail=detail
                )
            ).row
        else:
            await payments.emit_event(row, "payment.partially_reversed")
    log.info("payment %s: reversal %s done", payment_id, reversal_id)
    return row


async def follow_up(row: Any, provider_implements_status: bool) -> None:
    """Have the worker ask the operator about a pending or unknown reversal."""
    if provider_implements_status:
        await jobs.enqueue_payment_job(
            "reversal", row["id"], jobs.POLICY.first_poll(row["provider"])
        )


__all__ = ["OPEN", "complete", "follow_up", "open_of", "resource", "settle", "to_core"]
