"""Jobs for the background worker, created in the transaction of the change that needs them.

A job is claimed with `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`): two workers
never hold the same job, and a job whose worker died is taken again when its lease ends.
At most one open job of a kind per payment (`jobs_open_per_payment`).
"""

from mmo_host.database import sql_migration

ID = "2026-11-26T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "jobs"

SQL = """
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    kind varchar(32) NOT NULL,
    payment_id uuid REFERENCES payments (id) ON DELETE RESTRICT,
    event_id uuid REFERENCES outbox_events (id) ON DELETE RESTRICT,
    target text,
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    locked_by varchar(64),
    locked_until timestamptz,
    rescheduled boolean NOT NULL DEFAULT false,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE done_at IS NULL;
CREATE UNIQUE INDEX jobs_open_per_payment ON jobs (kind, payment_id)
    WHERE done_at IS NULL AND payment_id IS NOT NULL AND event_id IS NULL;
CREATE UNIQUE INDEX jobs_event_target ON jobs (event_id, target) WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_one_open_schedule ON jobs (kind)
    WHERE done_at IS NULL AND kind = 'reconcile';
"""

DROP = "DROP TABLE jobs;"


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
