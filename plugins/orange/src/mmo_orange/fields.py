"""The Orange-side text fields of a payment, derived from it and never refused.

The orchestrator's `reference` may be up to 128 characters of any printable text; each
Orange family has its own, smaller fields. Every field here is a pure function of the
payment (same payment, same field): the reference is kept when it fits the field's length
and character set, else as much of it as fits, followed by a short hash that keeps two
long references apart. The payment itself keeps the orchestrator's reference untouched.
`payer_message`, the text the payer sees, is checked by `check_payer_message` (refused
with the limit in the message) and replaces the derived payer-facing text when given.
plugins/orange/README.md ("Fields sent to Orange") documents the same rules.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata

from mmo_core.errors import InvalidRequest
from mmo_core.types import Payment

from mmo_orange.client import NAME

# WebPay [O1]: order_id (unique per merchant) and reference, 30 characters each.
WEBPAY_ORDER_ID = 30
WEBPAY_REFERENCE = 30
# Orange Cameroon mp/pay: the sources give no limits (derived: orderId as WebPay's,
# description 100 printable ASCII characters, what a USSD prompt can carry).
CAMEROON_ORDER_ID = 30
CAMEROON_DESCRIPTION = 100
# Sonatel: reference at most 50 characters [O8, O9].
SONATEL_REFERENCE = 50

# The characters an identifier keeps (order ids): letters, digits, `-`, `_`, `.`.
_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")
_SPACES = re.compile(r"\s+")
DIGEST = 8  # characters of hash that keep two long references apart


def _digest(text: str, size: int) -> str:
    return base64.b32encode(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())[
        :size
    ].decode()


def _ascii(text: str) -> str:
    """Accents dropped (é -> e), anything else outside printable ASCII removed."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if " " <= ch <= "~")


def _printable(text: str) -> str:
    """Control characters, lone surrogates and line breaks as one space, trimmed."""
    kept = "".join(ch if ch.isprintable() else " " for ch in text)  # surrogates too
    return _SPACES.sub(" ", kept).strip()


def fit(text: str, limit: int, clean: str) -> str:
    """`clean` (the field's characters, already applied to `text`) when it is `text` itself
    and fits `limit`; else as much of `clean` as fits before `-` and a hash of `text`."""
    if clean == text and len(clean) <= limit:
        return clean
    head = clean[: limit - DIGEST - 1].rstrip(" -")
    return f"{head}-{_digest(text, DIGEST)}" if head else _digest(text, min(limit, 26))


def identifier(payment: Payment, limit: int) -> str:
    """A unique order id of at most `limit`: as much of the reference as the identifier
    characters and the room leave, `-`, and 12 characters of the payment id's hash (the
    payment id is unique where the reference need not be)."""
    unique = _digest(payment.id, 12)
    head = _NOT_ID.sub("", _ascii(payment.reference))[: limit - len(unique) - 1]
    return f"{head}-{unique}" if head else f"MMO-{unique}"


def webpay_order_id(payment: Payment) -> str:
    return identifier(payment, WEBPAY_ORDER_ID)


def webpay_reference(payment: Payment) -> str:
    """WebPay's `reference`, shown on Orange's payment page: the payer message, else the
    orchestrator's reference (printable text) fitted to 30 characters."""
    if payment.payer_message:
        return payment.payer_message
    return fit(payment.reference, WEBPAY_REFERENCE, _printable(payment.reference))


def cameroon_order_id(payment: Payment) -> str:
    return identifier(payment, CAMEROON_ORDER_ID)


def cameroon_description(payment: Payment) -> str:
    """mp/pay `description`: the payer message, else the description (or the reference)
    in printable ASCII, fitted to 100 characters."""
    if payment.payer_message:
        return payment.payer_message
    text = payment.description or payment.reference
    return fit(text, CAMEROON_DESCRIPTION, _SPACES.sub(" ", _ascii(text)).strip())


def sonatel_reference(payment: Payment) -> str:
    """Sonatel's `reference` (at most 50): the payer message, else the payment id (36
    characters), which the callback echoes and the payment is found by."""
    return payment.payer_message or payment.id


# -- payer_message --------------------------------------------------------------------------

# family -> (the field it goes to, its limit, ASCII only, the operator's name)
PAYER_MESSAGE = {
    "webpay": ("reference", WEBPAY_REFERENCE, False, "Orange WebPay"),
    "cameroon": ("description", CAMEROON_DESCRIPTION, True, "Orange Cameroon"),
    "sonatel": ("reference", SONATEL_REFERENCE, False, "Orange Senegal (Sonatel)"),
}


def check_payer_message(payment: Payment, family: str) -> None:
    """Refuse a `payer_message` the family's payer-facing field cannot carry as it is."""
    message = payment.payer_message
    if message is None:
        return
    field, limit, ascii_only, operator = PAYER_MESSAGE[family]
    if len(message) > limit:
        raise _invalid(f"payer_message: at most {limit} characters for {operator}")
    if ascii_only:
        readable = all(" " <= ch <= "~" for ch in message)
    else:
        readable = all(ch.isprintable() for ch in message)  # no controls, breaks, surrogates
    if not readable or not message.strip():
        what = "printable ASCII" if ascii_only else "printable characters, no line breaks"
        raise _invalid(
            f"payer_message: {what} only, at most {limit} characters for {operator} "
            f"(it becomes the {field} field)"
        )


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_payer_message", provider=NAME)


__all__ = [
    "cameroon_description",
    "cameroon_order_id",
    "check_payer_message",
    "fit",
    "sonatel_reference",
    "webpay_order_id",
    "webpay_reference",
]
