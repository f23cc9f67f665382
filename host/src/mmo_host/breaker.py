"""Circuit breakers, one per provider (and per country where the operator splits by country).

closed -> open after `threshold` failures within `window` seconds; open for `cooldown`
seconds and on to the next whole multiple of `cooldown` on the wall clock (the tick on which
queued payments are sent again, schedule.Queue, so the oldest of them is the probe),
during which calls are not made (new payments are queued as `new`); then
half-open: exactly one caller gets to probe; its success closes the breaker, its failure
opens it again. With Redis the state is shared by every host process and the half-open
probe is a `SET NX` lock, so one probe is made across all of them.

While Redis does not answer, `FallbackBreakers` keeps the breakers in this process (as
without Redis), and goes back to the shared ones when Redis answers again: an operator's
availability is still judged, only each process judges it alone for that while.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from mmo_host.gateway import SharedRedis


@dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5
    window: float = 30.0
    cooldown: float = 30.0

    def open_until(self, now: float) -> float:
        """When a breaker opened (or opened again) at `now` lets its probe through: at
        least `cooldown` later, on the queue's tick (schedule.Queue uses the same grid)."""
        step = max(self.cooldown, 0.1)
        return math.ceil((now + self.cooldown) / step) * step


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
            self._open_until[key] = self.config.open_until(now)
            self._probing.pop(key, None)
            return
        recent = [t for t in self._failures.get(key, []) if t > now - self.config.window]
        recent.append(now)
        self._failures[key] = recent
        if len(recent) >= self.config.threshold:
            self._open_until[key] = self.config.open_until(now)

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
        now = time.time()
        until = self.config.open_until(now)
        ms = max(1, int((until - now) * 1000))
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
            pipe.set(self._k(key, "open"), str(until))
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


class FallbackBreakers:
    """The shared breakers (Redis), or this process's own while Redis does not answer."""

    def __init__(self, shared: RedisBreakers, local: MemoryBreakers, redis: SharedRedis) -> None:
        self.shared = shared
        self.local = local
        self.redis = redis
        self.config = shared.config

    async def _call(self, method: str, key: str) -> Any:
        from mmo_host.gateway import REDIS_FAILURES

        if self.redis.usable():
            try:
                result = await getattr(self.shared, method)(key)
            except REDIS_FAILURES as exc:
                self.redis.failed("breakers", exc)
            else:
                self.redis.worked()
                return result
        return await getattr(self.local, method)(key)

    async def allow(self, key: str) -> bool:
        return bool(await self._call("allow", key))

    async def success(self, key: str) -> None:
        await self._call("success", key)

    async def failure(self, key: str) -> None:
        await self._call("failure", key)

    async def state(self, key: str) -> BreakerState:
        state: BreakerState = await self._call("state", key)
        return state

    async def close(self) -> None:
        await self.shared.close()


def breaker_key(provider: Any, country: str | None, account: str | None = None) -> str:
    """`mpesa`, or `airtel:UG` for operators whose availability differs by country; an
    account other than `default` has its own: `mtn_momo/ghana`, `airtel/uganda:UG`."""
    name = provider.name if account in (None, "default") else f"{provider.name}/{account}"
    if provider.declaration.breaker_per_country and country:
        return f"{name}:{country}"
    return name
