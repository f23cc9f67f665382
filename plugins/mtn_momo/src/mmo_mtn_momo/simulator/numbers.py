"""Which outcome a wallet number gets: MTN's sandbox numbers, then the shared test numbers."""

from __future__ import annotations

from mmo_core.simulation import scenario

# MTN's "Sandbox Use Cases" (table C), by the full number. ("fail", reason) ends FAILED;
# ("error", reason) is one of the rows that may fail synchronously (setting sandbox_errors).
_COMMON: dict[str, tuple[str, str | None]] = {
    "46733123450": ("fail", "INTERNAL_PROCESSING_ERROR"),
    "46733123451": ("fail", "APPROVAL_REJECTED"),
    "46733123452": ("fail", "EXPIRED"),
    "46733123453": ("ongoing", None),
    "46733123454": ("pending", None),
    "56733123453": ("success", None),
}
REQUEST_TO_PAY: dict[str, tuple[str, str | None]] = {
    **_COMMON,
    "46733123455": ("error", "PAYER_NOT_FOUND"),
    "46733123456": ("error", "PAYEE_NOT_ALLOWED_TO_RECEIVE"),
    "46733123457": ("error", "NOT_ALLOWED"),
    "46733123458": ("error", "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123459": ("error", "INVALID_CALLBACK_URL_HOST"),
    "46733123460": ("error", "INVALID_CURRENCY"),
    "46733123461": ("error", "INTERNAL_PROCESSING_ERROR"),
    "46733123462": ("error", "SERVICE_UNAVAILABLE"),
    "46733123463": ("error", "COULD_NOT_PERFORM_TRANSACTION"),
}
TRANSFER: dict[str, tuple[str, str | None]] = {
    **_COMMON,
    "46733123455": ("error", "NOT_ENOUGH_FUNDS"),
    "46733123456": ("error", "PAYER_LIMIT_REACHED"),
    "46733123457": ("error", "PAYEE_NOT_FOUND"),
    "46733123458": ("error", "NOT_ALLOWED"),
    "46733123459": ("error", "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123460": ("error", "INVALID_CALLBACK_URL_HOST"),
    "46733123461": ("error", "INVALID_CURRENCY"),
    "46733123462": ("error", "INTERNAL_PROCESSING_ERROR"),
    "46733123463": ("error", "SERVICE_UNAVAILABLE"),
}
# The shared test numbers (shared/DESIGN.md), answered with MoMo's reasons.
SHARED: dict[str, str] = {
    "insufficient_funds": "NOT_ENOUGH_FUNDS",
    "cancelled": "APPROVAL_REJECTED",
    "unreachable": "EXPIRED",
    "wrong_pin": "PAYMENT_NOT_APPROVED",
}
# AccountHolderActive (MSISDN): -> (active, error code)
HOLDERS: dict[str, tuple[bool, str | None]] = {
    "46733123450": (False, None),  # NotFound
    "46733123451": (False, None),  # NotActive
    "46733123452": (False, "NOT_ALLOWED"),
    "46733123453": (False, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123454": (False, "INTERNAL_PROCESSING_ERROR"),
    "46733123455": (False, "SERVICE_UNAVAILABLE"),
}


def case(kind: str, digits: str) -> tuple[str, str | None]:
    """(outcome, reason) of a create, by the payer's (or payee's) digits."""
    # MTN's table C: RequestToWithdrawPayer* and DepositPayer* as RequestToPayPayer*
    table = TRANSFER if kind == "transfer" else REQUEST_TO_PAY
    if digits in table:
        return table[digits]
    shared = scenario(digits)
    if shared in SHARED:
        return "fail", SHARED[shared]
    return "success", None
