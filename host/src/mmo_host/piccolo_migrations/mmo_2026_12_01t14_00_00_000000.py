"""Batch payouts: `payout_batches`, the batch a payment belongs to, and batch events.

A batch (`POST /api/v1/payouts/batches`) is stored with its items in one transaction:
the batch row, every item as a `new` disbursement carrying `batch_id`, their history rows
and their `send` jobs. `open_count` counts the items not yet final; the transition that
takes it to 0 marks the batch `completed` and writes its `batch.completed` event
(mmo_host.batches). An event is about a payment or about a batch, so `outbox_events`
gets a `batch_id` and its `payment_id` may be NULL for a batch's event.
"""

from mmo_host.database import sql_migration

ID = "2026-12-01T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payout batches"

SQL = """
CREATE TABLE payout_batches (
    id uuid PRIMARY KEY,
    client_id varchar(64) NOT NULL,
    idempotency_key varchar(255) NOT NULL,
    request_hash varchar(64) NOT NULL,
    reference varchar(128),
    status varchar(16) NOT NULL DEFAULT 'processing'
        CHECK (status IN ('processing', 'completed')),
    item_count integer NOT NULL CHECK (item_count > 0),
    open_count integer NOT NULL,
    request_id varchar(128),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT payout_batches_idempotency UNIQUE (client_id, idempotency_key),
    CONSTRAINT payout_batches_open CHECK (open_count >= 0 AND open_count <= item_count),
    CONSTRAINT payout_batches_completed CHECK ((status = 'completed') = (open_count = 0))
);
CREATE INDEX payout_batches_client ON payout_batches (client_id, created_at);
ALTER TABLE payments
    ADD COLUMN batch_id uuid REFERENCES payout_batches (id) ON DELETE RESTRICT;
CREATE INDEX payments_batch ON payments (batch_id, id) WHERE batch_id IS NOT NULL;
ALTER TABLE outbox_events ALTER COLUMN payment_id DROP NOT NULL;
ALTER TABLE outbox_events
    ADD COLUMN batch_id uuid REFERENCES payout_batches (id) ON DELETE RESTRICT;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_subject
    CHECK (payment_id IS NOT NULL OR batch_id IS NOT NULL);
CREATE INDEX outbox_events_batch ON outbox_events (batch_id) WHERE batch_id IS NOT NULL;
"""

DROP = """
DELETE FROM jobs WHERE event_id IN (SELECT id FROM outbox_events WHERE payment_id IS NULL);
DELETE FROM outbox_events WHERE payment_id IS NULL;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_subject;
ALTER TABLE outbox_events DROP COLUMN batch_id;
ALTER TABLE outbox_events ALTER COLUMN payment_id SET NOT NULL;
ALTER TABLE payments DROP COLUMN batch_id;
DROP TABLE payout_batches;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
