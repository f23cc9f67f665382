"""Every ROUTER, ESB and DP code of Airtel's documentation, sorted by what it means for us.

Kinds, from the strongest to the weakest (when an answer carries several codes, the
strongest decides): `auth` (our credentials, PIN or signature were refused), `invalid` (the
request is wrong), `unsupported` (not configured for this country or product), `unavailable`
(not done, try later), `unknown` (may have been done: enquire), `duplicate` (the transaction
id was already received: enquire), `not_found`, `failed` / `expired` (a definite refusal),
`pending`, `success`.
"""

from __future__ import annotations

import re
from typing import Literal

from mmo_core import failures
from mmo_core.types import Failure

Kind = Literal[
    "auth",
    "invalid",
    "unsupported",
    "unavailable",
    "unknown",
    "duplicate",
    "not_found",
    "failed",
    "expired",
    "pending",
    "success",
]

PRIORITY: tuple[Kind, ...] = (
    "auth",
    "invalid",
    "unsupported",
    "unavailable",
    "unknown",
    "duplicate",
    "not_found",
    "failed",
    "expired",
    "pending",
    "success",
)

CODES: dict[str, tuple[Kind, str]] = {
    # Router (gateway in front of the products)
    "ROUTER001": ("unsupported", "Wallet not configured"),
    "ROUTER003": ("invalid", "Missing header or body parameters"),
    "ROUTER005": ("unsupported", "Country route not configured"),
    "ROUTER006": ("invalid", "Invalid country"),
    "ROUTER007": ("auth", "Not authorised for this country"),
    "ROUTER110": ("invalid", "Partner not found (X-Country missing)"),
    "ROUTER112": ("invalid", "Invalid currency"),
    "ROUTER114": ("auth", "Error validating the PIN"),
    "ROUTER115": ("auth", "Incorrect PIN"),
    "ROUTER116": ("auth", "Incorrect encrypted PIN (check the encryption mechanism)"),
    "ROUTER117": ("unknown", "Request timeout: do an enquiry"),
    "ROUTER119": ("invalid", "Invalid or missing currency"),
    # ESB (result_code, deprecated in favour of response_code but still sent)
    "ESB000001": ("unknown", "Something went wrong"),
    "ESB000004": ("unknown", "Error initiating the payment"),
    "ESB000008": ("invalid", "Field validation error"),
    "ESB000010": ("success", "Success"),
    "ESB000011": ("failed", "Failed"),
    "ESB000014": ("unavailable", "Error while fetching the transaction status"),
    "ESB000033": ("invalid", "Invalid MSISDN length"),
    "ESB000034": ("invalid", "Invalid country name"),
    "ESB000035": ("invalid", "Invalid currency provided"),
    "ESB000036": ("invalid", "Invalid MSISDN length or format"),
    "ESB000039": ("unsupported", "Vendor not configured for this country"),
    "ESB000041": ("duplicate", "External transaction id already exists"),
    "ESB000045": ("not_found", "No transaction found with this id"),
    # Collection (USSD push, enquiry)
    "DP00800001000": ("pending", "Ambiguous: still processing, do an enquiry"),
    "DP00800001001": ("success", "Transaction successful"),
    "DP00800001002": ("failed", "Incorrect PIN"),
    "DP00800001003": ("failed", "Exceeds withdrawal amount limit(s)"),
    "DP00800001004": ("failed", "Invalid amount"),
    "DP00800001005": ("failed", "Transaction id is invalid or the PIN was not entered"),
    "DP00800001006": ("pending", "In process"),
    "DP00800001007": ("failed", "Not enough balance"),
    "DP00800001008": ("failed", "Refused"),
    "DP00800001009": ("failed", "Do not honor"),
    "DP00800001010": ("failed", "Transaction not permitted to payee"),
    "DP00800001024": ("failed", "Transaction timed out"),
    "DP00800001025": ("not_found", "Transaction not found"),
    "DP00800001026": ("auth", "Forbidden: x-signature and payload did not match"),
    "DP00800001029": ("expired", "Transaction expired"),
    # Disbursement
    "DP00900001000": ("pending", "Ambiguous: still processing, do an enquiry"),
    "DP00900001001": ("success", "Transaction successful"),
    "DP00900001003": ("failed", "Maximum transaction limit reached for the day"),
    "DP00900001004": ("failed", "Invalid amount"),
    "DP00900001005": ("failed", "Transaction failed"),
    "DP00900001006": ("pending", "In process"),
    "DP00900001007": ("failed", "Not enough balance"),
    "DP00900001009": ("failed", "Invalid initiatee"),
    "DP00900001010": ("failed", "Payer not allowed"),
    "DP00900001011": ("failed", "Transaction not allowed: a similar transaction exists"),
    "DP00900001012": ("failed", "Invalid mobile number"),
    "DP00900001013": ("failed", "Refused"),
    "DP00900001014": ("unknown", "Transaction timed out: do an enquiry"),
    "DP00900001015": ("not_found", "Transaction not found"),
    "DP00900001016": ("auth", "Forbidden: x-signature and payload did not match"),
    "DP00900001017": ("duplicate", "Duplicate transaction id"),
    # KYC (user enquiry)
    "DP02200000000": ("unavailable", "User enquiry failed"),
    "DP02200000001": ("success", "Success"),
    "DP02200000002": ("not_found", "User not found"),
    # Encryption keys
    "DP02010001000": ("unavailable", "Error fetching the encryption key"),
    "DP02010001001": ("success", "Success"),
    # OAuth
    "invalid_client": ("auth", "Invalid client authentication"),
    "invalid_token": ("auth", "The access token is invalid or has expired"),
    "invalid_grant": ("auth", "Invalid grant"),
    "unauthorized_client": ("auth", "Unauthorised client"),
}


# Every refusal code of Airtel's documentation (and the transaction statuses TF/TE, which
# the callback carries alone) -> the gateway's failure code: this plugin's one mapping table
# (docs/api.md). A code not here becomes `operator_error`, logged once; those mapped to
# `prompt_expired` end the payment `expired`.
VOCABULARY = failures.Vocabulary(
    "airtel",
    {
        "DP00800001002": failures.WRONG_PIN,
        "DP00800001003": failures.PAYER_LIMIT_REACHED,
        "DP00800001004": failures.AMOUNT_OUT_OF_BOUNDS,
        "DP00800001005": failures.PROMPT_EXPIRED,
        "DP00800001007": failures.INSUFFICIENT_FUNDS,
        "DP00800001008": failures.PAYER_DECLINED,
        "DP00800001009": failures.PAYER_NOT_ALLOWED,
        "DP00800001010": failures.PAYEE_NOT_ALLOWED,
        "DP00800001024": failures.PROMPT_EXPIRED,
        "DP00800001025": failures.NOT_RECEIVED,
        "DP00800001029": failures.PROMPT_EXPIRED,
        "DP00900001003": failures.PAYER_LIMIT_REACHED,
        "DP00900001004": failures.AMOUNT_OUT_OF_BOUNDS,
        "DP00900001005": failures.OPERATOR_ERROR,
        "DP00900001007": failures.INSUFFICIENT_FUNDS,
        "DP00900001009": failures.PAYER_NOT_FOUND,
        "DP00900001010": failures.PAYER_NOT_ALLOWED,
        "DP00900001011": failures.DUPLICATE,
        "DP00900001012": failures.PAYER_NOT_FOUND,
        "DP00900001013": failures.PAYER_DECLINED,
        "DP00900001015": failures.NOT_RECEIVED,
        "DP00900001017": failures.DUPLICATE,
        "DP02200000002": failures.PAYER_NOT_FOUND,
        "ESB000011": failures.OPERATOR_ERROR,
        "ESB000041": failures.DUPLICATE,
        "ESB000045": failures.NOT_RECEIVED,
        # our disbursement PIN was refused: the merchant's account, not the payee's
        "ROUTER114": failures.ACCOUNT_ERROR,
        "ROUTER115": failures.ACCOUNT_ERROR,
        "ROUTER116": failures.ACCOUNT_ERROR,
        "ROUTER001": failures.ACCOUNT_ERROR,
        "ROUTER007": failures.ACCOUNT_ERROR,
        "TF": failures.OPERATOR_ERROR,
        "TE": failures.PROMPT_EXPIRED,
    },
)


def failure_for(code: str, text: str | None = None) -> Failure:
    """The one translation of an Airtel code into the gateway's vocabulary, keeping
    Airtel's code and its text (or the documented text of the code)."""
    return VOCABULARY.failure(code, text or CODES.get(code, ("", code))[1])


# What a TF callback's text says when the payer's prompt timed out: the callback carries
# no response code, only TF and the text of DP00800001024 / 1029 / 1005.
_PROMPT_TIMED_OUT = re.compile(r"timed?[ -]?out|expired|did not enter the pin", re.IGNORECASE)


def callback_failure(status_code: str, message: str | None) -> Failure:
    """The failure of a callback's `status_code` (TF, TE): TE, or a TF whose text says the
    prompt timed out or expired, is `prompt_expired`; Airtel's status and text are kept."""
    if status_code == "TF" and message and _PROMPT_TIMED_OUT.search(message):
        return failures.failure(
            failures.PROMPT_EXPIRED, provider_code=status_code, provider_message=message
        )
    return failure_for(status_code, message)


def kind_of(code: str | None) -> Kind | None:
    if not code:
        return None
    known = CODES.get(code)
    return known[0] if known else None


def strongest(codes: list[str | None]) -> tuple[Kind, str] | None:
    """The strongest known (kind, code) among `codes`; ties go to the first code given."""
    best: tuple[Kind, str] | None = None
    for code in codes:
        kind = kind_of(code)
        if kind is None:
            continue
        if best is None or PRIORITY.index(kind) < PRIORITY.index(best[0]):
            best = (kind, code)  # type: ignore[assignment]
    return best
