"""How a simulator misbehaves, set at run time through `POST /_simulator/faults`."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import msgspec


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
    """Draws the configured faults, from a seeded generator when `seed` is set."""

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

    def strikes_hang(self) -> bool:
        """Whether this request's answer will come too late for the caller (drawn now)."""
        return bool(self.faults.timeout_rate and self.rng.random() < self.faults.timeout_rate)

    async def maybe_hang(self, late: bool | None = None) -> None:
        """After the request was done: sometimes answer too late for the caller (`late`:
        already drawn with `strikes_hang`)."""
        if self.strikes_hang() if late is None else late:
            await asyncio.sleep(self.faults.timeout_seconds)

    def callback_copies(self, wanted: int = 1) -> int:
        """Dropped (0) or duplicated (one more) callbacks."""
        if self.faults.drop_callback_rate and self.rng.random() < self.faults.drop_callback_rate:
            return 0
        if (
            self.faults.duplicate_callback_rate
            and self.rng.random() < self.faults.duplicate_callback_rate
        ):
            return wanted + 1
        return wanted

    def callback_delay(self, default: float) -> float:
        """Delayed (`callback_delay_ms`) and out-of-order (a random factor) callbacks."""
        base = (
            default
            if self.faults.callback_delay_ms is None
            else self.faults.callback_delay_ms / 1000
        )
        if self.faults.out_of_order:
            return base * self.rng.uniform(0.1, 3.0)
        return base


__all__ = ["FaultInjector", "Faults"]
