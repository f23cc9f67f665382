"""Asking an operator: the one place that reads how a call to a provider's hook ended.

`ask(gateway, target, hook, ...)` calls one hook of the target's provider through its
circuit breaker and the operator timeout, and returns one typed `Answer`:

- `answered`: the hook returned what it should (`value`), e.g. a StatusReport;
- `declined`: the operator (or the provider) refused for good and nothing took effect:
  OperatorDeclined, InvalidRequest, NotSupported, our credential refused;
- `not_sent`: certainly not taken, try again after `retry_after`: the breaker is open,
  ProviderUnavailable, RateLimited (with the operator's Retry-After), or the account's
  next outbound slot is too far (`outbound.Queued`, reason `outbound_slot`);
- `unknown`: it may have taken effect: OutcomeUnknown, our timeout, an unexpected
  exception or answer;
- `unknown_to_operator`: the operator has no record of what we asked about
  (UnknownToOperator from `status`).

The API, the worker, reconciliation, webhooks and the operations routes decide only
their own policy on that answer ("not sent -> queue", "unknown -> poll"). Failures that say
the operator is unwell (unavailable, timed out, no answer, a bug) count against the
breaker; a refusal or an answer counts as the operator being up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    MmoError,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.registry import Provider

from mmo_host import metrics, outbound
from mmo_host.breaker import breaker_key
from mmo_host.gateway import Gateway
from mmo_host.records import PaymentRecord

log = logging.getLogger("mmo.operator")

AnswerKind = Literal["answered", "declined", "not_sent", "unknown", "unknown_to_operator"]
# errors that say the operator refused for good: nothing took effect, resending won't help
DECLINES = (OperatorDeclined, InvalidRequest, NotSupported, ProviderAuthenticationError)


class BreakerOpen(Exception):
    """The provider's breaker is open: the call was not made."""


class ProviderError(MmoError):
    """The provider's hook failed in an unexpected way (a bug; logged with its trace)."""

    code = "provider_error"
    http_status = 502


@dataclass(frozen=True)
class Answer:
    """How one call to an operator ended (see the module's table)."""

    kind: AnswerKind
    value: Any = None
    error: MmoError | None = None
    # not_sent: seconds before trying again, the operator's Retry-After when it sent one
    retry_after: float | None = None
    # a short machine-readable reason: the error's code, `breaker_open`, `timeout`, ...
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "answered"

    def describe(self) -> str:
        """For job notes and logs: `not_sent: ProviderUnavailable: <message>`."""
        if self.error is not None:
            return f"{self.kind}: {type(self.error).__name__}: {self.error.message}"
        return f"{self.kind}: {self.reason}"

    def error_for_caller(self, provider: str) -> MmoError:
        """The error to answer an API caller with, for an answer that is not `answered`.

        For calls that move no money (balance, lookup, prompts); money-moving routes keep
        their own wording for `unknown` (the reversal route says the outcome is unknown).
        """
        if self.kind == "not_sent" and self.error is None:
            return ProviderUnavailable(
                "The provider's circuit breaker is open: retry later",
                provider=provider,
                retry_after=self.retry_after,
            )
        if self.kind == "unknown" and self.reason == "timeout":
            return ProviderUnavailable(
                "The operator did not answer in time", code="provider_timeout", provider=provider
            )
        if self.error is not None:
            return self.error
        return ProviderError(f"The provider failed ({self.reason})", provider=provider)


@dataclass(frozen=True)
class Target:
    """Whom to ask when there is no payment: a provider (and a country, for its breaker),
    through one of its accounts (None: its first)."""

    provider: str
    country: str | None = None
    account: str | None = None


async def call(gateway: Gateway, target: PaymentRecord | Target, hook: str, **kwargs: Any) -> Any:
    """Call the hook through the breaker and the operator timeout; raises as the hook does,
    `BreakerOpen` when the call was not made, `TimeoutError` when it did not return."""
    provider = gateway.registry.get(target.provider)
    # a payment's calls all go through the account it was sent with (`payments.account`)
    context = gateway.context(provider.name, target.account)
    key = breaker_key(provider, target.country, context.account)
    payment_id = target.id if isinstance(target, PaymentRecord) else None
    # the account's outbound rate limit: wait for its slot, or `outbound.Queued`
    limits = outbound.of(gateway)
    await limits.admit(provider.name, context.account, hook, payment_id)
    try:
        return await _breaker_call(gateway, provider, context, key, hook, payment_id, kwargs)
    except RateLimited as exc:
        # the operator's 429 pauses the whole account, not only this call
        queued = await limits.slowed_down(provider.name, context.account, hook, payment_id, exc)
        if queued is not None:
            raise queued from exc
        raise


async def _breaker_call(
    gateway: Gateway,
    provider: Provider,
    context: ProviderContext,
    key: str,
    hook: str,
    payment_id: uuid.UUID | None,
    kwargs: dict[str, Any],
) -> Any:
    # timed, counted and logged by provider, account, hook and outcome (mmo_host.metrics)
    with metrics.operator_call(gateway, provider.name, context.account, hook, payment_id) as seen:
        if not await gateway.breakers.allow(key):
            seen.outcome = "breaker_open"
            raise BreakerOpen(key)
        try:
            result = await asyncio.wait_for(
                provider.call(hook, context=context, **kwargs),
                timeout=gateway.config.operator_timeout + 5,
            )
        except (ProviderUnavailable, OutcomeUnknown, TimeoutError):
            await gateway.breakers.failure(key)
            raise
        except MmoError:
            await gateway.breakers.success(key)
            raise
        except Exception:
            await gateway.breakers.failure(key)
            raise
        await gateway.breakers.success(key)
        return result


async def ask(
    gateway: Gateway,
    target: PaymentRecord | Target,
    hook: str,
    *,
    expect: type | tuple[type, ...] | None = None,
    **kwargs: Any,
) -> Answer:
    """Ask the target's provider (`hook` with `kwargs`) and read how it ended.

    With `expect`, an answer of another type (None included) is `unknown`: the provider
    did something it should not have, and what the operator did is not known.
    """
    provider = target.provider
    try:
        value = await call(gateway, target, hook, **kwargs)
    except BreakerOpen:
        return Answer(
            "not_sent", retry_after=gateway.config.breaker_cooldown, reason="breaker_open"
        )
    except outbound.Queued as exc:  # the account's slot is far: queued for it, not sent
        return Answer("not_sent", error=exc, retry_after=exc.retry_after, reason=outbound.AT_SLOT)
    except UnknownToOperator as exc:
        return Answer("unknown_to_operator", error=exc, reason=exc.code)
    except ProviderUnavailable as exc:
        return Answer("not_sent", error=exc, retry_after=exc.retry_after, reason=exc.code)
    except DECLINES as exc:
        return Answer("declined", error=exc, reason=exc.code)
    except MmoError as exc:  # OutcomeUnknown, or an error no hook should raise here
        return Answer("unknown", error=exc, reason=exc.code)
    except TimeoutError:
        log.warning("provider %s: %s did not return in time", provider, hook)
        return Answer("unknown", reason="timeout")
    except Exception:
        log.exception("provider %s raised on %s", provider, hook)
        return Answer("unknown", reason="provider_error")
    if expect is not None and not isinstance(value, expect):
        log.error("provider %s answered %s with %s", provider, hook, type(value).__name__)
        return Answer("unknown", value=value, reason="unexpected_answer")
    return Answer("answered", value=value)


__all__ = ["Answer", "BreakerOpen", "ProviderError", "Target", "ask", "call"]
