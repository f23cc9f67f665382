"""Payout batches: up to 10,000 disbursements submitted at once, sent at the operator's pace.

A batch is validated item by item the way a single payment is (`payments.check_request`:
the amount, the number, routing, the provider's own `validate`), and every bad item is
named (index, idempotency key, code, message). A batch with any bad item is refused whole
(`422 invalid_batch`), so nothing is half-sent. A good batch is stored in one transaction,
each statement one multi-row `INSERT ... SELECT FROM unnest(...)`: the batch row, every item
as a `new` disbursement with its `batch_id`, their history rows and their `send` jobs. The
API answers 202 at once; the worker sends the items (`send` jobs, spread `SEND_SPACING`
apart so that a batch interleaves with the queue's other work; the per-account outbound
limits pace the calls themselves), and every item then lives its life as any payment.

Idempotency: the batch's `Idempotency-Key` is scoped to its client, as a payment's is;
the same key with the same body returns the same batch, with another body 409. Each
item's `idempotency_key` is a payment's idempotency key of the same client: an item whose
key already made a payment (another batch, or `POST /api/v1/payments`) is a bad item,
`idempotency_key_reused` when the bodies differ, `item_already_submitted` when they agree.

Completion: `open_count` counts the items not final yet. The transition that makes an
item final decrements it (`item_final`, from `payments.apply_transition`, in that transition's
transaction); the one that reaches 0 marks the batch `completed` and writes the
`batch.completed` event with its summary, delivered like a payment's events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from mmo_core import money
from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.errors import MmoError

from mmo_host import db, jobs, logs, metrics, payments
from mmo_host.gateway import Gateway
from mmo_host.records import BatchRecord, PaymentRecord
from mmo_host.schedule import Schedule
from mmo_host.schemas import PaymentCreate, PaymentResource

log = logging.getLogger("mmo.batches")

MAX_ITEMS = 10_000
# seconds between two items' first send: 10,000 items start over 200 s, and a batch never
# holds the whole queue (jobs are claimed in run_at order)
SEND_SPACING = 0.02
FAILURES_SHOWN = 50
CHECK_SLICE = 200


class BatchNotFound(MmoError):
    code = "not_found"
    http_status = 404


class InvalidBatch(MmoError):
    code = "invalid_batch"
    http_status = 422


# -- bodies --------------------------------------------------------------------------------


class BatchCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payouts/batches`. Each item is a disbursement: the fields of
    `POST /api/v1/payments` without `type`, plus its own `idempotency_key` (docs/api.md).
    Items are checked one by one, so that every bad item is named."""

    items: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


class ItemError(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    code: str
    message: str
    idempotency_key: str | None = None


class BatchTotal(msgspec.Struct, kw_only=True):
    currency: str
    status: str
    count: int
    amount: str


class BatchItem(msgspec.Struct, kw_only=True):
    idempotency_key: str
    payment: PaymentResource


class BatchResource(msgspec.Struct, kw_only=True):
    id: str
    # `processing` while any item is open; `completed` once every item is final
    status: str
    reference: str | None
    item_count: int
    open_count: int
    # items by payment status
    counts: dict[str, int]
    # items and amounts by currency and status
    totals: list[BatchTotal]
    # failed and expired items by the gateway's failure code
    failure_codes: dict[str, int]
    # the first failed or expired items; the rest: GET .../items?failures=true&cursor=
    failures: list[BatchItem]
    failures_next_cursor: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None


class BatchItemPage(msgspec.Struct, kw_only=True):
    data: list[BatchItem]
    next_cursor: str | None


# -- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    index: int
    key: str
    digest: str
    accepted: payments.Accepted


def batch_hash(body: BatchCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def _item_key(raw: Any) -> str | None:
    key = raw.get("idempotency_key") if isinstance(raw, dict) else None
    return key if isinstance(key, str) else None


def check_item(gateway: Gateway, index: int, raw: Any) -> Checked:
    """One item, as `POST /api/v1/payments` checks a disbursement; raise `MmoError`."""
    if not isinstance(raw, dict):
        raise MmoError("An item must be an object", code="invalid_request")
    fields = dict(raw)
    key = fields.pop("idempotency_key", None)
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise MmoError(
            "An idempotency_key (1 to 255 characters) is required",
            code="idempotency_key_required",
        )
    if fields.setdefault("type", "disbursement") != "disbursement":
        raise MmoError("A batch holds disbursements only", code="invalid_request")
    try:
        body = msgspec.convert(fields, PaymentCreate)
    except msgspec.ValidationError as exc:
        raise MmoError(str(exc), code="invalid_request") from None
    accepted = payments.check_request(gateway, body)
    return Checked(index, key, payments.request_hash(body), accepted)


async def check_items(gateway: Gateway, items: list[Any]) -> tuple[list[Checked], list[ItemError]]:
    """Every item checked; the good ones, and an error for each bad one (keys repeated
    inside the batch included). The checks are CPU work (about 0.15 ms an item, mostly
    reading numbers): the event loop gets its turn every `CHECK_SLICE` items."""
    checked: list[Checked] = []
    errors: list[ItemError] = []
    first_of: dict[str, int] = {}
    for index, raw in enumerate(items):
        if index % CHECK_SLICE == CHECK_SLICE - 1:
            await asyncio.sleep(0)  # webhooks and other requests are served meanwhile
        key = _item_key(raw)
        try:
            item = check_item(gateway, index, raw)
        except MmoError as exc:
            errors.append(
                ItemError(index=index, code=exc.code, message=exc.message, idempotency_key=key)
            )
            continue
        if item.key in first_of:
            errors.append(
                ItemError(
                    index=index,
                    code="duplicate_item_key",
                    message=f"The idempotency_key of item {first_of[item.key]} again",
                    idempotency_key=item.key,
                )
            )
            continue
        first_of[item.key] = index
        checked.append(item)
    return checked, errors


async def used_keys(client_id: str, checked: list[Checked]) -> dict[str, tuple[str, uuid.UUID]]:
    """The items' keys that already made a payment of this client: key -> (hash, id)."""
    rows = await db.fetch(
        "SELECT idempotency_key, request_hash, id FROM payments "
        "WHERE client_id = $1 AND idempotency_key = ANY($2::text[])",
        client_id,
        [c.key for c in checked],
    )
    return {r["idempotency_key"]: (r["request_hash"], r["id"]) for r in rows}


def key_errors(checked: list[Checked], used: dict[str, tuple[str, uuid.UUID]]) -> list[ItemError]:
    errors = []
    for item in checked:
        if item.key not in used:
            continue
        digest, payment_id = used[item.key]
        if digest != item.digest:
            code, message = (
                payments.IdempotencyConflict.code,
                "This idempotency_key was already used with a different payment",
            )
        else:
            code, message = "item_already_submitted", f"This item already made payment {payment_id}"
        errors.append(
            ItemError(index=item.index, code=code, message=message, idempotency_key=item.key)
        )
    return errors


def refuse(errors: list[ItemError], total: int) -> InvalidBatch:
    errors = sorted(errors, key=lambda e: e.index)
    return InvalidBatch(
        f"{len(errors)} of {total} items are invalid; nothing was stored",
        details={"items": msgspec.to_builtins(errors)},
    )


# -- creating ------------------------------------------------------------------------------


def ordered_ids(count: int) -> list[uuid.UUID]:
    """UUIDv7 ids (RFC 9562) that sort in the items' order: one millisecond timestamp,
    the item's index in the 14 bits after the variant, 48 random bits."""
    ms = time.time_ns() // 1_000_000
    ids = []
    for index in range(count):
        rand = int.from_bytes(os.urandom(6))
        value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | 0b10 << 62 | index << 48 | rand
        ids.append(uuid.UUID(int=value))
    return ids


class _Taken(Exception):
    """An item key was taken by another request while the batch was being stored."""


async def create(
    gateway: Gateway, client_id: str, key: str, body: BatchCreate, spacing: float = SEND_SPACING
) -> tuple[BatchRecord, bool]:
    """Store a batch and its items, or return the batch this key already made (False);
    raise `InvalidBatch` naming every bad item, `IdempotencyConflict` for a key reused with
    another body."""
    digest = batch_hash(body)
    existing = await _by_key(client_id, key)
    if existing is not None:
        return _replayed(existing, digest), False
    started = time.perf_counter()
    checked, errors = await check_items(gateway, body.items)
    errors += key_errors(checked, await used_keys(client_id, checked))
    if errors:
        # the same batch sent twice at once: the other request stored it (and its items'
        # keys) while this one was checking, so this one is its replay, not a refusal
        existing = await _by_key(client_id, key)
        if existing is not None:
            return _replayed(existing, digest), False
        raise refuse(errors, len(body.items))
    checked_at = time.perf_counter()
    try:
        batch = await _store(client_id, key, digest, body.reference, checked, spacing)
    except _Taken:
        # a concurrent request took an item's key (or this batch's) between check and insert
        existing = await _by_key(client_id, key)
        if existing is not None:
            return _replayed(existing, digest), False
        used = await used_keys(client_id, checked)
        raise refuse(key_errors(checked, used), len(body.items)) from None
    _count(gateway, checked)
    log.info(
        "batch %s: %s items checked in %.0f ms, stored in %.0f ms",
        batch.id,
        batch.item_count,
        (checked_at - started) * 1000,
        (time.perf_counter() - checked_at) * 1000,
    )
    return batch, True


def _replayed(existing: BatchRecord, digest: str) -> BatchRecord:
    if existing.request_hash != digest:
        raise payments.IdempotencyConflict(
            "This Idempotency-Key was already used with a different batch"
        )
    return existing


async def _by_key(client_id: str, key: str) -> BatchRecord | None:
    return await db.fetchrow_as(
        BatchRecord,
        "SELECT * FROM payout_batches WHERE client_id = $1 AND idempotency_key = $2",
        client_id,
        key,
    )


async def _store(
    client_id: str,
    key: str,
    digest: str,
    reference: str | None,
    checked: list[Checked],
    spacing: float,
) -> BatchRecord:
    count = len(checked)
    ids = ordered_ids(count)
    request_id = logs.current("request_id")
    now = dt.datetime.now(dt.UTC)
    columns = _columns(ids, checked)
    names = list(columns)
    unnested = ", ".join(
        f"${i}::{'text' if kind == 'jsonb' else kind}[]"
        for i, (kind, _values) in enumerate(columns.values(), start=4)
    )
    selected = ", ".join(
        f"u.{name}::jsonb" if kind == "jsonb" else f"u.{name}"
        for name, (kind, _values) in columns.items()
    )
    async with db.transaction():
        batch = await db.fetchrow_as(
            BatchRecord,
            """INSERT INTO payout_batches
                   (id, client_id, idempotency_key, request_hash, reference, item_count,
                    open_count, request_id)
               VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
               ON CONFLICT (client_id, idempotency_key) DO NOTHING RETURNING *""",
            uuid.uuid4(),
            client_id,
            key,
            digest,
            reference,
            count,
            request_id,
        )
        if batch is None:
            raise _Taken
        stored = await db.fetchrow(
            f"""WITH stored AS (
                    INSERT INTO payments
                        (batch_id, client_id, request_id, type, status, {", ".join(names)})
                    SELECT $1, $2, $3, 'disbursement', 'new', {selected}
                    FROM unnest({unnested}) AS u({", ".join(names)})
                    ON CONFLICT (client_id, idempotency_key) DO NOTHING
                    RETURNING 1)
                SELECT count(*) AS n FROM stored""",  # noqa: S608 - our names and placeholders
            batch.id,
            client_id,
            request_id,
            *(values for _kind, values in columns.values()),
        )
        if stored is None or stored["n"] != count:
            raise _Taken  # rolls the whole batch back
        await db.fetch(
            """INSERT INTO payment_transitions (payment_id, from_status, to_status, source)
               SELECT id, NULL, 'new', 'batch' FROM unnest($1::uuid[]) AS u(id)""",
            ids,
        )
        await db.fetch(
            """INSERT INTO jobs (kind, payment_id, run_at)
               SELECT 'send', id, $2::timestamptz + make_interval(secs => $3::float8 * (n - 1))
               FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)""",
            ids,
            now,
            spacing,
        )
    return batch


# the items' columns of `payments`, each with its Postgres type (JSONB passed as text)
ITEM_COLUMNS = {
    "id": "uuid",
    "idempotency_key": "text",
    "request_hash": "text",
    "provider": "text",
    "account": "text",
    "country": "text",
    "amount_minor": "bigint",
    "currency": "text",
    "msisdn": "text",
    "reference": "text",
    "description": "text",
    "payer_message": "text",
    "metadata": "jsonb",
    "routing": "jsonb",
}


def _columns(ids: list[uuid.UUID], checked: list[Checked]) -> dict[str, tuple[str, list[Any]]]:
    """One array per column of `payments`, the items in order (for `unnest`)."""
    values: dict[str, list[Any]] = {name: [] for name in ITEM_COLUMNS}
    for payment_id, item in zip(ids, checked, strict=True):
        p = item.accepted.payment
        decision = item.accepted.decision
        row = {
            "id": payment_id,
            "idempotency_key": item.key,
            "request_hash": item.digest,
            "provider": item.accepted.provider,
            "account": decision.account if decision else DEFAULT_ACCOUNT,
            "country": p.country,
            "amount_minor": money.to_minor(p.amount, p.currency),
            "currency": p.currency,
            "msisdn": p.msisdn,
            "reference": p.reference,
            "description": p.description,
            "payer_message": p.payer_message,
            "metadata": db.jsonb(p.metadata),
            "routing": db.jsonb(decision.record()) if decision else None,
        }
        for name, value in row.items():
            values[name].append(value)
    return {name: (ITEM_COLUMNS[name], values[name]) for name in ITEM_COLUMNS}


def _count(gateway: Gateway, checked: list[Checked]) -> None:
    """The payments counter of /metrics, as the single path counts a new payment."""
    family = metrics.of(gateway).payments
    for provider, total in Counter(c.accepted.provider for c in checked).items():
        family.labels(provider, "disbursement", "new", "").inc(total)


# -- completion ----------------------------------------------------------------------------


async def item_final(schedule: Schedule, batch_id: uuid.UUID) -> None:
    """One item of the batch reached a final state (inside its transition's transaction).

    The batch row is locked by the decrement, so the transitions of one batch count one
    at a time and exactly one of them sees 0: that one completes the batch and writes
    `batch.completed`.
    """
    row = await db.fetchrow_as(
        BatchRecord,
        """UPDATE payout_batches SET
               open_count = open_count - 1,
               status = CASE WHEN open_count = 1 THEN 'completed' ELSE status END,
               completed_at = CASE WHEN open_count = 1 THEN now() ELSE completed_at END,
               updated_at = now()
           WHERE id = $1 AND open_count > 0
           RETURNING *""",
        batch_id,
    )
    if row is None or row.open_count > 0:
        return
    summary = await resource(row, failures=0)
    event_id = uuid.uuid4()
    await db.fetch(
        "INSERT INTO outbox_events (id, batch_id, type, payload) "
        "VALUES ($1, $2, 'batch.completed', $3::jsonb)",
        event_id,
        row.id,
        msgspec.json.encode(summary).decode(),
    )
    await jobs.enqueue_event(schedule, event_id, None)
    log.info("batch %s completed: %s", row.id, summary.counts)


# -- reading -------------------------------------------------------------------------------


async def get(client_id: str, batch_id: str) -> BatchRecord:
    bid = payments.parse_id(batch_id)
    row = (
        await db.fetchrow_as(
            BatchRecord,
            "SELECT * FROM payout_batches WHERE id = $1 AND client_id = $2",
            bid,
            client_id,
        )
        if bid
        else None
    )
    if row is None:
        raise BatchNotFound(f"No batch {batch_id!r}")
    return row


async def resource(batch: BatchRecord, failures: int = FAILURES_SHOWN) -> BatchResource:
    """The batch with its counts, amounts and failure codes, and its first `failures`."""
    rows = await db.fetch(
        """SELECT status, currency, failure_code, count(*) AS n, sum(amount_minor) AS amount
           FROM payments WHERE batch_id = $1
           GROUP BY status, currency, failure_code""",
        batch.id,
    )
    counts: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        counts[r["status"]] += r["n"]
        if r["failure_code"] is not None:
            codes[r["failure_code"]] += r["n"]
        total = totals.setdefault((r["currency"], r["status"]), [0, 0])
        total[0] += r["n"]
        total[1] += int(r["amount"])
    shown, cursor = (
        await items(batch, failures_only=True, limit=failures) if failures else ([], None)
    )
    return BatchResource(
        id=str(batch.id),
        status=batch.status,
        reference=batch.reference,
        item_count=batch.item_count,
        open_count=batch.open_count,
        counts=dict(sorted(counts.items())),
        totals=[
            BatchTotal(
                currency=currency,
                status=status,
                count=n,
                amount=money.format_amount(minor, currency),
            )
            for (currency, status), (n, minor) in sorted(totals.items())
        ],
        failure_codes=dict(sorted(codes.items())),
        failures=shown,
        failures_next_cursor=cursor,
        created_at=batch.created_at,
        updated_at=batch.updated_at,
        completed_at=batch.completed_at,
    )


async def items(
    batch: BatchRecord,
    *,
    status: str | None = None,
    failures_only: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[BatchItem], str | None]:
    """The batch's items in the order they were submitted, `limit` at a time."""
    clauses = ["batch_id = $1"]
    args: list[Any] = [batch.id]
    if status is not None:
        args.append(status)
        clauses.append(f"status = ${len(args)}")
    if failures_only:
        clauses.append("failure_code IS NOT NULL")
    if cursor:
        _at, after = db.decode_cursor(cursor)
        args.append(after)
        clauses.append(f"id > ${len(args)}")
    args.append(limit + 1)
    rows = await db.fetch_as(
        PaymentRecord,
        f"SELECT * FROM payments WHERE {' AND '.join(clauses)} "  # noqa: S608 - placeholders only
        f"ORDER BY id LIMIT ${len(args)}",
        *args,
    )
    page = rows[:limit]
    next_cursor = db.encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [
        BatchItem(idempotency_key=r.idempotency_key, payment=payments.resource(r)) for r in page
    ], next_cursor


__all__ = [
    "MAX_ITEMS",
    "BatchCreate",
    "BatchItem",
    "BatchItemPage",
    "BatchNotFound",
    "BatchResource",
    "InvalidBatch",
    "create",
    "get",
    "item_final",
    "items",
    "resource",
]


# -- the CSV file of `mmo payouts submit` --------------------------------------------------

CSV_REQUIRED = ("idempotency_key", "amount", "currency", "msisdn", "reference")
CSV_OPTIONAL = ("provider", "account", "description", "payer_message")


class CsvProblem(Exception):
    """A CSV file that is not a batch: the message names the line and the column."""


@dataclass(frozen=True)
class CsvBatch:
    items: list[dict[str, str]]
    # the file's line of each item (a quoted field may span lines)
    lines: list[int]


def read_csv(path: str) -> CsvBatch:
    """The items of a CSV file with a header line: `idempotency_key,amount,currency,
    msisdn,reference` and optionally `provider,account,description,payer_message`."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _read_rows(csv.reader(handle))
    except OSError as exc:
        raise CsvProblem(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CsvProblem(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise CsvProblem(f"{path}: {exc}") from None


def _read_rows(reader: Any) -> CsvBatch:
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise CsvProblem("line 1: the header line is missing")
    names = [cell.strip() for cell in header]
    for column, name in enumerate(names, start=1):
        if name not in CSV_REQUIRED + CSV_OPTIONAL:
            known = ", ".join(CSV_REQUIRED + CSV_OPTIONAL)
            raise CsvProblem(f"line 1, column {column}: unknown column {name!r} (known: {known})")
        if names.count(name) > 1:
            raise CsvProblem(f"line 1, column {column}: column {name!r} appears twice")
    missing = [name for name in CSV_REQUIRED if name not in names]
    if missing:
        raise CsvProblem(f"line 1: missing column(s) {', '.join(missing)}")
    items: list[dict[str, str]] = []
    lines: list[int] = []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not items
        if len(row) != len(names):
            raise CsvProblem(f"line {start}: {len(row)} fields, the header has {len(names)}")
        item = {}
        for name, cell in zip(names, row, strict=True):
            value = cell.strip()
            if value:
                item[name] = value
            elif name in CSV_REQUIRED:
                raise CsvProblem(f"line {start}, column {name}: empty")
        items.append(item)
        lines.append(start)
        if len(items) > MAX_ITEMS:
            raise CsvProblem(f"line {start}: more than {MAX_ITEMS} items in one batch")
    if not items:
        raise CsvProblem("the file holds no items, only a header")
    return CsvBatch(items, lines)
