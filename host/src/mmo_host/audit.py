"""The audit log: every admin action that changes something, kept in Postgres.

A route that changes something wraps its work in `audit.action(...)`:

    async with audit.action(request, "payment.settle", f"payment:{id}", data) as done:
        ...
        return done(Response(...))

The row (`audit_log`) is written before the work starts, with who asked (the caller's
client id and key id, never the key), what (`action`, `target`) and the request; it is
completed afterwards with the HTTP status and the body answered, an error's body included.
If the row cannot be written the action does not run; a row left without a status is an
action whose process died mid-way. Admin actions are rare: two statements each cost
nothing, and they make "nothing changed without a record" hold.

Actions: `payment.settle`, `reversal.settle`, `event.resend`, `transaction.retry`,
`transaction.reverse`, `callback.replay`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from mmo_core.errors import MmoError

from mmo_host import db, errors
from mmo_host.keys import Principal

log = logging.getLogger("mmo.audit")

T = TypeVar("T")


def _builtins(value: Any) -> Any:
    """A body as JSON-ready values (Structs, datetimes and UUIDs as text)."""
    if isinstance(value, Response):
        value = value.content
    return msgspec.to_builtins(value, str_keys=True, enc_hook=str)


def _error_answer(request: Request, exc: Exception) -> tuple[int, Any]:
    """The status and body the API answers this error with (mmo_host.errors owns them)."""
    if isinstance(exc, MmoError):
        response = errors.mmo_error_handler(request, exc)
    elif isinstance(exc, ValidationException):
        response = errors.validation_handler(request, exc)
    elif isinstance(exc, HTTPException):
        response = errors.http_error_handler(request, exc)
    else:  # logged where the API answers it (errors.internal_error_handler)
        return 500, {"error": {"code": "internal_error", "message": type(exc).__name__}}
    return response.status_code or 500, _builtins(response)


class Done:
    """Hands the route's answer back and keeps its status and body for the record."""

    def __init__(self, default_status: int) -> None:
        self.status = default_status
        self.answer: Any = None

    def __call__(self, result: T, status: int | None = None) -> T:
        if isinstance(result, Response):
            self.status = result.status_code or self.status
        elif status is not None:
            self.status = status
        self.answer = _builtins(result)
        return result


@asynccontextmanager
async def action(
    request: Request, name: str, target: str, body: Any = None, *, status: int = 200
) -> AsyncIterator[Done]:
    """Record the admin action `name` on `target` around the work inside (see the module).

    `body` is the request's body or parameters; `status` the route's status when the work
    answers with a plain body (a `Response` carries its own).
    """
    principal = request.state.get("principal")
    client_id = principal.client_id if isinstance(principal, Principal) else "unknown"
    key_id = principal.key_id if isinstance(principal, Principal) else None
    row = await db.fetchrow(
        """INSERT INTO audit_log (client_id, key_id, action, target, request)
           VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id""",
        client_id,
        key_id,
        name,
        target[:255],
        db.jsonb(_builtins(body) if body is not None else {}),
    )
    entry_id = row["id"] if row else None
    done = Done(status)
    try:
        yield done
    except Exception as exc:
        answered, answer = _error_answer(request, exc)
        await _complete(entry_id, answered, answer)
        raise
    await _complete(entry_id, done.status, done.answer)


async def _complete(entry_id: int | None, status: int, answer: Any) -> None:
    try:
        await db.fetch(
            "UPDATE audit_log SET status = $2, answer = $3::jsonb WHERE id = $1",
            entry_id,
            status,
            db.jsonb(answer),
        )
    except Exception:  # the action is done: its answer must still reach the caller
        log.exception("audit entry %s: the answer could not be recorded", entry_id)


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: dt.datetime
    client_id: str
    key_id: str | None
    action: str
    target: str
    request: Any
    status: int | None
    answer: Any


async def entries(
    *,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """Newest first; `before` (an entry's id) pages on to older ones."""
    rows = await db.fetch(
        """SELECT * FROM audit_log
           WHERE ($2::bigint IS NULL OR id < $2)
             AND ($3::text IS NULL OR action = $3)
             AND ($4::text IS NULL OR target = $4)
           ORDER BY id DESC LIMIT $1""",
        limit,
        before,
        action,
        target,
    )
    return [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            client_id=r["client_id"],
            key_id=r["key_id"],
            action=r["action"],
            target=r["target"],
            request=db.loads(r["request"], {}),
            status=r["status"],
            answer=db.loads(r["answer"]),
        )
        for r in rows
    ]


__all__ = ["AuditEntry", "Done", "action", "entries"]
