"""Outbound rate limits: calls per second to an operator, per account, shared by every host.

Operators cap the requests of one shortcode, application or subscription key per second
and answer 429 past it. Each account may declare `rate_limit` (calls per second,
mmo_core.accounts; 0: none), and every call of that account to its operator takes a slot
here first (`admit`, called by `mmo_host.operator.call`, the one place operator calls
are made).

- **Slots (GCRA).** The account keeps the moment its next call may start; a call reserves
  `max(next, now)` and moves it on by `1 / rate_limit`. With Redis this is one atomic
  script on Redis's own clock (one limit for every process and machine); while Redis does
  not answer, each process keeps the same slots in its memory (logged through
  `SharedRedis`: the limit holds per process).
- **Wait, or queue in order.** A call whose slot is at most `MAX_WAIT` away waits for it.
  A send (`prepare` / `initiate` of a payment) whose slot is further away is not made: the
  slot is held for that payment and `Queued` tells when to come back (`LEAD` before the
  slot, so the worker has claimed the job when the slot comes); the payment's next send
  takes its held slot, so excess payments go out in the order they were made. Any other
  call whose slot is too far is not made and reserves nothing (`Queued`, retry later).
- **An operator's 429** (`RateLimited`, its `Retry-After`) pauses the whole account:
  nothing starts before the pause ends (held slots inside it are given up for new ones),
  and a refused send is queued for the first slot after it (`slowed_down`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmo_core.errors import ProviderUnavailable, RateLimited

from mmo_host import metrics
from mmo_host.gateway import REDIS_FAILURES, SharedRedis

if TYPE_CHECKING:
    from mmo_host.gateway import Gateway

log = logging.getLogger("mmo.outbound")

# what Redis is used for here (`SharedRedis.degraded`, the logs)
USE = "outbound_limits"
# the hooks that send a payment: their far slot is held for the payment, which is queued
SEND_HOOKS = frozenset({"prepare", "initiate"})
# seconds a call may wait in process for its slot; further, it is queued (or not made)
MAX_WAIT = 0.5
# a queued send's job is due this long before its slot (the worker claims due jobs every
# half second); the send then waits for the slot itself
LEAD = 1.0
# a held slot may still be used this late (a busy worker); later, the send takes a new one
LATE = 0.05
# a held slot is forgotten this long after it went by (its payment was settled meanwhile)
HOLD_FOR = 120.0
# the pause after a 429 that says no Retry-After
DEFAULT_PAUSE = 1.0
# what operator.Answer.reason says for a call queued for its slot (payments._queue)
AT_SLOT = "outbound_slot"


class Queued(ProviderUnavailable):
    """The account's next slot is too far: the call was not made. `retry_after`: when to
    come back (for a send, its held slot minus `LEAD`); `slot_in`: the slot itself."""

    def __init__(self, message: str, *, slot_in: float, retry_after: float, **kwargs: Any):
        super().__init__(message, retry_after=retry_after, **kwargs)
        self.slot_in = slot_in


@dataclass(frozen=True)
class Slot:
    """What a reservation gave: `ok` (wait `wait` seconds, then call) or not (the slot is
    `wait` seconds away; held for the payment when one was named)."""

    ok: bool
    wait: float


# -- in memory (one process) -------------------------------------------------------------------


@dataclass
class _Account:
    next_free: float = 0.0
    paused_until: float = 0.0
    held: dict[str, float] = field(default_factory=dict)


class MemorySlots:
    """The slots of each account in this process's memory (`time.monotonic`)."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}

    def _account(self, key: str) -> _Account:
        found = self._accounts.get(key)
        if found is None:
            found = self._accounts[key] = _Account()
        return found

    async def reserve(self, key: str, interval: float, hold: str | None) -> Slot:
        now = time.monotonic()
        account = self._account(key)
        if hold is not None:
            held = account.held.pop(hold, None)
            if held is not None and held >= account.paused_until and held >= now - LATE:
                if held - now > MAX_WAIT + LEAD:  # come back nearer the slot
                    account.held[hold] = held
                    return Slot(False, held - now)
                return Slot(True, max(held - now, 0.0))
        slot = max(account.next_free, now, account.paused_until)
        wait = slot - now
        if wait > MAX_WAIT and hold is None:
            return Slot(False, wait)
        account.next_free = slot + interval
        if wait > MAX_WAIT and hold is not None:
            account.held[hold] = slot
            if len(account.held) > 10_000:  # forget holds long gone by
                account.held = {p: t for p, t in account.held.items() if t > now - HOLD_FOR}
            return Slot(False, wait)
        return Slot(True, wait)

    async def pause(self, key: str, seconds: float) -> None:
        account = self._account(key)
        until = time.monotonic() + seconds
        account.paused_until = max(account.paused_until, until)
        account.next_free = max(account.next_free, until)


# -- in Redis (every process) ------------------------------------------------------------------

# KEYS: [1] the account's next free moment, [2] its pause's end, [3] the payment's held
# slot (a placeholder key when none); ARGV (milliseconds): [1] interval, [2] MAX_WAIT,
# [3] LEAD, [4] LATE, [5] HOLD_FOR, [6] "1" when a slot may be held for the payment.
# Times are Redis's clock, so that hosts on several machines agree. Returns {ok, wait}.
_RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2])
local lead, late, hold_for = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local holding = ARGV[6] == '1'
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if holding then
  local held = tonumber(redis.call('GET', KEYS[3]) or '-1')
  if held >= 0 then
    if held >= paused and held >= now - late then
      if held - now > max_wait + lead then return {0, tostring(held - now)} end
      redis.call('DEL', KEYS[3])
      return {1, tostring(math.max(held - now, 0))}
    end
    redis.call('DEL', KEYS[3])
  end
end
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now, paused)
local wait = slot - now
if wait > max_wait and not holding then return {0, tostring(wait)} end
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil(wait + interval + 1000))
if wait > max_wait then
  redis.call('SET', KEYS[3], tostring(slot), 'PX', math.ceil(wait + hold_for))
  return {0, tostring(wait)}
end
return {1, tostring(wait)}
"""

# KEYS: [1] next free moment, [2] pause's end; ARGV[1]: the pause in milliseconds
_PAUSE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local untill = now + tonumber(ARGV[1])
local life = math.ceil(tonumber(ARGV[1]) + 1000)
if untill > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], tostring(untill), 'PX', life)
end
if untill > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(untill), 'PX', life)
end
return 1
"""


class RedisSlots:
    """The slots of each account in Redis, shared by every process on that Redis; in this
    process's memory while Redis does not answer."""

    def __init__(self, redis: Any, shared: SharedRedis, prefix: str = "mmo:outbound") -> None:
        self._reserve = redis.register_script(_RESERVE)
        self._pause = redis.register_script(_PAUSE)
        self._shared = shared
        self._prefix = prefix
        self._local = MemorySlots()

    def _keys(self, key: str) -> list[str]:
        return [f"{self._prefix}:{key}:next", f"{self._prefix}:{key}:paused"]

    def _alone(self) -> MemorySlots:
        """This process's slots, while Redis does not answer (said once per outage)."""
        if USE not in self._shared.degraded:
            self._shared.degraded.add(USE)
            log.warning(
                "Redis unavailable: %s degraded (each process keeps the accounts' limits alone)",
                USE,
            )
        return self._local

    async def reserve(self, key: str, interval: float, hold: str | None) -> Slot:
        if not self._shared.usable():
            return await self._alone().reserve(key, interval, hold)
        held = f"{self._prefix}:{key}:held:{hold or '-'}"
        args = [interval * 1000, MAX_WAIT * 1000, LEAD * 1000, LATE * 1000, HOLD_FOR * 1000]
        try:
            ok, wait = await self._reserve(
                keys=[*self._keys(key), held], args=[*args, "1" if hold else "0"]
            )
        except REDIS_FAILURES as exc:
            self._shared.failed(USE, exc)
            return await self._alone().reserve(key, interval, hold)
        self._shared.worked()
        return Slot(bool(int(ok)), float(wait) / 1000)

    async def pause(self, key: str, seconds: float) -> None:
        await self._local.pause(key, seconds)  # kept here too, should Redis go away
        if not self._shared.usable():
            return
        try:
            await self._pause(keys=self._keys(key), args=[seconds * 1000])
        except REDIS_FAILURES as exc:
            self._shared.failed(USE, exc)
            return
        self._shared.worked()


# -- the gateway's limits ------------------------------------------------------------------------


class OutboundLimits:
    """One gateway's outbound limits (`of(gateway)`): its Redis, else its memory."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._slots: MemorySlots | RedisSlots | None = None
        self._redis: Any = None

    def slots(self) -> MemorySlots | RedisSlots:
        shared = self.gateway.redis
        redis = shared.redis if shared is not None else None
        if self._slots is None or redis is not self._redis:
            self._redis = redis
            self._slots = (
                RedisSlots(redis, shared) if redis is not None and shared else MemorySlots()
            )
        return self._slots

    def rate(self, provider: str, account: str) -> float:
        found = self.gateway.accounts.get(provider, {}).get(account)
        return found.rate_limit if found is not None else 0.0

    async def admit(
        self, provider: str, account: str, hook: str, payment_id: uuid.UUID | None
    ) -> None:
        """Wait for the account's slot; raise `Queued` when it is too far to wait for."""
        rate = self.rate(provider, account)
        if rate <= 0:
            return
        hold = str(payment_id) if payment_id is not None and hook in SEND_HOOKS else None
        slot = await self.slots().reserve(f"{provider}/{account}", 1.0 / rate, hold)
        if not slot.ok:
            metrics.outbound_queued(self.gateway, provider, account, hook, slot.wait)
            raise Queued(
                f"{provider}/{account}: at most {rate:g} calls per second; next slot in "
                f"{slot.wait:.2f} s",
                provider=provider,
                slot_in=slot.wait,
                retry_after=max(slot.wait - LEAD, 0.0) if hold else slot.wait,
            )
        if slot.wait > 0:
            metrics.outbound_wait(self.gateway, provider, account, slot.wait)
            await asyncio.sleep(slot.wait)

    async def slowed_down(
        self,
        provider: str,
        account: str,
        hook: str,
        payment_id: uuid.UUID | None,
        error: RateLimited,
    ) -> Queued | None:
        """The operator answered 429: pause the account for its Retry-After. A send is
        then queued for the first slot after the pause (the `Queued` to raise); None: let
        the caller's policy read the `RateLimited` itself."""
        seconds = error.retry_after if error.retry_after is not None else DEFAULT_PAUSE
        key = f"{provider}/{account}"
        slots = self.slots()
        await slots.pause(key, seconds)
        metrics.outbound_pause(self.gateway, provider, account, seconds)
        rate = self.rate(provider, account)
        if payment_id is None or hook not in SEND_HOOKS:
            return None
        # without a limit of its own, the account still takes its turn after the pause
        slot = await slots.reserve(key, 1.0 / rate if rate > 0 else 0.0, str(payment_id))
        return Queued(
            f"{provider}/{account}: the operator asked to slow down for {seconds:g} s",
            provider=provider,
            slot_in=slot.wait,
            retry_after=max(slot.wait - LEAD, 0.0),
        )


_BY_GATEWAY: weakref.WeakKeyDictionary[Any, OutboundLimits] = weakref.WeakKeyDictionary()


def of(gateway: Gateway) -> OutboundLimits:
    """The outbound limits of the app whose gateway this is."""
    found = _BY_GATEWAY.get(gateway)
    if found is None:
        found = _BY_GATEWAY[gateway] = OutboundLimits(gateway)
    return found


__all__ = [
    "AT_SLOT",
    "LEAD",
    "MAX_WAIT",
    "SEND_HOOKS",
    "MemorySlots",
    "OutboundLimits",
    "Queued",
    "RedisSlots",
    "Slot",
    "of",
]
