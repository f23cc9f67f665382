"""Daraja's limited text fields, derived from the payment.

The orchestrator's `reference` (up to 128 characters of any printable text) and
`description` are never refused for a Daraja field limit: each field below is derived from
them, the same every time for the same payment, keeping as much of the text as the
field's length and character set allow; where the text cannot fit, its head plus a short
hash of the whole text (so two references that share a head still differ). The payment
keeps the orchestrator's reference; only the wire body carries these.

Limits (shared/providers/mpesa.md): STK AccountReference letters and digits, at most 12
(shown on the payer's prompt); STK TransactionDesc at most 13; B2C Remarks 2 to 100 and
Occassion 1 to 100; Reversal Remarks 2 to 100; Transaction Status Remarks at most 100.

`payer_message` (what the payer sees), when the orchestrator gives it, takes the place of
the payer-facing field: the STK AccountReference of a collection (so it must already be
12 letters and digits at most), the Remarks of a B2C payment (Daraja shows a B2C
recipient no text of ours; 2 to 100 characters). `check_payer_message` refuses the rest.
"""

from __future__ import annotations

import base64
import hashlib
import re

from mmo_core.errors import InvalidRequest
from mmo_core.types import Payment

from mmo_mpesa.client import NAME

ACCOUNT_REFERENCE_LIMIT = 12
TRANSACTION_DESC_LIMIT = 13
REMARKS_LIMIT = 100  # B2C and Reversal Remarks (at least 2), Transaction Status Remarks
OCCASION_LIMIT = 100  # B2C Occassion (at least 1, optional)
HASH_LENGTH = 6
DEFAULT_REMARKS = "Payment"

_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")


def digest(text: str, length: int = HASH_LENGTH) -> str:
    """`length` characters of the text's SHA-256 in base32 (letters and digits 2-7)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:length]


def printable(text: str) -> str:
    """The text with control characters (newlines, tabs...) as spaces, trimmed."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def fit(text: str, limit: int) -> str:
    """The text when it fits `limit`, else its head and a hash of all of it (`head-HASH`)."""
    if len(text) <= limit:
        return text
    return text[: limit - HASH_LENGTH - 1].rstrip() + "-" + digest(text)


def account_reference(payment: Payment) -> str:
    """STK AccountReference (1 to 12 letters and digits): the payer_message when given;
    else the reference's letters and digits when they fit, else the first six of them and
    six characters of the reference's SHA-256 (base32). A reference with no letter or
    digit at all gives twelve characters of its hash."""
    if payment.payer_message:
        return payment.payer_message
    reference = payment.reference
    kept = _NOT_ALPHANUMERIC.sub("", reference)
    if 0 < len(kept) <= ACCOUNT_REFERENCE_LIMIT:
        return kept
    head = kept[: ACCOUNT_REFERENCE_LIMIT - HASH_LENGTH]
    return head + digest(reference, ACCOUNT_REFERENCE_LIMIT - len(head))


def transaction_desc(payment: Payment, default: str) -> str:
    """STK TransactionDesc (at most 13): the description (else `default`), fitted."""
    text = printable(payment.description or "") or printable(default) or DEFAULT_REMARKS
    return fit(text, TRANSACTION_DESC_LIMIT)


def remarks(text: str | None, default: str = DEFAULT_REMARKS) -> str:
    """Remarks of B2C, Reversal or Transaction Status (2 to 100): the text, fitted."""
    fitted = fit(printable(text or ""), REMARKS_LIMIT)
    return fitted if len(fitted) >= 2 else default


def b2c_remarks(payment: Payment) -> str:
    """B2C Remarks: the payer_message when given, else the description or reference."""
    if payment.payer_message:
        return payment.payer_message
    return remarks(payment.description or payment.reference)


def occasion(payment: Payment) -> str:
    """B2C Occassion (1 to 100): the reference, fitted."""
    return fit(printable(payment.reference), OCCASION_LIMIT) or payment.id[:OCCASION_LIMIT]


def check_payer_message(payment: Payment) -> None:
    """Refuse a payer_message Daraja's payer-facing field cannot carry as it is."""
    message = payment.payer_message
    if message is None:
        return
    if payment.type == "disbursement":
        if not (2 <= len(message) <= REMARKS_LIMIT and message.isprintable()):
            raise InvalidRequest(
                f"payer_message: 2 to {REMARKS_LIMIT} printable characters for M-Pesa B2C "
                "(its Remarks)",
                code="invalid_payer_message",
                provider=NAME,
            )
        return
    if not (len(message) <= ACCOUNT_REFERENCE_LIMIT and _ALPHANUMERIC.fullmatch(message)):
        raise InvalidRequest(
            f"payer_message: at most {ACCOUNT_REFERENCE_LIMIT} letters and digits (A-Z, "
            "a-z, 0-9) for M-Pesa (the account reference on the STK prompt)",
            code="invalid_payer_message",
            provider=NAME,
        )
