"""The request id of the API request that created a payment (its `X-Request-Id`, or the
one the gateway gave it), so that the log lines of the payment's callbacks, jobs and
events carry it too (`payment_request_id`)."""

from mmo_host.database import sql_migration

ID = "2026-12-01T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments.request_id"

SQL = """
ALTER TABLE payments ADD COLUMN request_id varchar(128);
"""

DROP = """
ALTER TABLE payments DROP COLUMN request_id;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
