"""Clients and their API keys: who a key is, what it may do, and its whole life.

A client (`api_clients`) owns payments and idempotency keys; every key of a client sees
the same payments and replays the same first answers, so rotating a key changes nothing
for the orchestrator. A key (`api_keys`) carries scopes: `payments:write` (create,
reverse, settle, prompt), `payments:read` (read, list) and `admin` (`/api/v1/admin/...`).

A key is 32 random bytes behind a Stripe-like prefix (`sk_live_` in production, `sk_test_`
elsewhere). Only its SHA-256 is stored, looked up by a unique index; the plain key is
returned once, by `create` / `rotate`, and never logged. A plain hash is right for a
random 256-bit secret (Stripe and GitHub do the same): there is nothing to brute-force.

The environment's keys need no database row: every key of MMO_API_KEYS is a key of the
client `env` with `payments:write` and `payments:read`, every key of MMO_ADMIN_KEYS a key of
`env` with `admin` (a key in both has all three), matched in constant time. In the sandbox,
without MMO_ADMIN_KEYS, the MMO_API_KEYS keys also have `admin`. Payments operators report
(M-Pesa C2B) belong to `env` too.

`Keyring` is the per-gateway lookup: it keeps what it found for a key (found or not) for
`ttl` seconds (5), so a request costs no query, and writes `last_used_at` at most once a
minute per key. A change to a key (revoked, rotated) therefore reaches a running host
within `ttl` seconds; an expiry date is checked against the clock on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import msgspec
from mmo_core.errors import InvalidRequest, MmoError

from mmo_host import db
from mmo_host.config import HostConfig
from mmo_host.records import ApiClientRecord, ApiKeyRecord

log = logging.getLogger("mmo.keys")

SCOPES = ("payments:write", "payments:read", "admin")
PAYMENT_SCOPES = frozenset({"payments:write", "payments:read"})
ENV_CLIENT_ID = "env"
MIN_KEY_LENGTH = 24
PREFIX_LENGTH = 12
# one advisory lock for moving old payments to `env`: several hosts may start at once
_ADOPT_LOCK = 0x6D6D6F6B657973  # "mmokeys"


class KeyNotFound(MmoError):
    """No key with that id."""

    code = "not_found"
    http_status = 404


class KeysUnavailable(MmoError):
    """The key could not be looked up (the database did not answer): try again."""

    code = "unavailable"
    http_status = 503


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def legacy_client_id(key: str) -> str:
    """The client id a key had before clients existed (each key its own client)."""
    return key_hash(key)[:16]


def check_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise InvalidRequest(
            f"Scopes are one or more of {', '.join(SCOPES)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            code="invalid_scope",
        )
    return wanted


def usable(record: ApiKeyRecord, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.UTC)
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > now)


# -- what callers see ---------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client that owns what the call touches, and what it may do."""

    client_id: str
    scopes: frozenset[str]
    key_id: str | None = None  # None for a key of the environment


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just made: the plain `key` exists only here, shown once."""

    key: str
    id: str
    client: str
    prefix: str
    scopes: list[str]
    expires_at: dt.datetime | None


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A key as listed: never the key, never its hash."""

    id: str
    client: str
    prefix: str
    scopes: list[str]
    state: str  # active, expiring (rotated, in its grace period), expired, revoked
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _state(record: ApiKeyRecord, now: dt.datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is None:
        return "active"
    return "expiring" if record.expires_at > now else "expired"


# -- the life of a key --------------------------------------------------------------------


async def ensure_client(name: str) -> ApiClientRecord:
    """The client of that name, created when there is none."""
    if not 1 <= len(name) <= 128:
        raise InvalidRequest("A client name has 1 to 128 characters", code="invalid_client")
    await db.fetch(
        "INSERT INTO api_clients (id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        f"cl_{secrets.token_hex(8)}",
        name,
    )
    return await db.fetchone_as(ApiClientRecord, "SELECT * FROM api_clients WHERE name = $1", name)


def _new_key(kind: str) -> str:
    return f"{kind}{secrets.token_urlsafe(32)}"


async def _insert(
    client: ApiClientRecord,
    scopes: list[str],
    key: str,
    expires_in: float | None = None,
) -> IssuedKey:
    record = await db.fetchone_as(
        ApiKeyRecord,
        "INSERT INTO api_keys (id, client_id, prefix, hash, scopes, expires_at) "
        "VALUES ($1, $2, $3, $4, $5::text[], now() + make_interval(secs => $6)) RETURNING *",
        f"key_{secrets.token_hex(8)}",
        client.id,
        key[:PREFIX_LENGTH],
        key_hash(key),
        scopes,
        expires_in,
    )
    log.info("key %s (%s…) created for client %s", record.id, record.prefix, client.name)
    return IssuedKey(
        key=key,
        id=record.id,
        client=client.name,
        prefix=record.prefix,
        scopes=record.scopes,
        expires_at=record.expires_at,
    )


async def create(
    client: str,
    scopes: Iterable[str],
    *,
    live: bool,
    expires_in: float | None = None,
    plain_key: str | None = None,
) -> IssuedKey:
    """A new key of `client` (created when new) with `scopes`; the plain key is in the
    answer and nowhere else. `live` keys start `sk_live_`, others `sk_test_`.

    `plain_key` imports a key issued elsewhere (at least 24 characters) instead of making
    one: the tests' fixed keys, or a key moved out of MMO_API_KEYS into a client of its own.
    """
    wanted = check_scopes(scopes)
    if plain_key is not None and len(plain_key) < MIN_KEY_LENGTH:
        raise InvalidRequest(
            f"An API key has at least {MIN_KEY_LENGTH} characters", code="invalid_key"
        )
    if expires_in is not None and expires_in < 0:
        raise InvalidRequest("A key cannot expire in the past", code="invalid_expiry")
    key = plain_key or _new_key("sk_live_" if live else "sk_test_")
    async with db.transaction():
        owner = await ensure_client(client)
        try:
            return await _insert(owner, wanted, key, expires_in)
        except asyncpg.UniqueViolationError:
            raise InvalidRequest("That key is already known", code="invalid_key") from None


async def list_keys(client: str | None = None, key_id: str | None = None) -> list[KeyInfo]:
    """Every key (of one client, by name, or the one key, when given), oldest first."""
    rows = await db.fetch(
        "SELECT k.*, c.name AS client_name FROM api_keys k JOIN api_clients c "
        "ON c.id = k.client_id WHERE ($1::text IS NULL OR c.name = $1) "
        "AND ($2::text IS NULL OR k.id = $2) ORDER BY k.created_at, k.id",
        client,
        key_id,
    )
    now = dt.datetime.now(dt.UTC)
    listed = []
    for row in rows:
        record = ApiKeyRecord.from_row(row)
        listed.append(
            KeyInfo(
                id=record.id,
                client=row["client_name"],
                prefix=record.prefix,
                scopes=record.scopes,
                state=_state(record, now),
                created_at=record.created_at,
                last_used_at=record.last_used_at,
                expires_at=record.expires_at,
                revoked_at=record.revoked_at,
            )
        )
    return listed


async def rotate(key_id: str, *, expire_old_in: float | None = None) -> tuple[IssuedKey, KeyInfo]:
    """A new key for the same client with the same scopes. The old key keeps working for
    `expire_old_in` seconds (none: it stops now), then expires. Returns the new key and the
    old one as it is now."""
    if expire_old_in is not None and expire_old_in < 0:
        raise InvalidRequest("--expire-old-in cannot be negative", code="invalid_expiry")
    async with db.transaction():
        old = await db.fetchrow_as(
            ApiKeyRecord, "SELECT * FROM api_keys WHERE id = $1 FOR UPDATE", key_id
        )
        if old is None:
            raise KeyNotFound(f"No key {key_id!r}")
        if not usable(old):
            raise InvalidRequest(
                f"Key {key_id} is {_state(old, dt.datetime.now(dt.UTC))}: create a new one",
                code="key_not_active",
            )
        client = await db.fetchone_as(
            ApiClientRecord, "SELECT * FROM api_clients WHERE id = $1", old.client_id
        )
        kind = "sk_live_" if old.prefix.startswith("sk_live_") else "sk_test_"
        issued = await _insert(client, old.scopes, _new_key(kind))
        await db.fetch(
            "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), "
            "now() + make_interval(secs => $2)) WHERE id = $1",
            key_id,
            float(expire_old_in or 0),
        )
    log.info("key %s rotated to %s", key_id, issued.id)
    return issued, await _info(key_id)


async def revoke(key_id: str) -> KeyInfo:
    """The key stops working (within a `Keyring.ttl` in running hosts); revoking twice
    keeps the first date."""
    row = await db.fetchrow(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING id",
        key_id,
    )
    if row is None:
        raise KeyNotFound(f"No key {key_id!r}")
    log.info("key %s revoked", key_id)
    return await _info(key_id)


async def _info(key_id: str) -> KeyInfo:
    found = await list_keys(key_id=key_id)
    if not found:
        raise KeyNotFound(f"No key {key_id!r}")
    return found[0]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `24h` or `7d`."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise InvalidRequest(
            f"Not a duration: {text!r} (seconds, or a number with s, m, h or d)",
            code="invalid_duration",
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


# -- the environment's keys ------------------------------------------------------------------


async def adopt_env_payments(config: HostConfig) -> int:
    """Move the payments stored under the environment keys' old per-key client ids to
    `env` (idempotent; run at start-up). When two old clients used one Idempotency-Key,
    the oldest payment keeps it and the others get `<key>:moved:<payment id>`, so that a
    retry replays the first answer and nothing is lost."""
    old_ids = sorted({legacy_client_id(k) for k in (*config.api_keys, *config.admin_keys)})
    try:
        moved = await _adopt(old_ids)
    except asyncpg.UndefinedTableError:  # migrations not applied yet: /health/ready says so
        log.warning("payments not moved to client env: the database is not migrated")
        return 0
    if moved:
        log.info("moved %d payment(s) of the environment's keys to client env", moved)
    return moved


async def _adopt(old_ids: list[str]) -> int:
    async with db.transaction():
        await db.fetch("SELECT pg_advisory_xact_lock($1)", _ADOPT_LOCK)
        moved = await db.fetch(
            """
            WITH ranked AS (
                SELECT p.id,
                       row_number() OVER (PARTITION BY p.idempotency_key
                                          ORDER BY p.created_at, p.id) > 1
                       OR EXISTS (SELECT 1 FROM payments e WHERE e.client_id = $1
                                  AND e.idempotency_key = p.idempotency_key) AS clash
                FROM payments p WHERE p.client_id = ANY($2::text[])
            )
            UPDATE payments SET client_id = $1,
                idempotency_key = CASE WHEN ranked.clash
                    THEN left(payments.idempotency_key, 200) || ':moved:' || payments.id::text
                    ELSE payments.idempotency_key END
            FROM ranked WHERE payments.id = ranked.id
            RETURNING payments.id
            """,
            ENV_CLIENT_ID,
            old_ids,
        )
    return len(moved)


# -- looking a key up ------------------------------------------------------------------------


class Keyring:
    """The gateway's key lookup: the environment's keys in memory, the others by hash,
    each answer kept `ttl` seconds."""

    max_cached = 10_000

    def __init__(self, config: HostConfig, ttl: float = 5.0, touch_every: float = 60.0) -> None:
        self._payment_keys = tuple(k.encode() for k in config.api_keys)
        self._admin_keys = tuple(k.encode() for k in config.admin_keys)
        self.ttl = ttl
        # the owner of payments operators report (M-Pesa C2B)
        self.inbound_client = ENV_CLIENT_ID
        self.touch_every = touch_every
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._touched: dict[str, float] = {}

    def env_principal(self, key: str) -> Principal | None:
        """A key of the environment, compared in constant time with every configured key."""
        presented = key.encode()
        scopes: set[str] = set()
        for candidate in self._payment_keys:
            if hmac.compare_digest(presented, candidate):
                scopes |= PAYMENT_SCOPES
        for candidate in self._admin_keys:
            if hmac.compare_digest(presented, candidate):
                scopes.add("admin")
        return Principal(ENV_CLIENT_ID, frozenset(scopes)) if scopes else None

    async def authenticate(self, key: str) -> Principal | None:
        """Who `key` is, or None for a key that is unknown, revoked or expired."""
        principal = self.env_principal(key)
        if principal is not None:
            return principal
        record = await self._lookup(key_hash(key))
        if record is None or not usable(record):
            return None
        await self._touch(record)
        return Principal(record.client_id, frozenset(record.scopes), record.id)

    def forget(self) -> None:
        """Drop every cached answer (after a change made in this process)."""
        self._cache.clear()

    async def _lookup(self, digest: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            record = await db.fetchrow_as(
                ApiKeyRecord, "SELECT * FROM api_keys WHERE hash = $1", digest
            )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("API key lookup failed: %s", type(exc).__name__)
            raise KeysUnavailable("API keys cannot be checked right now; retry shortly") from None
        if len(self._cache) >= self.max_cached:
            self._cache.clear()
        self._cache[digest] = (now, record)
        return record

    async def _touch(self, record: ApiKeyRecord) -> None:
        now = time.monotonic()
        if now - self._touched.get(record.id, -self.touch_every) < self.touch_every:
            return
        self._touched[record.id] = now
        try:
            await db.fetch("UPDATE api_keys SET last_used_at = now() WHERE id = $1", record.id)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("key %s: last_used_at not written: %s", record.id, type(exc).__name__)
