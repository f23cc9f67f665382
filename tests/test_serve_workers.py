"""`mmo serve --workers N` (issue 17): N host processes on one port, from one command.

Run as a real process in the sandbox with nothing else configured: the embedded
PostgreSQL, its migrations and the mounted simulators are started once by the supervising
process, not once per host process. Every answer names the process that served it
(`X-Mmo-Process`), which the test holds to the supervisor's own children.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import MMO, Process, base_env, free_port, wait_http

KEY = "sk_workers_0123456789abcdefghij"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mmo-serve-workers-"))
    path.chmod(0o755)  # as root, the embedded server's own user must enter it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_two_host_processes_serve_and_stop_on_sigterm(data_dir: Path, tmp_path: Path):
    port = free_port()
    env = base_env() | {
        "MMO_DATA_DIR": str(data_dir),
        "MMO_PORT": str(port),
        "MMO_API_KEYS": KEY,
        "MMO_ENABLED_PROVIDERS": "mtn_momo",
        "MMO_MTN_MOMO_CALLBACK_DELAY": "0.05",
        "MMO_LOG_FORMAT": "console",
    }
    host = Process([*MMO, "serve", "--workers", "2"], env, str(tmp_path / "serve.log"))
    host.start()
    assert host.process is not None
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", 120, ok=lambda r: r.status_code == 200)
        supervisor = psutil.Process(host.process.pid)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=20
        ) as client:
            response = await client.post(
                "/api/v1/payments",
                json={
                    "type": "collection",
                    "amount": "150",
                    "currency": "EUR",
                    "msisdn": "+46701237001",
                    "provider": "mtn_momo",
                    "reference": "WORKERS1",
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 202, response.text
            payment = response.json()["id"]
            # asked about through whichever process: one database, one simulator
            deadline = time.monotonic() + 30
            while True:
                body = (await client.get(f"/api/v1/payments/{payment}")).json()
                if body["status"] == "succeeded":
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)

        async def served_by() -> str:
            async with httpx.AsyncClient(timeout=20) as fresh:  # a connection of its own
                answer = await fresh.get(f"{url}/health/live")
                assert answer.status_code == 200
                return answer.headers["x-mmo-process"]

        seen: set[str] = set()
        for _ in range(10):  # the kernel hands each connection to one of the processes
            seen |= set(await asyncio.gather(*(served_by() for _ in range(30))))
            if len(seen) >= 2:
                break
        children = {str(p.pid) for p in supervisor.children()}
        assert len(seen) == 2 and seen <= children, (seen, children)
        workers = [psutil.Process(int(pid)) for pid in seen]
    finally:
        host.process.send_signal(signal.SIGTERM)
        try:
            code = host.process.wait(timeout=60)
        except Exception:
            host.process.kill()
            raise
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log[-3000:]
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    # one PostgreSQL for both, started once and stopped with the supervisor
    assert log.count("starting embedded PostgreSQL") == 1, log[-3000:]
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    assert log.count("gateway ready") == 2
    print(f"\n--workers 2: processes {sorted(seen)} answered; stopped by SIGTERM, exit {code}")
