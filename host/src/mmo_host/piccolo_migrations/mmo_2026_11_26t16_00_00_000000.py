"""Reversals in a table of their own, so that a payment can be refunded in several parts.

Each reversal has its own id, which is handed to the provider's `reverse` hook as
`reversal_id` (the operator's idempotency key where it takes one). At most one reversal of
a payment is open (in progress, pending, or of unknown outcome) at a time. The payment
keeps the total reversed so far; it becomes `reversed` when that reaches its amount.
"""

from mmo_host.database import sql_migration

ID = "2026-11-26T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reversals"

SQL = """
ALTER TABLE payments ADD COLUMN amount_reversed_minor bigint NOT NULL DEFAULT 0;
CREATE TABLE reversals (
    id uuid PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    idempotency_key varchar(255),
    request_hash varchar(64) NOT NULL,
    amount_minor bigint NOT NULL,
    reason text NOT NULL,
    status varchar(16) NOT NULL,
    provider_reference varchar(128),
    provider_transaction_id varchar(128),
    provider_data jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX reversals_idempotency ON reversals (payment_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX reversals_one_open ON reversals (payment_id)
    WHERE status IN ('in_progress', 'pending', 'unknown');
CREATE INDEX reversals_of_payment ON reversals (payment_id, created_at);
"""

DROP = """
DROP TABLE reversals;
ALTER TABLE payments DROP COLUMN amount_reversed_minor;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
