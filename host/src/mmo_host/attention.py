"""The attention list: the payments the gateway could not decide alone, put in front of a
person with their evidence.

No payment stays open silently: every payment in `new`, `pending` or `unknown` (and every
open reversal) has either a scheduled job that will ask about it again, or an open entry
here saying why no job will (`reason`) and what was gathered (`evidence`: the last
operator answers and job notes, the callbacks kept for it, the history). `unowned()` finds
the payments that have neither; the worker checks it and flags any as `no_follow_up`.

An entry stays open until the payment ends (the settle routes, where a person records what
the operator's portal shows; or a late callback, poll or reconciliation): `resolve` is
called by the status change itself (`jobs.after_transition`) and by reversals' end.

Reasons:
- `gave_up_polling`: the operator's window passed and its status API never gave a final
  answer (or could not be reached);
- `cannot_ask`: the operator refuses to be asked about this payment (no identifier it
  knows it by, such as an M-Pesa STK push whose CheckoutRequestID was never stored, or our
  credential refused);
- `mismatch`: the operator reports another amount or number than ours;
- `reversal_gave_up` / `reversal_cannot_ask`: the same for a reversal;
- `no_follow_up`: found by the invariant check: open with no job (a bug, or a job lost).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from mmo_host import db

log = logging.getLogger("mmo.attention")

REVERSAL_REASONS = ("reversal_gave_up", "reversal_cannot_ask")
OPEN_PAYMENT_STATUSES = ("new", "pending", "unknown")
OPEN_REVERSAL_STATUSES = ("in_progress", "pending", "unknown")


async def flag(payment_id: uuid.UUID, reason: str, evidence: dict[str, Any] | None = None) -> None:
    """Put the payment on the list for `reason` (once: a second flag for the same open
    reason refreshes its evidence), with the evidence given and gathered."""
    gathered = await gather(payment_id)
    gathered.update(evidence or {})
    await db.fetch(
        """INSERT INTO attention (id, payment_id, reason, evidence)
           VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (payment_id, reason) WHERE resolved_at IS NULL
           DO UPDATE SET evidence = EXCLUDED.evidence, updated_at = now()""",
        uuid.uuid4(),
        payment_id,
        reason[:64],
        db.jsonb(gathered),
    )
    log.warning("payment %s needs a person: %s", payment_id, reason)


async def resolve(
    payment_id: uuid.UUID, resolution: str, reasons: tuple[str, ...] | None = None
) -> int:
    """Close the payment's open entries (those of `reasons` only, when given); how many."""
    rows = await db.fetch(
        """UPDATE attention SET resolved_at = now(), resolution = $2, updated_at = now()
           WHERE payment_id = $1 AND resolved_at IS NULL
             AND ($3::text[] IS NULL OR reason = ANY($3::text[]))
           RETURNING id""",
        payment_id,
        resolution[:1000],
        list(reasons) if reasons is not None else None,
    )
    return len(rows)


async def gather(payment_id: uuid.UUID) -> dict[str, Any]:
    """What a person needs to decide: the payment's last history entries, its jobs' last
    notes (the operator's last answers) and the callbacks kept for it."""
    history = await db.fetch(
        """SELECT from_status, to_status, source, created_at FROM payment_transitions
           WHERE payment_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10""",
        payment_id,
    )
    notes = await db.fetch(
        """SELECT kind, attempts, last_error, done_at FROM jobs
           WHERE payment_id = $1 AND event_id IS NULL ORDER BY created_at DESC LIMIT 10""",
        payment_id,
    )
    callbacks = await db.fetch(
        """SELECT id, kind, received_at, verified, flag, error FROM callbacks
           WHERE payment_id = $1 ORDER BY received_at DESC LIMIT 10""",
        payment_id,
    )
    return {
        "history": [
            {
                "from": h["from_status"],
                "to": h["to_status"],
                "source": h["source"],
                "at": h["created_at"].isoformat(),
            }
            for h in history
        ],
        "jobs": [
            {"kind": j["kind"], "attempts": j["attempts"], "last_error": j["last_error"]}
            for j in notes
        ],
        "callbacks": [
            {
                "id": str(c["id"]),
                "kind": c["kind"],
                "received_at": c["received_at"].isoformat(),
                "verified": c["verified"],
                "flag": c["flag"],
                "error": c["error"],
            }
            for c in callbacks
        ],
    }


async def open_entries(limit: int = 100, after: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open entries, oldest first (`after`: the created_at of the last one seen)."""
    rows = await db.fetch(
        """SELECT a.id, a.payment_id, a.reason, a.evidence, a.created_at, a.updated_at,
                  p.provider, p.account, p.status, p.type
           FROM attention a JOIN payments p ON p.id = a.payment_id
           WHERE a.resolved_at IS NULL AND ($2::timestamptz IS NULL OR a.created_at > $2)
           ORDER BY a.created_at, a.id LIMIT $1""",
        limit,
        after,
    )
    return [
        {
            "id": str(r["id"]),
            "payment_id": str(r["payment_id"]),
            "reason": r["reason"],
            "evidence": db.loads(r["evidence"], {}),
            "provider": r["provider"],
            "account": r["account"],
            "status": r["status"],
            "type": r["type"],
            "created_at": r["created_at"],
            "updated_at": r["updated_at"],
        }
        for r in rows
    ]


async def count_open() -> int:
    row = await db.fetchrow("SELECT count(*) AS n FROM attention WHERE resolved_at IS NULL")
    return int(row["n"]) if row else 0


async def unowned(limit: int = 1000) -> list[uuid.UUID]:
    """Open payments and payments with an open reversal that have neither an open job
    that follows them up nor an open attention entry: the invariant says none."""
    rows = await db.fetch(
        """SELECT p.id FROM payments p
           WHERE (p.status = ANY($1::text[])
                  OR EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = p.id
                             AND r.status = ANY($2::text[])))
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.payment_id = p.id
                             AND j.done_at IS NULL AND j.event_id IS NULL)
             AND NOT EXISTS (SELECT 1 FROM attention a WHERE a.payment_id = p.id
                             AND a.resolved_at IS NULL)
           ORDER BY p.created_at LIMIT $3""",
        list(OPEN_PAYMENT_STATUSES),
        list(OPEN_REVERSAL_STATUSES),
        limit,
    )
    return [r["id"] for r in rows]


async def check_invariant() -> int:
    """Flag every unowned payment (`no_follow_up`); how many there were."""
    found = await unowned()
    for payment_id in found:
        await flag(payment_id, "no_follow_up", {"found_by": "invariant check"})
    if found:
        log.error("%d open payment(s) had no follow-up: put on the attention list", len(found))
    return len(found)


__all__ = [
    "REVERSAL_REASONS",
    "check_invariant",
    "count_open",
    "flag",
    "gather",
    "open_entries",
    "resolve",
    "unowned",
]
