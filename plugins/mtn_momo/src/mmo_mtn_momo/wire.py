"""MoMo Open API payloads, named as MTN names them, and MTN's published tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

# -- reading MoMo's bodies --------------------------------------------------------------------

# JSON numbers are read exactly: a fraction as a Decimal, never a float.
_TREE = msgspec.json.Decoder(float_hook=Decimal)


def _numbers_as_text(value: Any) -> Any:
    """Every JSON number in a decoded body as its text: `1500` -> "1500", `12.50` ->
    "12.50" (exactly as sent); booleans, strings and nulls unchanged."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _numbers_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_text(v) for v in value]
    return value  # pragma: no cover - JSON has no other types


def decode(raw: bytes, shape: type[T]) -> T:
    """A MoMo body (an answer or a callback) as `shape`.

    MTN documents amounts, transaction ids, party ids and codes as strings, but a body
    that carries a number there (`"amount": 1500`, `"financialTransactionId": 600198217`,
    `"partyId": 46733123451`) is read, not refused: every number becomes its exact text
    first (no float on the way). Raises msgspec's errors (and the others of
    `mmo_core.types.BODY_ERRORS`) for a body that is not JSON or not of that shape.
    """
    return msgspec.convert(_numbers_as_text(_TREE.decode(raw)), shape)


# -- payloads ---------------------------------------------------------------------------------


class Party(msgspec.Struct, rename="camel"):
    """`payer` / `payee`: `partyIdType` MSISDN (digits, no "+"), EMAIL or PARTY_CODE."""

    party_id_type: str
    party_id: str


class RequestToPay(msgspec.Struct, rename="camel", omit_defaults=True):
    """Body of `POST /collection/v1_0/requesttopay`."""

    amount: str
    currency: str
    external_id: str
    payer: Party
    payer_message: str = ""
    payee_note: str = ""


class Transfer(msgspec.Struct, rename="camel", omit_defaults=True):
    """Body of `POST /disbursement|remittance/v1_0/transfer` (a payee, not a payer)."""

    amount: str
    currency: str
    external_id: str
    payee: Party
    payer_message: str = ""
    payee_note: str = ""


# `POST /collection/v1_0|v2_0/requesttowithdraw` takes the requesttopay body (notes §4).
RequestToWithdraw = RequestToPay
# `POST /disbursement/v1_0|v2_0/deposit` takes the transfer body (notes §5).
Deposit = Transfer


class Refund(msgspec.Struct, rename="camel", omit_defaults=True):
    """Body of `POST /disbursement/v1_0|v2_0/refund`: the collection to refund, by its
    X-Reference-Id (`referenceIdToRefund`), and the amount to give back."""

    amount: str
    currency: str
    external_id: str
    reference_id_to_refund: str
    payer_message: str = ""
    payee_note: str = ""


class ErrorReason(msgspec.Struct):
    """The older schema's `reason` object (the live API sends a plain string)."""

    code: str
    message: str = ""


class Transaction(msgspec.Struct, rename="camel", omit_defaults=True):
    """A status GET's body (requesttopay, requesttowithdraw, transfer, deposit, refund), also
    the callback's body.

    PENDING has neither `financialTransactionId` nor `reason`; FAILED has `reason`, either
    a string ("APPROVAL_REJECTED") or `{code, message}`. Callbacks carry no reference id.
    """

    status: str
    amount: str | None = None
    currency: str | None = None
    external_id: str | None = None
    financial_transaction_id: str | None = None
    payer: Party | None = None
    payee: Party | None = None
    payer_message: str | None = None
    payee_note: str | None = None
    reason: str | ErrorReason | None = None
    # refunds only: the X-Reference-Id of the refunded collection
    reference_id_to_refund: str | None = None

    @property
    def reason_code(self) -> str | None:
        if isinstance(self.reason, ErrorReason):
            return self.reason.code
        return self.reason

    @property
    def reason_message(self) -> str | None:
        if isinstance(self.reason, ErrorReason):
            return self.reason.message or self.reason.code
        return self.reason

    @property
    def party(self) -> Party | None:
        return self.payer or self.payee


class TokenResponse(msgspec.Struct):
    """`POST /{product}/token/`: `{access_token, token_type, expires_in}`."""

    access_token: str
    expires_in: int | str = 3600
    token_type: str = "access_token"


class MomoError(msgspec.Struct, rename="camel"):
    """Every error shape MoMo answers with.

    Product calls: `{code, message}`; the API gateway (APIM): `{statusCode, message}`;
    the token endpoint: `{error: "login_failed"}`.
    """

    code: str | None = None
    message: str | None = None
    status_code: int | str | None = None
    error: str | None = None


class Balance(msgspec.Struct, rename="camel"):
    available_balance: str
    currency: str


class Active(msgspec.Struct):
    result: bool


class BasicUserInfo(msgspec.Struct, kw_only=True):
    given_name: str | None = None
    family_name: str | None = None
    name: str | None = None
    birthdate: str | None = None
    locale: str | None = None
    gender: str | None = None
    status: str | None = None
    sub: str | None = None
    updated_at: Any = None


class ApiUserCreate(msgspec.Struct, rename="camel"):
    provider_callback_host: str


class DeliveryNotification(msgspec.Struct, rename="camel"):
    """`POST /collection/v1_0/requesttopay/{id}/deliverynotification` body."""

    notification_message: str | None = None


class ApiUser(msgspec.Struct, rename="camel"):
    provider_callback_host: str
    target_environment: str = "sandbox"


class ApiKey(msgspec.Struct, rename="camel"):
    api_key: str


# -- tables -----------------------------------------------------------------------------------

# The 15 published `X-Target-Environment` values and their currencies (notes §1).
ENVIRONMENT_CURRENCY: dict[str, str] = {
    "sandbox": "EUR",
    "mtnuganda": "UGX",
    "mtnghana": "GHS",
    "mtnivorycoast": "XOF",
    "mtnzambia": "ZMW",
    "mtncameroon": "XAF",
    "mtnbenin": "XOF",
    "mtncongo": "XAF",
    "mtnswaziland": "SZL",
    "mtnguineaconakry": "GNF",
    "mtnsouthafrica": "ZAR",
    "mtnliberia": "LRD",
    "mtnsouthsudan": "SSP",
    "mtnnigeria": "NGN",
    "mtnrwanda": "RWF",
}

# Countries of the target environments (ISO 3166 alpha-2).
ENVIRONMENT_COUNTRY: dict[str, str] = {
    "mtnuganda": "UG",
    "mtnghana": "GH",
    "mtnivorycoast": "CI",
    "mtnzambia": "ZM",
    "mtncameroon": "CM",
    "mtnbenin": "BJ",
    "mtncongo": "CG",
    "mtnswaziland": "SZ",
    "mtnguineaconakry": "GN",
    "mtnsouthafrica": "ZA",
    "mtnliberia": "LR",
    "mtnsouthsudan": "SS",
    "mtnnigeria": "NG",
    "mtnrwanda": "RW",
}

PRODUCTS = ("collection", "disbursement", "remittance")

# `status` values: only SUCCESSFUL is paid; unknown ones (CREATED, ONGOING...) are pending.
FINAL_FAILED = {"FAILED", "REJECTED"}
EXPIRED_STATUSES = {"EXPIRED", "TIMEOUT"}
# `reason`s that mean the payer never answered: the payment expired rather than failed.
EXPIRED_REASONS = {"EXPIRED", "COULD_NOT_PERFORM_TRANSACTION"}

# Human text for every documented `ErrorReason` and extra reason (notes §7).
REASONS: dict[str, str] = {
    "PAYEE_NOT_FOUND": "The payee was not found",
    "PAYER_NOT_FOUND": "The payer was not found",
    "NOT_ALLOWED": "The partner is not allowed to do this",
    "NOT_ALLOWED_TARGET_ENVIRONMENT": "Access to target environment is forbidden.",
    "INVALID_CALLBACK_URL_HOST": "Callback URL host does not match the API user's host",
    "INVALID_CURRENCY": "Currency not supported.",
    "SERVICE_UNAVAILABLE": "The service is unavailable",
    "INTERNAL_PROCESSING_ERROR": "An internal error occurred while processing",
    "NOT_ENOUGH_FUNDS": "The payer does not have enough funds",
    "PAYER_LIMIT_REACHED": "The payer's limit has been reached",
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": "The payee is not allowed to receive",
    "PAYMENT_NOT_APPROVED": "The payment was not approved",
    "RESOURCE_NOT_FOUND": "Requested resource was not found.",
    "APPROVAL_REJECTED": "The payer rejected the request",
    "EXPIRED": "The request expired before the payer answered",
    "TRANSACTION_CANCELED": "The transaction was cancelled",
    "RESOURCE_ALREADY_EXIST": "Duplicated reference id. Creation of resource failed.",
    "COULD_NOT_PERFORM_TRANSACTION": "No PIN was entered within the approval window",
    "SENDER_ACCOUNT_NOT_ACTIVE": "The sender's account is not active",
    "TRANSACTION_NOT_FOUND": "The transaction was not found",
}

# A create refused for good with one of these codes: the payment failed (OperatorDeclined).
DECLINE_CODES = frozenset(
    {
        "PAYEE_NOT_FOUND",
        "PAYER_NOT_FOUND",
        "NOT_ALLOWED",
        "NOT_ENOUGH_FUNDS",
        "PAYER_LIMIT_REACHED",
        "PAYEE_NOT_ALLOWED_TO_RECEIVE",
        "PAYMENT_NOT_APPROVED",
        "APPROVAL_REJECTED",
        "EXPIRED",
        "TRANSACTION_CANCELED",
        "COULD_NOT_PERFORM_TRANSACTION",
        "SENDER_ACCOUNT_NOT_ACTIVE",
        "TRANSACTION_NOT_FOUND",
    }
)
