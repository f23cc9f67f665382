"""One error hierarchy that says what the caller can do.

Each plugin translates its operator's responses into these in one function; the host maps
them to HTTP responses in one handler. The classes are sorted by what a caller may do next:

- `InvalidRequest`: fix the request; never retried.
- `ProviderAuthenticationError`: our credential for the operator was refused; a person must act.
- `OperatorDeclined`: the operator refused the payment for good (insufficient funds, wrong PIN...).
- `ProviderUnavailable` (and `ProviderTimeout`, `RateLimited`): the operator could not be reached
  or asked us to back off; the request did not take effect and may be sent again.
- `OutcomeUnknown`: the request may or may not have taken effect; it must be reconciled through
  the operator's status API, never resent blindly.
- `UnknownToOperator`: the operator says it has no record of the payment (from `status`).
- `NoAnswerYet`: the operator has not answered a status query yet (from `status`).
- `CallbackVerificationFailed`: a webhook's token or signature did not match.
- `NotSupported`: the provider does not offer this operation.
- `ConfigurationError`: a setting is missing or wrong.
"""

from __future__ import annotations

from typing import Any


class MmoError(Exception):
    """Base of every error the gateway raises on purpose.

    `code` is a stable machine-readable code; for operator errors `provider_code` and
    `provider_message` keep the operator's own code and text, and `request_id` its request id.
    `failure_code` is, for a refused payment, the gateway failure code the plugin mapped the
    operator's code to (`mmo_core.failures`).
    """

    code: str = "error"
    http_status: int = 500
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        provider_code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        raw: Any = None,
        details: Any = None,
        failure_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.provider = provider
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.request_id = request_id
        self.raw = raw
        self.details = details
        # for an operator's refusal: the gateway failure code (mmo_core.failures) it means
        self.failure_code = failure_code

    def __str__(self) -> str:
        prefix = f"Request {self.request_id}: " if self.request_id else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, code={self.code!r}, "
            f"provider={self.provider!r}, provider_code={self.provider_code!r})"
        )


class InvalidRequest(MmoError):
    """The request is wrong and will stay wrong: fix it before sending it again."""

    code = "invalid_request"
    http_status = 422


class ConfigurationError(MmoError):
    """A setting is missing or invalid; the message names it."""

    code = "configuration_error"
    http_status = 500


class NotSupported(MmoError):
    """The provider does not offer this operation (or not for this country/currency)."""

    code = "not_supported"
    http_status = 422


class ProviderAuthenticationError(MmoError):
    """The operator refused our credentials (after one token refresh)."""

    code = "provider_authentication_failed"
    http_status = 502


class OperatorDeclined(MmoError):
    """The operator refused the payment for good; `provider_code` says why in its words."""

    code = "declined"
    http_status = 402


class ProviderUnavailable(MmoError):
    """The operator could not be reached or failed before taking the request; safe to retry."""

    code = "provider_unavailable"
    http_status = 503
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderTimeout(ProviderUnavailable):
    """The operator did not answer in time before the request was sent (connect timeout)."""

    code = "provider_timeout"
    http_status = 504


class RateLimited(ProviderUnavailable):
    """The operator asked us to slow down."""

    code = "rate_limited"
    http_status = 429


class OutcomeUnknown(MmoError):
    """The request may have taken effect: reconcile with the status API, never resend blindly."""

    code = "outcome_unknown"
    http_status = 504


class UnknownToOperator(MmoError):
    """The operator has no record of this payment: the request never reached it.

    Raise it from `status` only when the operator says so explicitly (e.g. a 404 for our
    reference id); the host may then fail the payment, or resend it where that is safe.
    """

    code = "unknown_to_operator"
    http_status = 404


class NoAnswerYet(MmoError):
    """The operator took the question but has not answered it yet (a status query whose
    answer comes by callback, late or lost): nothing is known, so nothing changes.

    Raise it from `status` instead of reporting `pending` when the operator told nothing:
    `pending` says the operator holds the payment, which moves an `unknown` payment on and
    away from being found never received. The host asks again later; the operator is up,
    so its breaker does not count it.
    """

    code = "no_answer_yet"
    http_status = 504


class CallbackVerificationFailed(MmoError):
    """A webhook's token or signature did not verify; its content must not be trusted."""

    code = "callback_verification_failed"
    http_status = 401


__all__ = [
    "CallbackVerificationFailed",
    "ConfigurationError",
    "InvalidRequest",
    "MmoError",
    "NoAnswerYet",
    "NotSupported",
    "OperatorDeclined",
    "OutcomeUnknown",
    "ProviderAuthenticationError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "UnknownToOperator",
]
