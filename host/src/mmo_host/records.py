"""Typed rows: what the database layer hands the rest of the host.

Each table the host works with has a frozen msgspec Struct here, built from an asyncpg
row by `from_row` (JSONB columns decoded once), and read through `db.fetch_as` /
`db.fetchrow_as`. Code reads attributes (`row.status`), which the type checker follows;
`row["status"]` also works, for scripts and tests that read rows by column name.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import msgspec
from mmo_core.types import PaymentStatus, PaymentType


class Record(msgspec.Struct, frozen=True, kw_only=True):
    # columns stored as JSONB that asyncpg hands over as text
    json_columns: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        values = {}
        columns = set(row.keys())
        for name in cls.__struct_fields__:
            if name not in columns:  # not selected: its default (a required one is a bug)
                continue
            value = row[name]
            if name in cls.json_columns and isinstance(value, str):
                value = json.loads(value)
            values[name] = value
        return cls(**values)

    def __getitem__(self, column: str) -> Any:
        return getattr(self, column)


class PaymentRecord(Record, frozen=True, kw_only=True):
    json_columns: ClassVar[frozenset[str]] = frozenset(
        {"metadata", "provider_data", "next_action", "routing"}
    )

    id: uuid.UUID
    client_id: str
    idempotency_key: str
    request_hash: str
    type: PaymentType
    status: PaymentStatus
    provider: str
    # the provider's account it was sent with (mmo_core.accounts); `default` before
    account: str = "default"
    country: str
    amount_minor: int
    amount_reversed_minor: int
    currency: str
    msisdn: str
    reference: str
    description: str | None
    metadata: dict[str, Any]
    provider_reference: str | None
    provider_transaction_id: str | None
    provider_data: dict[str, Any]
    failure_code: str | None
    failure_message: str | None
    # the gateway's code is `failure_code`; the operator's own code and text
    failure_provider_code: str | None = None
    failure_provider_message: str | None = None
    # what the payer sees on the prompt or statement, when the orchestrator set it
    payer_message: str | None = None
    next_action: dict[str, Any] | None
    # the JSON of the first answer, replayed for a reused Idempotency-Key
    first_response: str | None
    origin: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    # the request id of the API request that created it (mmo_host.logs)
    request_id: str | None = None
    # how the provider was chosen (mmo_host.routing): {"network", "provider", "reason"};
    # None for payments the gateway did not start and those stored before routing was kept
    routing: dict[str, Any] | None = None
    # the payout batch it is an item of (mmo_host.batches)
    batch_id: uuid.UUID | None = None


class ReversalRecord(Record, frozen=True, kw_only=True):
    json_columns: ClassVar[frozenset[str]] = frozenset({"provider_data"})

    id: uuid.UUID
    payment_id: uuid.UUID
    idempotency_key: str | None
    request_hash: str
    amount_minor: int
    reason: str
    status: str
    provider_reference: str | None
    provider_transaction_id: str | None
    provider_data: dict[str, Any]
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CallbackRecord(Record, frozen=True, kw_only=True):
    json_columns: ClassVar[frozenset[str]] = frozenset({"query", "headers"})

    id: uuid.UUID
    provider: str
    kind: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    remote_addr: str | None
    received_at: dt.datetime
    verified: bool | None
    processed: bool
    payment_id: uuid.UUID | None
    flag: str | None
    error: str | None
    processed_at: dt.datetime | None
    # the account named in the callback's URL (None: not read that far)
    account: str | None = None


class JobRecord(Record, frozen=True, kw_only=True):
    id: int
    kind: str
    payment_id: uuid.UUID | None
    event_id: uuid.UUID | None
    target: str | None
    run_at: dt.datetime
    attempts: int
    locked_by: str | None
    locked_until: dt.datetime | None
    rescheduled: bool
    last_error: str | None
    created_at: dt.datetime
    done_at: dt.datetime | None
    # claimed after its last holder died holding it (jobs.claim)
    interrupted: bool = False


class ApiClientRecord(Record, frozen=True, kw_only=True):
    """An orchestrator: the owner of payments and idempotency keys (`env` for the
    environment's keys)."""

    id: str
    name: str
    created_at: dt.datetime


class ApiKeyRecord(Record, frozen=True, kw_only=True):
    """A key of a client. Never the key itself: its SHA-256 (`hash`) and the prefix shown
    to people."""

    id: str
    client_id: str
    prefix: str
    hash: str
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class EventRecord(Record, frozen=True, kw_only=True):
    json_columns: ClassVar[frozenset[str]] = frozenset({"payload"})

    id: uuid.UUID
    # an event is about a payment, or about a payout batch (`batch.completed`)
    payment_id: uuid.UUID | None
    type: str
    payload: dict[str, Any]
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    batch_id: uuid.UUID | None = None


class BatchRecord(Record, frozen=True, kw_only=True):
    """A payout batch (mmo_host.batches); its items are the payments with its id."""

    id: uuid.UUID
    client_id: str
    idempotency_key: str
    request_hash: str
    reference: str | None
    status: str
    item_count: int
    open_count: int
    request_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None


__all__ = [
    "ApiClientRecord",
    "ApiKeyRecord",
    "BatchRecord",
    "CallbackRecord",
    "EventRecord",
    "JobRecord",
    "PaymentRecord",
    "Record",
    "ReversalRecord",
]
