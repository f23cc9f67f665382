"""What the dashboard reads: plain SQL through `mmo_host.db`, rows as frozen Structs.

Every figure over time covers the last hour in 5-minute buckets aligned on the clock
(`BUCKET`), so two pages read a minute apart show the same buckets. A payment counts in
the bucket it was created in; its success is read when it has ended (`FINAL_STATUSES`):
`succeeded` and `reversed` (the money moved, then came back) are successes, `failed` and
`expired` are not, and payments still open count in `payments` but not in the rate.
Callback arrival latency is the first callback kept for a payment the gateway started
(origin `api`) minus the payment's `created_at`, counted in the bucket it arrived in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

import msgspec
from mmo_core import phones
from mmo_core.errors import InvalidRequest
from mmo_core.types import FINAL_STATUSES

from mmo_host import db
from mmo_host.records import (
    EventRecord,
    JobRecord,
    PaymentRecord,
    Record,
    ReversalRecord,
)

BUCKET = 300  # seconds: one point of every chart
BUCKETS = 12  # one hour
SUCCESSES = ("succeeded", "reversed")
RECENT_LIMIT = 50
MAX_QUERY = 128  # a search longer than any id, reference or number is none of them


# -- rows --------------------------------------------------------------------------------


class TransitionRow(Record, frozen=True, kw_only=True):
    json_columns: ClassVar[frozenset[str]] = frozenset({"detail"})

    id: int
    from_status: str | None
    to_status: str
    source: str
    callback_id: uuid.UUID | None
    detail: dict[str, Any] | None
    created_at: dt.datetime


class CallbackSummary(Record, frozen=True, kw_only=True):
    """A kept callback without its body and headers (what a person reads of it)."""

    id: uuid.UUID
    provider: str
    account: str | None
    kind: str
    method: str
    received_at: dt.datetime
    verified: bool | None
    processed: bool
    payment_id: uuid.UUID | None
    flag: str | None
    error: str | None
    processed_at: dt.datetime | None


class AttentionRow(Record, frozen=True, kw_only=True):
    id: uuid.UUID
    reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str | None


class HourCounts(Record, frozen=True, kw_only=True):
    """One provider account's payments created in the last hour."""

    provider: str
    account: str
    payments: int
    decided: int
    succeeded: int

    @property
    def success_rate(self) -> float | None:
        """Percent of the ended payments that succeeded; None when none has ended."""
        return 100.0 * self.succeeded / self.decided if self.decided else None


class _BucketCounts(Record, frozen=True, kw_only=True):
    provider: str
    bucket: int
    payments: int
    decided: int
    succeeded: int


class _BucketLatency(Record, frozen=True, kw_only=True):
    provider: str
    bucket: int
    p50: float
    p95: float


class Series(msgspec.Struct, frozen=True):
    label: str
    values: list[float | None]


class Chart(msgspec.Struct, frozen=True):
    """A uPlot chart's data: bucket starts (epoch seconds) and one series per provider."""

    title: str
    unit: str
    x: list[int]
    series: list[Series]


class Story(msgspec.Struct, frozen=True, kw_only=True):
    """Everything kept about one payment."""

    payment: PaymentRecord
    transitions: list[TransitionRow]
    callbacks: list[CallbackSummary]
    events: list[EventRecord]
    jobs: list[JobRecord]
    reversals: list[ReversalRecord]
    attention: list[AttentionRow]


# -- the overview ------------------------------------------------------------------------


def window(now: dt.datetime) -> list[int]:
    """The starts (epoch seconds) of the hour's buckets, oldest first; the last one holds
    `now`."""
    last = int(now.timestamp()) // BUCKET * BUCKET
    return [last - BUCKET * i for i in range(BUCKETS - 1, -1, -1)]


def _since(buckets: list[int]) -> dt.datetime:
    return dt.datetime.fromtimestamp(buckets[0], dt.UTC)


async def hour_counts(now: dt.datetime) -> list[HourCounts]:
    return await db.fetch_as(
        HourCounts,
        """SELECT provider, account, count(*) AS payments,
                  count(*) FILTER (WHERE status = ANY($2::text[])) AS decided,
                  count(*) FILTER (WHERE status = ANY($3::text[])) AS succeeded
           FROM payments WHERE created_at >= $1
           GROUP BY provider, account ORDER BY provider, account""",
        _since(window(now)),
        sorted(FINAL_STATUSES),
        list(SUCCESSES),
    )


async def charts(now: dt.datetime, providers: list[str]) -> dict[str, Chart]:
    """The overview's three charts over the last hour, a series for each provider."""
    buckets = window(now)
    since = _since(buckets)
    counts = await db.fetch_as(
        _BucketCounts,
        """SELECT provider,
                  (floor(extract(epoch FROM created_at) / $2) * $2)::bigint AS bucket,
                  count(*) AS payments,
                  count(*) FILTER (WHERE status = ANY($3::text[])) AS decided,
                  count(*) FILTER (WHERE status = ANY($4::text[])) AS succeeded
           FROM payments WHERE created_at >= $1 GROUP BY 1, 2""",
        since,
        BUCKET,
        sorted(FINAL_STATUSES),
        list(SUCCESSES),
    )
    latencies = await db.fetch_as(
        _BucketLatency,
        """WITH first AS (
               SELECT p.provider, p.created_at, min(c.received_at) AS received_at
               FROM callbacks c JOIN payments p ON p.id = c.payment_id
               WHERE c.received_at >= $1 AND p.origin = 'api'
               GROUP BY p.id, p.provider, p.created_at
               HAVING NOT EXISTS (SELECT 1 FROM callbacks e WHERE e.payment_id = p.id
                                  AND e.received_at < $1))
           SELECT provider,
                  (floor(extract(epoch FROM received_at) / $2) * $2)::bigint AS bucket,
                  percentile_cont(0.5) WITHIN GROUP (
                      ORDER BY extract(epoch FROM received_at - created_at)) AS p50,
                  percentile_cont(0.95) WITHIN GROUP (
                      ORDER BY extract(epoch FROM received_at - created_at)) AS p95
           FROM first GROUP BY 1, 2""",
        since,
        BUCKET,
    )
    names = sorted(
        set(providers) | {c.provider for c in counts} | {lat.provider for lat in latencies}
    )
    by_count = {(c.provider, c.bucket): c for c in counts}
    by_latency = {(lat.provider, lat.bucket): lat for lat in latencies}

    def series(value: Any) -> list[Series]:
        return [Series(name, [value(name, b) for b in buckets]) for name in names]

    def payments(name: str, bucket: int) -> float | None:
        found = by_count.get((name, bucket))
        return float(found.payments) if found else 0.0

    def success(name: str, bucket: int) -> float | None:
        found = by_count.get((name, bucket))
        if found is None or not found.decided:
            return None
        return round(100.0 * found.succeeded / found.decided, 1)

    def latency(name: str, bucket: int) -> float | None:
        found = by_latency.get((name, bucket))
        return None if found is None else round(found.p50, 3)

    return {
        "payments": Chart("Payments per 5 minutes", "payments", buckets, series(payments)),
        "success": Chart("Success rate of ended payments", "%", buckets, series(success)),
        "latency": Chart("Callback arrival, median", "s", buckets, series(latency)),
    }


# -- payments ----------------------------------------------------------------------------


class BadSearch(ValueError):
    """A search text that cannot be an id, a reference or a number (shown on the page)."""


class Search(msgspec.Struct, frozen=True):
    """What a search text was read as: a payment id, a reference, an E.164 number."""

    text: str
    payment_id: uuid.UUID | None
    msisdn: str | None


def read_search(text: str | None) -> Search | None:
    """The search as typed (None: no search); refused when it cannot be any of them."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_QUERY or any(ch < " " or ch == "\x7f" for ch in text):
        raise BadSearch("That is not a payment id, a reference or a number")
    try:
        payment_id: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        payment_id = None
    msisdn = None
    if any(ch.isdigit() for ch in text):
        try:
            # the number as stored (E.164): "+254 712 345 678" and "254712345678" both match
            msisdn = phones.to_e164(text, strict=False)
        except InvalidRequest:
            msisdn = None
    return Search(text, payment_id, msisdn)


async def recent_payments(search: Search | None, limit: int = RECENT_LIMIT) -> list[PaymentRecord]:
    """Newest first: every client's payments (admin is not client-scoped), or those whose
    id, reference or number is the search."""
    if search is None:
        return await db.fetch_as(
            PaymentRecord,
            "SELECT * FROM payments ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
        )
    return await db.fetch_as(
        PaymentRecord,
        """SELECT * FROM payments
           WHERE id = $1 OR reference = $2 OR msisdn = $3
           ORDER BY created_at DESC, id DESC LIMIT $4""",
        search.payment_id,
        search.text,
        search.msisdn,
        limit,
    )


async def story(payment_id: uuid.UUID) -> Story | None:
    payment = await db.fetchrow_as(
        PaymentRecord, "SELECT * FROM payments WHERE id = $1", payment_id
    )
    if payment is None:
        return None
    return Story(
        payment=payment,
        transitions=await db.fetch_as(
            TransitionRow,
            "SELECT * FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
            payment_id,
        ),
        callbacks=await db.fetch_as(
            CallbackSummary,
            "SELECT * FROM callbacks WHERE payment_id = $1 ORDER BY received_at, id",
            payment_id,
        ),
        events=await db.fetch_as(
            EventRecord,
            "SELECT * FROM outbox_events WHERE payment_id = $1 ORDER BY created_at, id",
            payment_id,
        ),
        jobs=await db.fetch_as(
            JobRecord, "SELECT * FROM jobs WHERE payment_id = $1 ORDER BY id", payment_id
        ),
        reversals=await db.fetch_as(
            ReversalRecord,
            "SELECT * FROM reversals WHERE payment_id = $1 ORDER BY created_at, id",
            payment_id,
        ),
        attention=await db.fetch_as(
            AttentionRow,
            "SELECT * FROM attention WHERE payment_id = $1 ORDER BY created_at, id",
            payment_id,
        ),
    )


# -- callbacks ---------------------------------------------------------------------------


async def unmatched_callbacks(limit: int = 100) -> list[CallbackSummary]:
    """Callbacks that matched no payment, newest first (the `callbacks_flag` index)."""
    return await db.fetch_as(
        CallbackSummary,
        "SELECT * FROM callbacks WHERE flag = 'unmatched' "
        "ORDER BY received_at DESC, id DESC LIMIT $1",
        limit,
    )


async def callback(callback_id: uuid.UUID) -> CallbackSummary | None:
    return await db.fetchrow_as(
        CallbackSummary, "SELECT * FROM callbacks WHERE id = $1", callback_id
    )
