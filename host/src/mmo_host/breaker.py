"""Circuit breakers, one per provider (and per country where the operator splits by country).

closed -> open after `threshold` failures within `window` seconds; open for `cooldown`
seconds, during which calls are not made (new payments are queued as `new`); then
half-open: exactly one caller gets to probe; its success closes the breaker, its failure
opens it again. With Redis the state is shared by every host process and the half-open
probe is a `SET NX` lock, so one probe is made across all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5
    window: float = 30.0
    cooldown: float = 30.0


class BreakerState(msgspec.Struct):
    state: str
    failures: int
    open_until: float | None


class MemoryBreakers:
    """Breakers for one process."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._open_until: dict[str, float] = {}
        self._probing: dict[str, float] = {}

    async def allow(self, key: str) -> bool:
        now = self.clock()
        until = self._open_until.get(key)
        if until is None:
            return True
        if now < until:
            return False
        probe = self._probing.get(key)
        if probe is not None and now < probe:
            return False
        self._probing[key] = now + self.config.cooldown
        return True

    async def success(self, key: str) -> None:
        self._failures.pop(key, None)
        self._open_until.pop(key, None)
        self._probing.pop(key, None)

    async def failure(self, key: str) -> None:
        now = self.clock()
        if key in self._open_until:  # a failed probe (or a late failure): open again
            self._open_until[key] = now + self.config.cooldown
            self._probing.pop(key, None)
            return
        recent = [t for t in self._failures.get(key, []) if t > now - self.config.window]
        recent.append(now)
        self._failures[key] = recent
        if len(recent) >= self.config.threshold:
            self._open_until[key] = now + self.config.cooldown

    async def state(self, key: str) -> BreakerState:
        now = self.clock()
        until = self._open_until.get(key)
        failures = len([t for t in self._failures.get(key, []) if t > now - self.config.window])
        if until is None:
            return BreakerState("closed", failures, None)
        return BreakerState("open" if now < until else "half_open", failures, until)

    async def close(self) -> None:
        return None


class RedisBreakers:
    """Breakers shared by every host process through Redis (atomic counters and locks)."""

    def __init__(self, redis: Any, config: BreakerConfig, prefix: str = "mmo:breaker:") -> None:
        self.redis = redis
        self.config = config
        self.prefix = prefix

    def _k(self, key: str, part: str) -> str:
        return f"{self.prefix}{key}:{part}"

    async def allow(self, key: str) -> bool:
        if not await self.redis.exists(self._k(key, "open")):
            return True
        if await self.redis.exists(self._k(key, "cooling")):
            return False
        # half-open: one probe across all processes
        ms = int(self.config.cooldown * 1000)
        return bool(await self.redis.set(self._k(key, "probe"), "1", nx=True, px=ms))

    async def success(self, key: str) -> None:
        await self.redis.delete(
            self._k(key, "open"),
            self._k(key, "cooling"),
            self._k(key, "probe"),
            self._k(key, "failures"),
        )

    async def failure(self, key: str) -> None:
        ms = int(self.config.cooldown * 1000)
        if await self.redis.exists(self._k(key, "open")):
            await self.redis.set(self._k(key, "cooling"), "1", px=ms)
            await self.redis.delete(self._k(key, "probe"))
            return
        # the window starts with the first failure: SET NX gives the counter its expiry,
        # INCR keeps it (Redis 6.2 has no PEXPIRE NX)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._k(key, "failures"), 0, px=int(self.config.window * 1000), nx=True)
        pipe.incr(self._k(key, "failures"))
        _, count = await pipe.execute()
        if int(count) >= self.config.threshold:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self._k(key, "open"), str(time.time() + self.config.cooldown))
            pipe.set(self._k(key, "cooling"), "1", px=ms)
            await pipe.execute()

    async def state(self, key: str) -> BreakerState:
        opened = await self.redis.get(self._k(key, "open"))
        failures = int(await self.redis.get(self._k(key, "failures")) or 0)
        if opened is None:
            return BreakerState("closed", failures, None)
        cooling = await self.redis.exists(self._k(key, "cooling"))
        return BreakerState("open" if cooling else "half_open", failures, float(opened))

    async def close(self) -> None:
        await self.redis.aclose()


def breaker_key(provider: Any, country: str | None, account: str | None = None) -> str:
    """`mpesa`, or `airtel:UG` for operators whose availability differs by country; an
    account other than `default` has its own: `mtn_momo/ghana`, `airtel/uganda:UG`."""
    name = provider.name if account in (None, "default") else f"{provider.name}/{account}"
    if provider.declaration.breaker_per_country and country:
        return f"{name}:{country}"
    return name
