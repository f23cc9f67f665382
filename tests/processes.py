"""Real processes for the fault tests: simulators (`mmo simulate`) and hosts (`mmo serve`)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import httpx
from mmo_host.bench.stack import clean_env, wait_http

MMO = [sys.executable, "-m", "mmo_host.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    """The environment of a test's process (the bench starts the same processes the same
    way, mmo_host.bench.stack), with admission by event-loop lag off: the suite shares its
    machine's two cores, where a host's loop runs late for reasons of its neighbours'."""
    env = clean_env()
    env["MMO_MAX_LOOP_LAG_MS"] = "0"
    return env


@dataclass
class Process:
    args: list[str]
    env: dict[str, str]
    log_path: str
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log)
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no atexit, mid-request."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Simulator(Process):
    name: str = ""
    url: str = ""

    def faults(self, **faults) -> None:
        response = httpx.post(f"{self.url}/_simulator/faults", json=faults, timeout=10)
        response.raise_for_status()

    def ledger(self) -> dict:
        return httpx.get(f"{self.url}/_simulator/ledger", timeout=30).json()


def start_simulator(name: str, tmp_path, env: dict[str, str]) -> Simulator:
    port = free_port()
    sim = Simulator(
        args=[*MMO, "simulate", name, "--port", str(port)],
        env=env,
        log_path=str(tmp_path / f"sim-{name}.log"),
        name=name,
        url=f"http://127.0.0.1:{port}",
    )
    sim.start()
    wait_http(f"{sim.url}/_simulator/ledger")
    return sim


@dataclass
class Host(Process):
    url: str = ""
    restarts: int = field(default=0)

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_http(f"{self.url}/health/ready", timeout, ok=lambda r: r.status_code == 200)

    def restart(self) -> None:
        self.restarts += 1
        self.start()
        self.wait_ready()


def start_host(tmp_path, env: dict[str, str], label: str = "host") -> Host:
    port = int(env["MMO_PORT"])
    host = Host(
        args=[*MMO, "serve"],
        env=env,
        log_path=str(tmp_path / f"{label}.log"),
        url=f"http://127.0.0.1:{port}",
    )
    host.start()
    host.wait_ready()
    return host
