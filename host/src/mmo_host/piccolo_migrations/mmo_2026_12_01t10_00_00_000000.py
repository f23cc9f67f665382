"""Accounts: which of a provider's accounts a payment and a callback belong to.

Every payment keeps the account it was sent with, and every later call for it (status,
reversal, prompts) goes through that account's credentials, whatever the configuration
says later. A callback keeps the account named in its URL. Rows stored before accounts
existed belong to `default`, the account the flat `MMO_<PROVIDER>_*` variables define.
"""

from mmo_host.database import sql_migration

ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts: payments.account and callbacks.account"

SQL = """
ALTER TABLE payments ADD COLUMN account varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE callbacks ADD COLUMN account varchar(64);
"""

DROP = """
ALTER TABLE callbacks DROP COLUMN account;
ALTER TABLE payments DROP COLUMN account;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
