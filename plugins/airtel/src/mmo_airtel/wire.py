"""Airtel Open API payloads, named as Airtel names them (developers.airtel.africa)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

# Amounts go out as JSON numbers (Airtel's samples), never through a float.
ENCODER = msgspec.json.Encoder(decimal_format="number")


class TokenRequest(msgspec.Struct):
    client_id: str
    client_secret: str
    grant_type: str = "client_credentials"


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int | str = 180
    token_type: str = "bearer"


# Airtel documents its codes and ids as strings, but some answers carry them as JSON
# numbers (S5's mock answers `result_code` 521002, `status.code` 200): every field that
# is a code, an id or a party is read as either, and `text` gives its string.
Text = str | int | float | None


def text(value: Any) -> str | None:
    """A code, id or message as a string, whether Airtel sent a string or a number; None
    for an absent or empty value. A fractional number keeps its digits (read as Decimal)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = Decimal(repr(value))
    return str(value)


class Status(msgspec.Struct):
    """The `status` block of every business answer; `code` is a string ("200", "400")."""

    code: Text = None
    message: Text = None
    result_code: Text = None
    response_code: Text = None
    success: bool | None = None


class Envelope(msgspec.Struct):
    """Every answer shape Airtel uses: the standard envelope, the ROUTER error body
    (`status_code`, `status_message`) and the OAuth error body (`error`, ...)."""

    data: Any = None
    status: Status | None = None
    status_code: Text = None
    status_message: Text = None
    error: str | None = None
    error_description: str | None = None


class Subscriber(msgspec.Struct, omit_defaults=True):
    msisdn: str
    country: str | None = None
    currency: str | None = None


class PushTransaction(msgspec.Struct, omit_defaults=True):
    amount: Decimal
    id: str
    country: str | None = None
    currency: str | None = None


class PushRequest(msgspec.Struct):
    """POST /merchant/v1/payments/ (USSD push)."""

    reference: str
    subscriber: Subscriber
    transaction: PushTransaction


class Payee(msgspec.Struct, omit_defaults=True):
    msisdn: str
    currency: str | None = None
    name: str | None = None
    wallet_type: str | None = None


class DisbursementTransaction(msgspec.Struct, omit_defaults=True):
    amount: Decimal
    id: str
    type: str | None = None


class DisbursementRequest(msgspec.Struct):
    """POST /standard/v1/disbursements/ and /standard/v2/disbursements/."""

    payee: Payee
    reference: str
    pin: str
    transaction: DisbursementTransaction


class RefundTransaction(msgspec.Struct):
    airtel_money_id: str


class RefundRequest(msgspec.Struct):
    """POST /standard/v1/payments/refund (full refunds only)."""

    transaction: RefundTransaction


class EnquiryTransaction(msgspec.Struct):
    """`data.transaction` of an enquiry (collection or disbursement)."""

    id: Text = None
    status: Text = None
    message: Text = None
    airtel_money_id: Text = None
    reference_id: Text = None


class CallbackTransaction(msgspec.Struct):
    """Read as strings or numbers (`text` gives the string): Airtel's ids are documented
    as strings, and a number must not lose a payment's final state."""

    id: str | int
    status_code: str | int
    message: Text = None
    airtel_money_id: Text = None


class Callback(msgspec.Struct):
    """{"transaction": {"id", "message", "status_code", "airtel_money_id"}, "hash"?}."""

    transaction: CallbackTransaction
    hash: str | None = None


class EncryptionKey(msgspec.Struct):
    """`data` of GET /v1/rsa/encryption-keys."""

    key: str
    key_id: int | str | None = None
    valid_upto: str | None = None


# (country, currency) pairs Airtel Money serves through the Open API, with the length of
# the national significant number Airtel expects in `msisdn` (no country code, no plus).
MARKETS: tuple[tuple[str, str], ...] = (
    ("UG", "UGX"),
    ("KE", "KES"),
    ("TZ", "TZS"),
    ("RW", "RWF"),
    ("ZM", "ZMW"),
    ("MW", "MWK"),
    ("MG", "MGA"),
    ("CD", "CDF"),
    ("CD", "USD"),
    ("CG", "XAF"),
    ("GA", "XAF"),
    ("NE", "XOF"),
    ("TD", "XAF"),
    ("SC", "SCR"),
    ("NG", "NGN"),
)
MSISDN_LENGTHS: dict[str, tuple[int, ...]] = {
    "UG": (9,),
    "KE": (9,),
    "TZ": (9,),
    "RW": (9,),
    "ZM": (9,),
    "MW": (9,),
    "MG": (9,),
    "CD": (9,),
    "CG": (9,),
    "GA": (8, 9),
    "NE": (8,),
    "TD": (8,),
    "SC": (7,),
    "NG": (10,),
}

# Enquiry `data.transaction.status`: TS success, TF failed, TE expired; TA (ambiguous),
# TIP (in progress) and anything else (TI was seen in production) are still pending.
TRANSACTION_STATUS: dict[str, str] = {"TS": "succeeded", "TF": "failed", "TE": "expired"}


# -- transaction summary: GET /merchant/v1/transactions?from=&to=&limit=&offset= ----------


class SummaryParty(msgspec.Struct):
    """`payer` / `payee` of a listed transaction (`msisdn` an int in the Go client)."""

    msisdn: str | int | None = None
    currency: str | None = None
    name: str | None = None


class SummaryService(msgspec.Struct):
    type: str | None = None


class SummaryCharges(msgspec.Struct):
    service: Decimal | None = None


class SummaryTransactionDetail(msgspec.Struct):
    """`transaction` of a listed transaction; `created_at` in epoch milliseconds."""

    id: str | int | None = None
    airtel_money_id: str | int | None = None
    amount: Decimal | None = None
    created_at: int | str | None = None
    reference_number: str | int | None = None
    status: str | int | None = None


class SummaryEntry(msgspec.Struct):
    transaction: SummaryTransactionDetail
    charges: SummaryCharges | None = None
    payee: SummaryParty | None = None
    payer: SummaryParty | None = None
    service: SummaryService | None = None


class TransactionList(msgspec.Struct):
    """`data` of the transaction summary: `count` and one page of `transactions`."""

    count: int = 0
    transactions: list[SummaryEntry] = []


class TransactionListEnvelope(msgspec.Struct):
    """The summary's answer decoded from the raw bytes, so amounts never pass a float."""

    data: TransactionList | None = None


# Wallet types of GET /standard/v2/users/balance?type= (Airtel Tchad doc v3.0).
WALLET_TYPES: tuple[str, ...] = ("DISB", "COLL", "CASHIN", "CASHOUT")
