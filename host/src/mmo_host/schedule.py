"""How long to wait before trying again: the one retry schedule of every follow-up.

Every delay the gateway waits before asking again is decided here, from one `Schedule`
built by the gateway from its settings (`Schedule.from_config`): polling a payment or a
reversal, sending a queued payment, retrying a job that raised, delivering an event,
matching an unmatched callback again. A follow-up asks its `Backoff` for the next delay
(`after`), which honours the operator's `Retry-After` and gives up past its horizon
(`None`). Callers decide only what giving up means for them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mmo_host.config import HostConfig

# Seconds before each delivery retry of an event: about 3 days, like Stripe's live schedule.
DELIVERY_STEPS: tuple[float, ...] = (
    60,
    300,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
)
# Seconds before each new attempt to match an unmatched callback (then a person looks).
REMATCH_STEPS: tuple[float, ...] = (1, 3, 10, 30, 60, 300)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter and a cap, or a fixed list of `steps`.

    `jitter="full"` draws uniformly in [0, delay] (AWS's full jitter, for many callers
    retrying one thing); a number spreads the delay by that fraction either way.
    `horizon` is the age (seconds since the thing began) after which to give up.
    """

    first: float
    cap: float
    factor: float = 2.0
    jitter: float | Literal["full"] = 0.1
    horizon: float | None = None
    steps: tuple[float, ...] = ()

    def base(self, attempt: int) -> float | None:
        """The delay before try `attempt + 1` after `attempt` tries (1 = the first)."""
        if self.steps:
            index = max(attempt, 1) - 1
            return self.steps[index] if index < len(self.steps) else None
        return min(self.cap, self.first * self.factor ** max(attempt - 1, 0))

    def after(
        self, attempt: int, *, age: float = 0.0, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait after `attempt` tries, at least the operator's `retry_after`;
        None when past the horizon or out of steps: give up."""
        if self.horizon is not None and age >= self.horizon:
            return None
        base = self.base(attempt)
        if base is None:
            return None
        return max(_jittered(base, self.jitter), retry_after or 0.0)


def _jittered(seconds: float, jitter: float | Literal["full"]) -> float:
    if jitter == "full":
        return random.uniform(0, seconds)
    return max(0.0, seconds * random.uniform(1 - jitter, 1 + jitter))


@dataclass(frozen=True)
class Queue:
    """When a queued payment is sent again: in the order the payments were made.

    Every queued payment of every process waits for the same ticks of the wall clock, one
    each `step` seconds (the breaker's cooldown: the moment it lets a probe through), and
    within a tick they are due in the order they were created, spread over
    `spread` seconds. So the oldest payment is the one that probes an operator coming
    back, and the others follow it in order (the worker claims due jobs by `run_at`).
    No jitter: the operator is spared a stampede by its breaker's single probe, and a
    ten-minute outage drains in order. The operator's `Retry-After` is honoured (the next
    tick after it); past `horizon` after its creation a payment is not queued again.
    """

    step: float
    horizon: float
    spread: float = 0.5
    clock: Callable[[], float] = time.time

    def after(
        self, attempt: int, *, age: float = 0.0, retry_after: float | None = None
    ) -> float | None:
        if age >= self.horizon:
            return None
        step = max(self.step, 0.1)
        now = self.clock()
        created = now - age
        earliest = now + max(retry_after or 0.0, 0.05)
        tick = math.ceil(earliest / step) * step
        # the payments of one tick were created within `horizon + step` before it
        window = self.horizon + step
        rank = min(max((created - (tick - window)) / window, 0.0), 1.0)
        return tick + rank * min(self.spread, step / 2) - now


@dataclass(frozen=True)
class Schedule:
    """Every follow-up's delays, from the host's settings (docs/operations.md)."""

    # the first status query of a `pending` payment with no callback, per provider
    poll_first: Mapping[str, float] = field(default_factory=dict)
    default_poll_first: float = 30.0
    # the first status query of an `unknown` payment
    unknown_first: float = 10.0
    # how long the initiate (or reverse) call may take before its row is presumed orphaned
    resolve_after: float = 60.0
    max_poll_delay: float = 600.0
    poll_for: float = 3 * 86400.0
    queue_for: float = 900.0
    breaker_cooldown: float = 30.0
    event_targets: tuple[str, ...] = ()
    event_stream: bool = False

    @classmethod
    def from_config(cls, config: HostConfig, poll_after: Mapping[str, float]) -> Schedule:
        """`poll_after` is each provider's declared first poll (MMO_POLL_AFTER overrides)."""
        return cls(
            poll_first={
                name: config.poll_after if config.poll_after is not None else seconds
                for name, seconds in poll_after.items()
            },
            resolve_after=(
                config.resolve_after
                if config.resolve_after is not None
                else config.operator_timeout + 30
            ),
            unknown_first=min(10.0, config.poll_after if config.poll_after is not None else 10.0),
            queue_for=config.queue_for,
            max_poll_delay=config.poll_max_delay,
            breaker_cooldown=config.breaker_cooldown,
            event_targets=config.event_urls,
            event_stream=bool(config.redis_url),
        )

    def first_poll(self, provider: str) -> float:
        return self.poll_first.get(provider, self.default_poll_first)

    def poll(self, provider: str) -> Backoff:
        """Status queries of a payment (or a reversal) until `poll_for` after it began."""
        return Backoff(
            first=self.first_poll(provider), cap=self.max_poll_delay, horizon=self.poll_for
        )

    @property
    def send(self) -> Queue:
        """Sends of a queued payment (breaker open, operator unavailable), `queue_for`
        long, in the order the payments were made (`Queue`)."""
        return Queue(step=self.breaker_cooldown, horizon=self.queue_for)

    @property
    def job_error(self) -> Backoff:
        """A job whose handler raised (a bug or the database): try again, forever."""
        return Backoff(first=2.0, cap=300.0, jitter="full")

    @property
    def delivery(self) -> Backoff:
        return Backoff(first=0, cap=0, steps=DELIVERY_STEPS)

    @property
    def rematch(self) -> Backoff:
        return Backoff(first=0, cap=0, jitter=0.0, steps=REMATCH_STEPS)


__all__ = ["DELIVERY_STEPS", "REMATCH_STEPS", "Backoff", "Queue", "Schedule"]
