"""Building blocks every operator simulator shares.

A simulator is a small ASGI app in the plugin (Litestar by convention) that behaves like
the operator's sandbox. What is the same for all of them lives here:

- `Faults` / `FaultInjector`: latency, 5xx answers, timeouts (the request is done, the
  answer never comes in time), dropped, duplicated, delayed and out-of-order callbacks,
  set at run time through `POST /_simulator/faults`.
- `Ledger`: what the operator holds as done, served at `GET /_simulator/ledger`, so tests
  can compare the gateway's records with the operator's truth.
- `CallbackSender`: sends callbacks to the caller's URL after a delay, in the background.
- `scenario(msisdn)`: the shared test numbers of shared/DESIGN.md, by last four digits.
- `simulator_routes(sim)`: the two `/_simulator` routes for a Litestar app (needs the
  `simulator` extra).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import msgspec

log = logging.getLogger("mmo.simulator")

Scenario = Literal[
    "success",
    "insufficient_funds",
    "cancelled",
    "unreachable",
    "wrong_pin",
    "no_callback",
    "double_callback",
    "late_callback",
]

SCENARIOS: dict[str, Scenario] = {
    "0001": "insufficient_funds",
    "1032": "cancelled",
    "1037": "unreachable",
    "2001": "wrong_pin",
    "9990": "no_callback",
    "9991": "double_callback",
    "9992": "late_callback",
}


def scenario(msisdn: str) -> Scenario:
    """What the operator does for a wallet, chosen by the last four digits of its number."""
    digits = "".join(ch for ch in msisdn if ch.isdigit())
    return SCENARIOS.get(digits[-4:], "success")


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the simulator misbehaves. Rates are probabilities between 0 and 1."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    drop_callback_rate: float = 0.0
    duplicate_callback_rate: float = 0.0
    callback_delay_ms: int | None = None
    out_of_order: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate", "drop_callback_rate", "duplicate_callback_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0 or (
            self.callback_delay_ms is not None and self.callback_delay_ms < 0
        ):
            raise ValueError("delays must not be negative")


@dataclass
class FaultInjector:
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)

    def configure(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)

    async def latency(self) -> None:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    def error_status(self) -> int | None:
        """A 5xx status to answer instead of doing the request, or None."""
        if self.faults.error_rate and self.rng.random() < self.faults.error_rate:
            return self.faults.error_status
        return None

    async def maybe_hang(self) -> None:
        """After the request was done: sometimes answer too late for the caller."""
        if self.faults.timeout_rate and self.rng.random() < self.faults.timeout_rate:
            await asyncio.sleep(self.faults.timeout_seconds)

    def callback_copies(self, wanted: int = 1) -> int:
        if self.faults.drop_callback_rate and self.rng.random() < self.faults.drop_callback_rate:
            return 0
        if (
            self.faults.duplicate_callback_rate
            and self.rng.random() < self.faults.duplicate_callback_rate
        ):
            return wanted + 1
        return wanted

    def callback_delay(self, default: float) -> float:
        base = (
            default
            if self.faults.callback_delay_ms is None
            else self.faults.callback_delay_ms / 1000
        )
        if self.faults.out_of_order:
            return base * self.rng.uniform(0.1, 3.0)
        return base


class Ledger:
    """What the operator holds as done, by the operator's transaction id."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, **entry: Any) -> dict[str, Any]:
        with self._lock:
            current = self._entries.setdefault(key, {"id": key})
            current.update(entry)
            return dict(current)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            return dict(entry) if entry is not None else None

    def find(self, **match: Any) -> dict[str, Any] | None:
        with self._lock:
            for entry in self._entries.values():
                if all(entry.get(k) == v for k, v in match.items()):
                    return dict(entry)
        return None

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries.values()]


class CallbackSender:
    """Sends callbacks in the background, as operators do: once, late, twice or never."""

    def __init__(self, faults: FaultInjector, *, timeout: float = 10.0) -> None:
        self.faults = faults
        self.timeout = timeout
        self.sent: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def schedule(
        self,
        url: str,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        delay: float = 0.2,
        copies: int = 1,
    ) -> None:
        copies = self.faults.callback_copies(copies)
        for copy in range(copies):
            wait = self.faults.callback_delay(delay) + copy * 0.05
            task = asyncio.get_running_loop().create_task(
                self._send(url, body, headers or {}, method, wait)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], method: str, wait: float
    ) -> None:
        await asyncio.sleep(wait)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        merged = {"Content-Type": "application/json", **headers}
        try:
            response = await self._client.request(method, url, content=body, headers=merged)
            self.sent.append({"url": url.split("?")[0], "status": response.status_code})
        except httpx.HTTPError as exc:
            self.sent.append({"url": url.split("?")[0], "error": type(exc).__name__})
            log.info("simulator callback to %s failed: %s", url.split("?")[0], type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class Simulation:
    """The state of one simulator: faults, ledger and callback sender."""

    def __init__(self) -> None:
        self.injector = FaultInjector()
        self.ledger = Ledger()
        self.callbacks = CallbackSender(self.injector)


def simulator_routes(sim: Simulation) -> list[Any]:
    """`GET /_simulator/ledger` and `POST /_simulator/faults` as Litestar route handlers."""
    from litestar import Request, get, post
    from litestar.exceptions import ValidationException

    @get("/_simulator/ledger", sync_to_thread=False, include_in_schema=False)
    def ledger() -> dict[str, Any]:
        return {"entries": sim.ledger.entries(), "callbacks_sent": list(sim.callbacks.sent)}

    @post("/_simulator/faults", include_in_schema=False, status_code=200)
    async def faults(request: Request) -> dict[str, Any]:
        try:
            new = msgspec.json.decode(await request.body(), type=Faults)
        except (msgspec.MsgspecError, ValueError) as exc:
            raise ValidationException(str(exc)) from None
        sim.injector.configure(new)
        return msgspec.to_builtins(new)

    @get("/_simulator/faults", sync_to_thread=False, include_in_schema=False)
    def current_faults() -> dict[str, Any]:
        return msgspec.to_builtins(sim.injector.faults)

    return [ledger, faults, current_faults]


__all__ = [
    "SCENARIOS",
    "CallbackSender",
    "FaultInjector",
    "Faults",
    "Ledger",
    "Scenario",
    "Simulation",
    "scenario",
    "simulator_routes",
]
