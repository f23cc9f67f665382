"""The gateway's tables (schema in piccolo_migrations/, which is the source of truth).

- `payments`: one row per payment, every provider; operators' identifiers in indexed
  columns (`provider_reference`, `provider_transaction_id`) and in `provider_data` (JSONB).
- `payment_transitions`: every status change, with what caused it.
- `reversals`: every reversal (refund) of a payment, whole or in part.
- `callbacks`: every webhook exactly as received, and what became of it.
- `outbox_events`: one event per status change, for delivery to the orchestrator.
- `jobs`: the background worker's queue (polls, sends, deliveries).
- `payout_batches`: a batch of disbursements sent together (mmo_host.batches); its items
  are payments with its `batch_id`.

Foreign keys never cascade: money records are not deleted by accident.
"""

from piccolo.columns import (
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Bytea,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.column_types import JSONB
from piccolo.table import Table


class Payment(Table, tablename="payments"):
    id = UUID(primary_key=True)
    client_id = Varchar(length=64)
    idempotency_key = Varchar(length=255)
    request_hash = Varchar(length=64)
    type = Varchar(length=16)
    status = Varchar(length=16)
    provider = Varchar(length=64)
    country = Varchar(length=2)
    amount_minor = BigInt()
    currency = Varchar(length=3)
    msisdn = Varchar(length=20)
    reference = Varchar(length=128)
    description = Text(null=True)
    metadata = JSONB()
    provider_reference = Varchar(length=128, null=True)
    provider_transaction_id = Varchar(length=128, null=True)
    provider_data = JSONB()
    failure_code = Varchar(length=128, null=True)
    failure_message = Text(null=True)
    failure_provider_code = Varchar(length=128, null=True)
    failure_provider_message = Text(null=True)
    payer_message = Varchar(length=255, null=True)
    next_action = JSONB(null=True)
    first_response = JSONB(null=True)
    origin = Varchar(length=16)
    amount_reversed_minor = BigInt()
    created_at = Timestamptz()
    updated_at = Timestamptz()
    version = Integer()
    # how the provider was chosen (mmo_host.routing)
    routing = JSONB(null=True)
    # the payout batch it is an item of (mmo_host.batches)
    batch_id = UUID(null=True)


class Reversal(Table, tablename="reversals"):
    id = UUID(primary_key=True)
    payment_id = UUID()
    idempotency_key = Varchar(length=255, null=True)
    request_hash = Varchar(length=64)
    amount_minor = BigInt()
    reason = Text()
    status = Varchar(length=16)
    provider_reference = Varchar(length=128, null=True)
    provider_transaction_id = Varchar(length=128, null=True)
    provider_data = JSONB()
    error = Text(null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class PaymentTransition(Table, tablename="payment_transitions"):
    id = BigSerial(primary_key=True)
    payment_id = UUID()
    from_status = Varchar(length=16, null=True)
    to_status = Varchar(length=16)
    source = Varchar(length=16)
    callback_id = UUID(null=True)
    detail = JSONB(null=True)
    created_at = Timestamptz()


class Callback(Table, tablename="callbacks"):
    id = UUID(primary_key=True)
    provider = Varchar(length=64)
    kind = Varchar(length=64)
    method = Varchar(length=8)
    path = Text()
    query = JSONB()
    headers = JSONB()
    body = Bytea()
    remote_addr = Varchar(length=64, null=True)
    received_at = Timestamptz()
    verified = Boolean(null=True)
    processed = Boolean()
    payment_id = UUID(null=True)
    flag = Varchar(length=32, null=True)
    error = Text(null=True)
    processed_at = Timestamptz(null=True)


class OutboxEvent(Table, tablename="outbox_events"):
    id = UUID(primary_key=True)
    payment_id = UUID()
    type = Varchar(length=64)
    payload = JSONB()
    created_at = Timestamptz()
    delivered_at = Timestamptz(null=True)
    # a batch's event (`batch.completed`) has a batch and no payment
    batch_id = UUID(null=True)


class Job(Table, tablename="jobs"):
    id = BigSerial(primary_key=True)
    kind = Varchar(length=32)
    payment_id = UUID(null=True)
    event_id = UUID(null=True)
    target = Text(null=True)
    run_at = Timestamptz()
    attempts = Integer()
    locked_by = Varchar(length=64, null=True)
    locked_until = Timestamptz(null=True)
    rescheduled = Boolean()
    last_error = Text(null=True)
    created_at = Timestamptz()
    done_at = Timestamptz(null=True)


class PayoutBatch(Table, tablename="payout_batches"):
    id = UUID(primary_key=True)
    client_id = Varchar(length=64)
    idempotency_key = Varchar(length=255)
    request_hash = Varchar(length=64)
    reference = Varchar(length=128, null=True)
    status = Varchar(length=16)
    item_count = Integer()
    # items not final yet; 0 once the batch is completed
    open_count = Integer()
    request_id = Varchar(length=128, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    completed_at = Timestamptz(null=True)


ALL_TABLES = (PayoutBatch, Payment, Reversal, PaymentTransition, Callback, OutboxEvent, Job)
