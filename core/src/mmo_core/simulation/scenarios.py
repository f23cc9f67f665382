"""The shared test numbers (shared/DESIGN.md) and what each one does to the callback.

The outcome of a request is chosen by the last four digits of the wallet's national
number, so the same scenario can be asked of any operator. Each simulator maps the
declines to its operator's own codes; what happens to the callback (sent once, never,
twice or late) is decided here, once, by `callback_plan`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

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

# A late callback arrives this many times the configured delay after the request, long
# enough for the gateway's first status poll to come first.
LATE_FACTOR = 10


def scenario(msisdn: str) -> Scenario:
    """What the operator does for a wallet, chosen by the last four digits of its number."""
    digits = "".join(ch for ch in msisdn if ch.isdigit())
    return SCENARIOS.get(digits[-4:], "success")


class CallbackPlan(NamedTuple):
    """How many copies of a callback leave, and after how many seconds."""

    copies: int
    delay: float


def callback_plan(case: Scenario, delay: float, *, lead: float = 0.0) -> CallbackPlan:
    """The callback a scenario gets: none for `no_callback`, two for `double_callback`,
    `LATE_FACTOR` times the delay for `late_callback`, else one after `delay`.

    `lead` is added to the delay unscaled: the time the payer takes before the operator
    starts counting (Orange's auto-pay, Sonatel's confirmation).
    """
    if case == "no_callback":
        return CallbackPlan(0, lead + delay)
    if case == "late_callback":
        return CallbackPlan(1, lead + delay * LATE_FACTOR)
    return CallbackPlan(2 if case == "double_callback" else 1, lead + delay)


__all__ = ["LATE_FACTOR", "SCENARIOS", "CallbackPlan", "Scenario", "callback_plan", "scenario"]
