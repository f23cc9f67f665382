"""The gateway's one failure vocabulary.

Every failed or expired payment, reversal and disbursement carries one of these codes in
`Failure.code`, whichever operator handled it; the operator's own code and text stay
beside it in `Failure.provider_code` and `Failure.provider_message`. An orchestrator acts
on the gateway code only ("ask the payer to top up", "try again later", "a person must
look"), and never has to learn four operators' vocabularies.

Each plugin maps its operator's codes in one function built on `Vocabulary`: a table of
operator code -> gateway code, where any code the table does not know becomes
`operator_error` and is logged once per code. The codes are chosen from the operators'
documented result codes and pawaPay's failure codes (INSUFFICIENT_BALANCE,
PAYMENT_NOT_APPROVED, PAYER_NOT_FOUND, PAYER_LIMIT_REACHED, RECIPIENT_NOT_ALLOWED_TO_RECEIVE,
AMOUNT_OUT_OF_BOUNDS, DUPLICATE...). docs/api.md lists them with each operator's table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mmo_core.errors import MmoError
from mmo_core.types import Failure

INSUFFICIENT_FUNDS = "insufficient_funds"
PAYER_DECLINED = "payer_declined"
PROMPT_EXPIRED = "prompt_expired"
WRONG_PIN = "wrong_pin"
PAYER_NOT_FOUND = "payer_not_found"
PAYER_NOT_ALLOWED = "payer_not_allowed"
PAYER_LIMIT_REACHED = "payer_limit_reached"
PAYEE_NOT_ALLOWED = "payee_not_allowed"
AMOUNT_OUT_OF_BOUNDS = "amount_out_of_bounds"
DUPLICATE = "duplicate"
ACCOUNT_ERROR = "account_error"
NOT_RECEIVED = "not_received"
PROVIDER_UNAVAILABLE = "provider_unavailable"
OPERATOR_ERROR = "operator_error"
SETTLED_BY_HAND = "settled_by_hand"

# Every gateway failure code and what it means for the orchestrator.
CODES: dict[str, str] = {
    INSUFFICIENT_FUNDS: "The paying wallet's balance is too low (ask the payer to top up; "
    "for a disbursement, fund the merchant account).",
    PAYER_DECLINED: "The payer cancelled or rejected the prompt.",
    PROMPT_EXPIRED: "The payer did not answer the prompt in time, or could not be reached "
    "(the payment ends `expired`).",
    WRONG_PIN: "The payer entered a wrong PIN.",
    PAYER_NOT_FOUND: "No wallet is registered at this number (the payer, or the recipient "
    "of a disbursement).",
    PAYER_NOT_ALLOWED: "The wallet exists but may not make this payment (barred, "
    "suspended or inactive).",
    PAYER_LIMIT_REACHED: "The wallet's transaction, daily or balance limit would be exceeded.",
    PAYEE_NOT_ALLOWED: "The receiving wallet may not receive this payment.",
    AMOUNT_OUT_OF_BOUNDS: "The amount is below the operator's minimum or above its maximum.",
    DUPLICATE: "The operator saw this request (or an identical one) already.",
    ACCOUNT_ERROR: "The merchant's own account with the operator refused the request "
    "(credential locked, product not assigned): a person must act.",
    NOT_RECEIVED: "The operator never received the payment.",
    PROVIDER_UNAVAILABLE: "The operator could not be reached before the payment was given up.",
    OPERATOR_ERROR: "The operator failed the payment for a reason it did not explain, or "
    "with a code the gateway does not know.",
    SETTLED_BY_HAND: "A person recorded the outcome by hand (the note is the message).",
}

# The shared simulator test numbers (shared/DESIGN.md) and the gateway code each must end
# with, whatever the operator: the conformance kit holds every plugin to it.
SCENARIO_CODES: dict[str, str] = {
    "0001": INSUFFICIENT_FUNDS,
    "1032": PAYER_DECLINED,
    "1037": PROMPT_EXPIRED,
    "2001": WRONG_PIN,
}

# Codes meaning the payer never answered: a payment failing with one ends `expired`.
EXPIRED_CODES: frozenset[str] = frozenset({PROMPT_EXPIRED})

_log = logging.getLogger("mmo.failures")
_logged: set[tuple[str, str]] = set()


def failure(
    code: str,
    message: str | None = None,
    *,
    provider_code: str | None = None,
    provider_message: str | None = None,
) -> Failure:
    """A `Failure` with gateway `code`; `message` defaults to the operator's text, else the
    vocabulary's description of the code."""
    if code not in CODES:
        raise ValueError(f"{code!r} is not a gateway failure code")
    text = message or provider_message or CODES[code]
    return Failure(code, text, provider_code=provider_code, provider_message=provider_message)


def status_of(code: str) -> str:
    """`expired` for a code meaning the payer never answered, else `failed`."""
    return "expired" if code in EXPIRED_CODES else "failed"


def from_error(exc: MmoError) -> Failure:
    """The failure of an operator's refusal raised as an error (e.g. `OperatorDeclined`):
    its `failure_code` when the plugin set one, else `operator_error`."""
    code = exc.failure_code if exc.failure_code in CODES else OPERATOR_ERROR
    return failure(
        code,
        exc.provider_message or exc.message,
        provider_code=exc.provider_code or exc.code,
        provider_message=exc.provider_message or exc.message,
    )


class Vocabulary:
    """One operator's codes -> the gateway's (a plugin's one mapping table).

    `provider` names the operator in the log line written, once per code, for a code the
    table does not know.
    """

    def __init__(self, provider: str, table: Mapping[str, str]) -> None:
        unknown = {code for code in table.values() if code not in CODES}
        if unknown:
            raise ValueError(f"{provider}: not gateway failure codes: {sorted(unknown)}")
        self.provider = provider
        self.table = dict(table)

    def code(self, provider_code: str | None) -> str:
        """The gateway code of an operator code; unknown ones are `operator_error`."""
        key = (provider_code or "").strip()
        found = self.table.get(key)
        if found is not None:
            return found
        if (self.provider, key) not in _logged:
            _logged.add((self.provider, key))
            _log.warning("%s: unmapped operator code %r -> %s", self.provider, key, OPERATOR_ERROR)
        return OPERATOR_ERROR

    def failure(self, provider_code: str | None, provider_message: str | None = None) -> Failure:
        """The `Failure` of an operator code and its text."""
        return failure(
            self.code(provider_code),
            provider_code=provider_code or None,
            provider_message=provider_message or None,
        )


__all__ = [
    "CODES",
    "EXPIRED_CODES",
    "SCENARIO_CODES",
    "Vocabulary",
    "failure",
    "from_error",
    "status_of",
]
