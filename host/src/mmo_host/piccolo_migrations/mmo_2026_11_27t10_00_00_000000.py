"""API clients and their keys, stored hashed.

A client owns payments and idempotency keys; each of its keys carries scopes
(`payments:write`, `payments:read`, `admin`). A key is 32 random bytes, so its plain
SHA-256 is stored (as Stripe and GitHub do) and looked up by a unique index; the key itself
is shown once, when it is created. `prefix` is what people see (`sk_live_ab12…`).

The client `env` is the owner of the keys in MMO_API_KEYS / MMO_ADMIN_KEYS and of the
payments operators report (M-Pesa C2B). The migration cannot see the environment: the
payments stored under the old per-key client ids are moved to `env` at start-up
(`keys.adopt_env_payments`).
"""

from mmo_host.database import sql_migration

ID = "2026-11-27T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api clients and keys"

SQL = """
CREATE TABLE api_clients (
    id varchar(64) PRIMARY KEY,
    name varchar(128) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO api_clients (id, name) VALUES ('env', 'env');
CREATE TABLE api_keys (
    id varchar(64) PRIMARY KEY,
    client_id varchar(64) NOT NULL REFERENCES api_clients (id) ON DELETE RESTRICT,
    prefix varchar(32) NOT NULL,
    hash char(64) NOT NULL,
    scopes text[] NOT NULL CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['payments:write', 'payments:read', 'admin']::text[]
    ),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT api_keys_hash UNIQUE (hash)
);
CREATE INDEX api_keys_client ON api_keys (client_id, created_at);
"""

DROP = """
DROP TABLE api_keys;
DROP TABLE api_clients;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL, DROP)
