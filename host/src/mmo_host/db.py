"""Queries through the process's piccolo engine, in its current transaction when one is open.

The hot paths use plain SQL with `$n` parameters on piccolo's asyncpg pool: each payment
transition is a handful of statements whose cost is round trips, and SQL says exactly
which row is locked and which index is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from mmo_host.database import get_engine


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    engine = get_engine()
    transaction = engine.current_transaction.get()
    if transaction is not None:
        return await transaction.connection.fetch(sql, *args)
    async with engine.pool.acquire() as connection:
        return await connection.fetch(sql, *args)


async def fetchrow(sql: str, *args: Any) -> asyncpg.Record | None:
    rows = await fetch(sql, *args)
    return rows[0] if rows else None


def transaction():
    """`async with transaction():` — one database transaction for the statements inside."""
    return get_engine().transaction()


def jsonb(value: Any) -> str | None:
    """A Python value as a JSONB parameter (pass with `$n::jsonb`)."""
    return None if value is None else json.dumps(value, default=str)


def loads(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def rows_to_dicts(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]
