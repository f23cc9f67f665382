"""The text fields of a MoMo body, derived from the payment: `externalId`, `payerMessage`
and `payeeNote` (requesttopay, requesttowithdraw, transfer, deposit, refund).

The orchestrator's `reference` (up to 128 characters of any printable text) and
`description` are never refused for MoMo's limits: the plugin derives what MoMo takes from
them, the same fields for the same payment, and the payment keeps its reference untouched.
Only `payer_message`, which the orchestrator sets for the payer to read, is checked (in
`validate`) rather than changed, since changing it would show the payer other words.

MoMo's rules (shared/providers/mtn_momo.md §7, checklist 32): `payerMessage` and
`payeeNote` at most 160 characters, and neither `'` nor `&` (400 otherwise). MTN documents
no limit for `externalId`; it gets the same treatment, so that no rule MTN left unwritten
can refuse a payment.
"""

from __future__ import annotations

import hashlib

from mmo_core.types import Payment

# MoMo's limit on payerMessage / payeeNote
TEXT_LIMIT = 160
# what MoMo refuses in those fields, and what the plugin writes instead
REPLACEMENTS = {"'": " ", "&": "and"}
# characters of SHA-256 (hex) that end a text cut to the limit
DIGEST_LENGTH = 8


def accepted(text: str) -> bool:
    """Whether MoMo takes `text` as it is in payerMessage / payeeNote."""
    return len(text) <= TEXT_LIMIT and all(
        ch not in REPLACEMENTS and ch.isprintable() for ch in text
    )


def fit(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` as MoMo takes it, deterministically.

    Unchanged when MoMo takes it. Otherwise `'` becomes a space, `&` "and", and any
    character that is not printable (a newline, a tab) a space; if that is still longer
    than `limit`, its first `limit - 9` characters, "-" and the first 8 hex digits of
    the SHA-256 of the original text (so two long texts that share their beginning still
    differ, and the same text always gives the same field).
    """
    if accepted(text) and len(text) <= limit:
        return text
    cleaned = "".join(REPLACEMENTS.get(ch, ch if ch.isprintable() else " ") for ch in text)
    if len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]
    return f"{cleaned[: limit - DIGEST_LENGTH - 1]}-{digest}"


def external_id(payment: Payment) -> str:
    """`externalId`: the reference (MoMo's reconciliation id in its reports), fitted; the
    payment id when the reference is empty."""
    return fit(payment.reference or payment.id)


def holder_text(payment: Payment) -> str:
    """What the wallet holder at `payment.msisdn` reads: the orchestrator's `payer_message`
    as it is (`validate` checked it), else the description, else the reference, fitted."""
    if payment.payer_message:
        return payment.payer_message
    return fit(payment.description or payment.reference or payment.id)


def merchant_text(payment: Payment) -> str:
    """What the merchant's own transaction history reads: the reference, fitted."""
    return fit(payment.reference or payment.id)


def texts(payment: Payment) -> dict[str, str]:
    """`payerMessage` and `payeeNote` (as Struct fields) of a payment's create.

    The wallet holder is MoMo's payer in a collection (requesttopay, requesttowithdraw)
    and MoMo's payee in a transfer or deposit: each reads the field of its own side, so
    the holder's text goes in `payerMessage` of a collection and in `payeeNote` of a
    transfer, and the merchant's in the other field.
    """
    holder, merchant = holder_text(payment), merchant_text(payment)
    if payment.type == "collection":
        return {"payer_message": holder, "payee_note": merchant}
    return {"payer_message": merchant, "payee_note": holder}


def refund_text(payment: Payment, reason: str) -> str:
    """`payerMessage` and `payeeNote` of a refund: the reason, else "Refund <reference>",
    fitted."""
    return fit(reason or f"Refund {payment.reference}")


def payer_message_problem(text: str) -> str | None:
    """Why MoMo would refuse the orchestrator's `payer_message`, or None."""
    if len(text) > TEXT_LIMIT:
        return f"at most {TEXT_LIMIT} characters for MTN MoMo (got {len(text)})"
    refused = sorted({ch for ch in text if ch in REPLACEMENTS or not ch.isprintable()})
    if refused:
        shown = ", ".join(repr(ch) for ch in refused)
        return (
            f"at most {TEXT_LIMIT} characters for MTN MoMo, without ' or & or control "
            f"characters (found {shown})"
        )
    return None
