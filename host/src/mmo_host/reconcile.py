"""Reconciliation: compare payments with what their operators hold, and repair.

Non-final payments (`pending`, `unknown`, and `new` ones older than the initiate window)
are asked about through the operator's status API and moved exactly as a callback would
move them. Final payments changed since `since` are checked too: if the operator disagrees
with a final state, nothing is changed (final states are final) and the disagreement is
reported for a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmo_core.types import FINAL_STATUSES, StatusReport

from mmo_host import db, jobs, operator, payments, reports
from mmo_host.gateway import Gateway
from mmo_host.records import PaymentRecord


@dataclass
class ReconcileReport:
    checked: int = 0
    changed: list[dict[str, str]] = field(default_factory=list)
    disagreements: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changed": self.changed,
            "disagreements": self.disagreements,
            "errors": self.errors,
        }


async def candidates(gateway: Gateway, since: dt.datetime | None) -> list[Any]:
    window = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=gateway.schedule.resolve_after)
    rows = await db.fetch_as(
        PaymentRecord,
        """SELECT * FROM payments
           WHERE status IN ('pending', 'unknown') OR (status = 'new' AND created_at < $1)
              OR ($2::timestamptz IS NOT NULL AND updated_at >= $2)
           ORDER BY created_at""",
        window,
        since,
    )
    return rows


def agrees(ours: str, amount_reversed_minor: int, operator_status: str) -> bool:
    """Whether the operator's status of a payment agrees with a final status of ours.

    A reversal is its own transaction at most operators (a refund, a B2C back), so the
    status of the original payment still says it succeeded once it is reversed, in full
    or in part: that agrees. The operator saying `reversed` of a payment we reversed in
    part agrees too (it reversed what we reversed). `pending` is never a disagreement.
    """
    if operator_status in (ours, "pending"):
        return True
    if ours == "reversed":
        return operator_status == "succeeded"
    if ours == "succeeded" and operator_status == "reversed":
        return amount_reversed_minor > 0
    return False


async def reconcile(
    gateway: Gateway,
    since: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:
    report = ReconcileReport()
    rows = await candidates(gateway, since)
    for index, row in enumerate(rows, start=1):
        report.checked += 1
        error = await _one(gateway, row, report)
        if error is not None:
            report.errors.append({"id": str(row.id), "error": error})
        if progress is not None:
            progress(index, len(rows))
    return report


async def _one(gateway: Gateway, row: PaymentRecord, report: ReconcileReport) -> str | None:
    """Reconcile one payment; the error that kept it from being checked, if any."""
    if row.status == "new":
        await _stale_new(gateway, row, report)
        return None
    answer = await operator.ask(
        gateway, row, "status", expect=StatusReport, payment=await payments.core_payment(row)
    )
    if answer.kind == "unknown_to_operator" and answer.error is not None:
        if row.status != "unknown" or _age(row) < gateway.schedule.resolve_after:
            return answer.describe()
        after = await payments.never_received(gateway, row, "reconcile", answer.error)
        _changed(report, row, after)
        return None
    if not answer.ok:
        return answer.describe()
    said: StatusReport = answer.value
    if row.status in FINAL_STATUSES:
        if not agrees(row.status, row.amount_reversed_minor, said.status):
            report.disagreements.append(
                {"id": str(row.id), "ours": row.status, "operator": said.status}
            )
        return None
    applied = await reports.apply(gateway, row, said, source="reconcile", authenticated=True)
    if applied.flag == "mismatch":
        return "the operator's amount or phone differ from the payment's"
    if applied.changed:
        _changed(report, row, applied.row)
    return None


def _age(row: PaymentRecord) -> float:
    return (dt.datetime.now(dt.UTC) - row.created_at).total_seconds()


def _changed(report: ReconcileReport, before: Any, after: Any) -> None:
    if after.status != before.status:
        report.changed.append({"id": str(before.id), "from": before.status, "to": after.status})


async def _stale_new(gateway: Gateway, row: PaymentRecord, report: ReconcileReport) -> None:
    """A `new` payment past its window with no send queued: its outcome was never recorded.

    Where the provider makes a resend safe it is sent again, as the worker would;
    otherwise it becomes `unknown`, to be found out through the status API."""
    open_kinds = {j.kind for j in await jobs.open_jobs(row.id)}
    if "send" in open_kinds:
        return
    if gateway.registry.get(row.provider).declaration.resend_safe:
        after = await payments.send_to_operator(gateway, row)
    else:
        after = (
            await payments.apply_transition(
                gateway,
                row.id,
                "unknown",
                source="reconcile",
                detail={"reason": "initiate outcome was never recorded"},
            )
        ).row
    _changed(report, row, after)
