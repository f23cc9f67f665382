"""The audit log: every admin action that changes something, who asked and the answer.

A row is written before the action runs (`status` and `answer` NULL) and completed with
the HTTP status and the body answered: a row left without a status is an action whose
process died mid-way, so nothing an admin did goes unrecorded (mmo_host.audit).
"""

from mmo_host.database import sql_migration

ID = "2026-12-01T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit log of admin actions"

SQL = """
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    client_id varchar(64) NOT NULL,
    key_id varchar(64),
    action varchar(64) NOT NULL,
    target varchar(255) NOT NULL,
    request jsonb NOT NULL DEFAULT '{}'::jsonb,
    status integer,
    answer jsonb
);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
"""

DROP = """
DROP TABLE audit_log;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
