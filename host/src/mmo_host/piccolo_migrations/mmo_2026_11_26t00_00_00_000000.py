"""The initial schema.

Written as SQL rather than generated: partial unique indexes, CHECK constraints and
non-cascading foreign keys are what keep money records safe, and they are clearest in SQL.
"""

from mmo_host.database import sql_migration

ID = "2026-11-26T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments, transitions, callbacks, outbox"

STATUSES = "('new','pending','succeeded','failed','expired','unknown','reversed')"

SQL = f"""
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    client_id varchar(64) NOT NULL,
    idempotency_key varchar(255) NOT NULL,
    request_hash varchar(64) NOT NULL,
    type varchar(16) NOT NULL CHECK (type IN ('collection','disbursement','remittance')),
    status varchar(16) NOT NULL CHECK (status IN {STATUSES}),
    provider varchar(64) NOT NULL,
    country varchar(2) NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency varchar(3) NOT NULL,
    msisdn varchar(20) NOT NULL,
    reference varchar(128) NOT NULL,
    description text,
    metadata jsonb NOT NULL DEFAULT '{{}}',
    provider_reference varchar(128),
    provider_transaction_id varchar(128),
    provider_data jsonb NOT NULL DEFAULT '{{}}',
    failure_code varchar(128),
    failure_message text,
    next_action jsonb,
    first_response jsonb,
    origin varchar(16) NOT NULL DEFAULT 'api',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1,
    CONSTRAINT payments_idempotency UNIQUE (client_id, idempotency_key)
);
CREATE UNIQUE INDEX payments_provider_reference
    ON payments (provider, provider_reference) WHERE provider_reference IS NOT NULL;
CREATE INDEX payments_provider_transaction
    ON payments (provider, provider_transaction_id) WHERE provider_transaction_id IS NOT NULL;
CREATE INDEX payments_reference ON payments (reference);
CREATE INDEX payments_status ON payments (status, updated_at);
CREATE INDEX payments_listing ON payments (created_at DESC, id DESC);
CREATE INDEX payments_provider_data ON payments USING gin (provider_data jsonb_path_ops);

CREATE TABLE callbacks (
    id uuid PRIMARY KEY,
    provider varchar(64) NOT NULL,
    kind varchar(64) NOT NULL,
    method varchar(8) NOT NULL,
    path text NOT NULL,
    query jsonb NOT NULL DEFAULT '{{}}',
    headers jsonb NOT NULL DEFAULT '{{}}',
    body bytea NOT NULL,
    remote_addr varchar(64),
    received_at timestamptz NOT NULL DEFAULT now(),
    verified boolean,
    processed boolean NOT NULL DEFAULT false,
    payment_id uuid REFERENCES payments (id) ON DELETE RESTRICT,
    flag varchar(32),
    error text,
    processed_at timestamptz
);
CREATE INDEX callbacks_payment ON callbacks (payment_id);
CREATE INDEX callbacks_flag ON callbacks (flag) WHERE flag IS NOT NULL;
CREATE INDEX callbacks_received ON callbacks (received_at);

CREATE TABLE payment_transitions (
    id bigserial PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    from_status varchar(16) CHECK (from_status IN {STATUSES}),
    to_status varchar(16) NOT NULL CHECK (to_status IN {STATUSES}),
    source varchar(16) NOT NULL,
    callback_id uuid REFERENCES callbacks (id) ON DELETE RESTRICT,
    detail jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_transitions_payment ON payment_transitions (payment_id, id);

CREATE TABLE outbox_events (
    id uuid PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    type varchar(64) NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX outbox_events_undelivered ON outbox_events (created_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_events_payment ON outbox_events (payment_id);
"""

DROP = """
DROP TABLE outbox_events;
DROP TABLE payment_transitions;
DROP TABLE callbacks;
DROP TABLE payments;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
