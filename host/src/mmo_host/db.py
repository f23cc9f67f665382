"""Queries through the process's piccolo engine, in its current transaction when one is open.

The hot paths use plain SQL with `$n` parameters on piccolo's asyncpg pool: each payment
transition is a handful of statements whose cost is round trips, and SQL says exactly
which row is locked and which index is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg
from mmo_core.errors import ConfigurationError, InvalidRequest

from mmo_host.database import Transaction, forget_lost_connections, get_engine
from mmo_host.records import Record

R = TypeVar("R", bound=Record)


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    engine = get_engine()
    transaction = engine.current_transaction.get()
    try:
        if transaction is not None:
            return await transaction.connection.fetch(sql, *args)
        if engine.pool is None:
            raise ConfigurationError("The database pool is not open")
        async with engine.pool.acquire() as connection:
            return await connection.fetch(sql, *args)
    except Exception as exc:
        # the server went away: the pool's other connections are replaced (database.py);
        # the error itself goes on to the caller as the driver raised it
        await forget_lost_connections(exc)
        raise


async def fetchrow(sql: str, *args: Any) -> asyncpg.Record | None:
    rows = await fetch(sql, *args)
    return rows[0] if rows else None


async def fetch_as(record: type[R], sql: str, *args: Any) -> list[R]:
    """Rows as typed records (mmo_host.records)."""
    return [record.from_row(row) for row in await fetch(sql, *args)]


async def fetchrow_as(record: type[R], sql: str, *args: Any) -> R | None:
    row = await fetchrow(sql, *args)
    return None if row is None else record.from_row(row)


async def fetchone_as(record: type[R], sql: str, *args: Any) -> R:
    """The one row a statement must return (an UPDATE or INSERT ... RETURNING of a row
    that exists): a missing row is a bug, raised as such."""
    row = await fetchrow(sql, *args)
    if row is None:
        raise LookupError(f"expected one {record.__name__}, got none")
    return record.from_row(row)


_PLACEHOLDER = re.compile(r"\$(\d+)")


class Batch:
    """Several independent writes sent as one statement: one round trip instead of one each.

    Each part is a statement with its own `$1..$n` (renumbered here); all but the last
    become data-modifying CTEs of the last. PostgreSQL runs the parts of one statement on
    one snapshot, so no part sees another's rows or changes: only writes that do not
    depend on each other go together (different rows; a foreign key to a row inserted by
    another part is fine, it is checked at the end of the statement). A part may not
    return rows to the caller. What `run` sends is a prepared statement like any other,
    cached by its text (each combination of parts is one text).
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, sql: str, *args: Any) -> None:
        offset = len(self.args)
        if offset:
            sql = _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)
        self.parts.append(sql)
        self.args.extend(args)

    def sql(self) -> str:
        *first, last = self.parts
        if not first:
            return last
        ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(first))
        return f"WITH {ctes} {last}"

    async def run(self) -> None:
        if self.parts:
            await fetch(self.sql(), *self.args)


def transaction() -> Transaction:
    """`async with transaction():` — one database transaction for the statements inside.

    A connection lost inside it is closed and given back to the pool (database.Transaction),
    so a restart of Postgres costs the requests of the gap, never the pool.
    """
    return Transaction(get_engine())


def jsonb(value: Any) -> str | None:
    """A Python value as a JSONB parameter (pass with `$n::jsonb`)."""
    return None if value is None else json.dumps(value, default=str)


def loads(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def rows_to_dicts(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


def encode_cursor(at: dt.datetime, row_id: uuid.UUID) -> str:
    """A page's cursor: the time and id of its last row (keyset paging)."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str, http_status: int = 422) -> tuple[dt.datetime, uuid.UUID]:
    """The time and id a cursor holds; `invalid_cursor` when it is not one of ours."""
    try:
        at, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            "Invalid cursor", code="invalid_cursor", http_status=http_status
        ) from None
