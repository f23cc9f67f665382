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

from mmo_core.errors import MmoError, UnknownToOperator
from mmo_core.types import FINAL_STATUSES

from mmo_host import db, jobs, payments
from mmo_host.gateway import Gateway


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


async def candidates(since: dt.datetime | None) -> list[Any]:
    window = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=jobs.POLICY.resolve_after)
    rows = await db.fetch(
        """SELECT * FROM payments
           WHERE status IN ('pending', 'unknown') OR (status = 'new' AND created_at < $1)
              OR ($2::timestamptz IS NOT NULL AND updated_at >= $2)
           ORDER BY created_at""",
        window,
        since,
    )
    return rows


async def reconcile(
    gateway: Gateway,
    since: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:
    report = ReconcileReport()
    rows = await candidates(since)
    for index, row in enumerate(rows, start=1):
        report.checked += 1
        try:
            await _one(gateway, row, report)
        except (MmoError, payments.BreakerOpen, TimeoutError) as exc:
            report.errors.append({"id": str(row["id"]), "error": f"{type(exc).__name__}: {exc}"})
        if progress is not None:
            progress(index, len(rows))
    return report


async def _one(gateway: Gateway, row: Any, report: ReconcileReport) -> None:
    if row["status"] == "new":
        return await _stale_new(row, report)
    try:
        answer = await payments.call_operator(
            gateway, row, "status", payment=await payments.core_payment(row)
        )
    except UnknownToOperator as exc:
        age = (dt.datetime.now(dt.UTC) - row["created_at"]).total_seconds()
        if row["status"] != "unknown" or age < jobs.POLICY.resolve_after:
            raise
        after = await payments.never_received(gateway, row, "reconcile", exc)
        if after["status"] != row["status"]:
            report.changed.append(
                {"id": str(row["id"]), "from": row["status"], "to": after["status"]}
            )
        return None
    if row["status"] in FINAL_STATUSES:
        if answer.status != row["status"] and answer.status != "pending":
            report.disagreements.append(
                {"id": str(row["id"]), "ours": row["status"], "operator": answer.status}
            )
        return None
    transition = await payments.apply_transition(
        row["id"],
        answer.status,
        source="reconcile",
        provider_reference=answer.provider_reference,
        provider_transaction_id=answer.provider_transaction_id,
        provider_data=answer.provider_data or None,
        failure=answer.failure,
    )
    if transition.changed:
        report.changed.append(
            {"id": str(row["id"]), "from": row["status"], "to": transition.row["status"]}
        )
    return None


async def _stale_new(row: Any, report: ReconcileReport) -> None:
    """A `new` payment past its window with no send queued: its outcome was never recorded."""
    open_kinds = {j["kind"] for j in await jobs.open_jobs(row["id"])}
    if "send" in open_kinds:
        return
    transition = await payments.apply_transition(
        row["id"],
        "unknown",
        source="reconcile",
        detail={"reason": "initiate outcome was never recorded"},
    )
    if transition.changed:
        report.changed.append({"id": str(row["id"]), "from": "new", "to": "unknown"})
