"""The operator's own failure code and text, beside the gateway's.

`failure_code` now holds a gateway failure code (mmo_core.failures); what the operator
said is kept in `failure_provider_code` and `failure_provider_message`. Payments failed
before this migration keep the operator's code in `failure_code`: it is copied into
`failure_provider_code` so the operator's word is not lost (the codes the host made
itself, already gateway codes, are not), and left as it was.
`payer_message` is the optional text the orchestrator asked the payer to see.
"""

from mmo_host.database import sql_migration

ID = "2026-11-28T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "gateway failure vocabulary: operator code and text beside it"

SQL = """
ALTER TABLE payments ADD COLUMN failure_provider_code varchar(128);
ALTER TABLE payments ADD COLUMN failure_provider_message text;
ALTER TABLE payments ADD COLUMN payer_message varchar(255);
UPDATE payments SET failure_provider_code = failure_code,
                    failure_provider_message = failure_message
 WHERE failure_code IS NOT NULL
   AND failure_code NOT IN ('not_received', 'provider_unavailable', 'settled_by_hand');
"""

DROP = """
ALTER TABLE payments DROP COLUMN payer_message;
ALTER TABLE payments DROP COLUMN failure_provider_message;
ALTER TABLE payments DROP COLUMN failure_provider_code;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
