"""How each payment's provider was chosen (mmo_host.routing).

`routing` holds `{"network", "provider", "reason"}`: the number's mobile network, the
provider and why it was chosen. It is NULL for payments stored before routing was kept
and for payments an operator reported that the gateway did not start.
"""

from mmo_host.database import sql_migration

ID = "2026-11-28T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments.routing"

SQL = """
ALTER TABLE payments ADD COLUMN routing jsonb;
"""

DROP = """
ALTER TABLE payments DROP COLUMN routing;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
