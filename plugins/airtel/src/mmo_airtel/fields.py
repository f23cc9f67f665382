"""Airtel's request fields derived from a payment: `reference` and `transaction.id`.

The orchestrator's `reference` is up to 128 characters of any printable text and is never
refused for an Airtel field limit: the plugin derives what Airtel sees from it, the same
way every time for the same payment, and the payment keeps its reference untouched.

- A disbursement's `reference` follows the only reference rule Airtel documents (notes
  section 7, v2 disbursements): letters and digits, 4 to 64 characters. We apply it to
  every disbursement version, so a change of version never changes what passes.
- A collection's `reference` is the text shown to the payer on the USSD prompt. Airtel
  documents no limit for it (its samples carry spaces: "Order 1042"); we keep it to the
  same 64 characters, of letters, digits, spaces and `- _ . /`, so a 128-character
  reference never reaches a payer's prompt whole.
- `transaction.id` is our payment id (a UUID, 36 characters) when it is at most 64
  letters, digits, `-` and `_`; otherwise a stable derivation of it.

Where the text cannot fit, the derivation keeps as much of it as the rule allows and ends
with a short hash of the whole text, so two references that differ only in what was cut
still give two fields.
"""

from __future__ import annotations

import base64
import hashlib
import re

REFERENCE_MAX = 64
DISBURSEMENT_REFERENCE_MIN = 4
TRANSACTION_ID_MAX = 64
HASH_LENGTH = 8

_DISBURSEMENT_REFERENCE = re.compile(r"[A-Za-z0-9]{4,64}")
_COLLECTION_REFERENCE = re.compile(r"[A-Za-z0-9 _./-]{1,64}")
_COLLECTION_OUTSIDE = re.compile(r"[^A-Za-z0-9 _./-]+")
_TRANSACTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """`length` upper-case letters and digits of the SHA-256 of `text` (base32)."""
    digest = base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()
    return digest[:length]


def disbursement_reference(reference: str) -> str:
    """A disbursement's `reference`: letters and digits, 4 to 64 characters.

    The reference itself when it already is; else its letters and digits, cut to leave
    room, followed by the short hash of the whole reference.
    """
    if _DISBURSEMENT_REFERENCE.fullmatch(reference):
        return reference
    kept = re.sub(r"[^A-Za-z0-9]+", "", reference)[: REFERENCE_MAX - HASH_LENGTH]
    return kept + short_hash(reference)


def collection_reference(reference: str) -> str:
    """A collection's `reference` (the payer's prompt text): at most 64 letters, digits,
    spaces and `- _ . /`, never empty.

    The reference itself when it already is; else its allowed characters (runs of others
    become one space), cut to leave room, a `-` and the short hash of the whole reference.
    """
    if _COLLECTION_REFERENCE.fullmatch(reference) and reference.strip():
        return reference
    kept = " ".join(_COLLECTION_OUTSIDE.sub(" ", reference).split())
    kept = kept[: REFERENCE_MAX - HASH_LENGTH - 1].rstrip()
    return f"{kept}-{short_hash(reference)}" if kept else short_hash(reference)


def transaction_id(payment_id: str) -> str:
    """`transaction.id`: the payment id when it is at most 64 letters, digits, `-` and
    `_` (a UUID always is); else `mmo-` and 32 characters of its hash."""
    if _TRANSACTION_ID.fullmatch(payment_id):
        return payment_id
    return "mmo-" + short_hash(payment_id, 32)


def payer_message_problem(message: str, payment_type: str) -> str | None:
    """Why `payer_message` cannot be Airtel's `reference` as it is, or None when it can.

    The message names the limit; the payer's text is never cut or changed.
    """
    if payment_type == "disbursement":
        if not _DISBURSEMENT_REFERENCE.fullmatch(message):
            return (
                "payer_message: 4 to 64 letters or digits (no spaces or other characters) "
                "for Airtel Money disbursements"
            )
        return None
    if not _COLLECTION_REFERENCE.fullmatch(message) or not message.strip():
        return (
            "payer_message: at most 64 characters (letters, digits, spaces and - _ . /) "
            "for Airtel Money"
        )
    return None


def reference_for(payment_type: str, reference: str, payer_message: str | None) -> str:
    """Airtel's `reference` of a payment: its `payer_message` when given (checked by
    `validate`), else derived from the orchestrator's reference."""
    if payer_message:
        return payer_message
    if payment_type == "disbursement":
        return disbursement_reference(reference)
    return collection_reference(reference)


__all__ = [
    "REFERENCE_MAX",
    "TRANSACTION_ID_MAX",
    "collection_reference",
    "disbursement_reference",
    "payer_message_problem",
    "reference_for",
    "transaction_id",
]
