"""The attention list: payments (and reversals) the gateway could not decide alone.

An entry says why (`reason`) and what was gathered (`evidence`: the last operator answers,
the callbacks kept, the job notes); it is open until the payment (or its reversal) ends,
which a person does through the settle routes. One open entry per payment and reason.
"""

from mmo_host.database import sql_migration

ID = "2026-12-01T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "attention list"

SQL = """
CREATE TABLE attention (
    id uuid PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    reason varchar(64) NOT NULL,
    evidence jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text
);
CREATE UNIQUE INDEX attention_open_per_reason ON attention (payment_id, reason)
    WHERE resolved_at IS NULL;
CREATE INDEX attention_open ON attention (created_at) WHERE resolved_at IS NULL;
"""

DROP = """
DROP TABLE attention;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
