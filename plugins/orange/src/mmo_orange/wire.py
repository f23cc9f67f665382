"""Orange Money payloads, named as Orange names them (one section per API family)."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import msgspec


class Text(str):
    """A field Orange documents as a string but may send as a JSON number (amounts as text,
    transaction ids, party ids, status codes): read either way, always a `str` after.

    Only `decoder(...)` knows how to read it (its `dec_hook`); a bool, float, object or
    list there is still malformed. `Answer` turns it back into a plain `str` once decoded,
    so that it can be sent again and stored (msgspec encodes no `str` subclass)."""


class Answer(msgspec.Struct):
    """A body Orange sends us: its `Text` fields are plain strings once decoded."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if type(value) is Text:
                setattr(self, name, str(value))


def _read_text(kind: type, value: Any) -> Any:
    if kind is Text and isinstance(value, (str, int)) and not isinstance(value, bool):
        return Text(value)
    raise TypeError(f"Expected a string or an integer, got {type(value).__name__}")


@functools.cache
def decoder(into: Any) -> msgspec.json.Decoder[Any]:
    """The one JSON decoder of an Orange answer or callback into `into`: `Text` fields take
    numbers too, and a number in an untyped field is a `Decimal`, never a float."""
    return msgspec.json.Decoder(into, dec_hook=_read_text, float_hook=Decimal)


# -- OAuth (both families) ------------------------------------------------------------------


class TokenResponse(Answer):
    access_token: Text
    expires_in: int | str = 3600
    token_type: str = "Bearer"


# -- WebPay -----------------------------------------------------------------------------------


class WebPayment(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /orange-money-webpay/{cc}/v1/webpayment`."""

    merchant_key: str
    currency: str
    order_id: str
    amount: int
    return_url: str
    cancel_url: str
    notif_url: str
    lang: str
    reference: str


class WebPaymentCreated(Answer):
    pay_token: Text
    payment_url: str
    notif_token: Text
    status: Text | None = None
    message: str = ""


class TransactionStatusQuery(msgspec.Struct):
    """`POST .../transactionstatus`: all three fields are required (else 400 code 23)."""

    order_id: str | None = None
    amount: int | None = None
    pay_token: str | None = None


class TransactionStatus(Answer):
    status: Text
    order_id: Text | None = None
    txnid: Text | None = None


class Notification(Answer):
    """What Orange POSTs to `notif_url`, only for SUCCESS or FAILED."""

    status: Text
    notif_token: Text
    txnid: Text | None = None


class GatewayError(msgspec.Struct):
    """Orange's API gateway error envelope: 401/40, 401/41, 401/42, 404/60..."""

    code: int | str
    message: str = ""
    description: str = ""


# -- Orange Cameroon "omcoreapis" ------------------------------------------------------------


class MpPay(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /omcoreapis/{version}/mp/pay` (and `cashin/pay`)."""

    notifUrl: str
    channelUserMsisdn: str
    amount: str
    subscriberMsisdn: str
    pin: str
    orderId: str
    description: str
    payToken: str


class MpData(Answer):
    payToken: Text | None = None
    txnid: Text | None = None
    status: Text | None = None
    inittxnstatus: Text | None = None
    inittxnmessage: str | None = None
    confirmtxnstatus: Text | None = None
    confirmtxnmessage: str | None = None
    amount: Decimal | None = None
    subscriberMsisdn: Text | None = None


class MpEnvelope(Answer):
    """Every omcoreapis answer: `{"message": "...", "data": {...}}`."""

    message: str = ""
    data: MpData | None = None


class MpNotification(Answer):
    """What Orange Cameroon POSTs to `notifUrl` on a final state."""

    payToken: Text
    status: Text
    message: str = ""


class Fault(msgspec.Struct):
    """The Cameroon API gateway's error envelope: `{"fault": {code, message, description}}`."""

    fault: GatewayError


# -- Orange Senegal "Orange Money API" (Sonatel) ---------------------------------------------


class SonatelParty(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """`partner` / `customer`: idType MSISDN (9 digits, no 221) or CODE (merchant code)."""

    idType: str
    id: str
    walletType: str | None = None
    encryptedPinCode: str | None = None
    otp: str | None = None


class SonatelMoney(msgspec.Struct):
    value: int | float | str
    unit: str = "XOF"


class SonatelTransaction(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """`POST /api/eWallet/v1/cashins`, `/payments`, `/payments/onestep`."""

    partner: SonatelParty
    customer: SonatelParty
    amount: SonatelMoney
    reference: str
    requestDate: str
    receiveNotification: bool
    method: str | None = None
    metadata: dict[str, str] | None = None


class SonatelTransactionResponse(Answer):
    """The answer of a transaction and of `GET .../transactions/{id}/status`."""

    status: Text
    transactionId: Text | None = None
    requestId: Text | None = None
    description: str | None = None
    reference: Text | None = None


class SonatelBalance(Answer):
    """`POST .../account/retailer/balance`: the value as a number or as text, exactly."""

    value: Decimal
    unit: Text = Text("XOF")


class SonatelPublicKey(Answer):
    """`GET /api/account/v1/publicKeys`: `key` is the base64 of the DER public key."""

    key: str
    keyId: Text | None = None
    keyType: str = "RSA"
    keySize: Text | None = None


class SonatelMerchantCallback(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/notification/v1/merchantcallback`: one callback URL per merchant code."""

    apiKey: str
    code: str
    name: str
    callbackUrl: str


class SonatelReportedMoney(Answer):
    """`amount` of a callback: `value` is any JSON value, decoded with `float_hook=Decimal`
    so a fractional number never passes through a float; the reader checks it is money."""

    value: Any = None
    unit: Text = Text("XOF")


class SonatelNotification(Answer):
    """What Sonatel POSTs to the registered callback URL; `apiKey` is echoed back."""

    status: Text
    transactionId: Text
    apiKey: Text | None = None
    reference: Text | None = None
    amount: SonatelReportedMoney | None = None
    type: str | None = None
    customer: dict[str, Any] | None = None
    partner: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Problem(msgspec.Struct):
    """Sonatel's RFC-7807-like error `{type, title, instance, status, code, detail, ...}`."""

    code: str | int | None = None
    detail: str | None = None
    title: str | None = None
    type: str | None = None
    instance: str | None = None
    status: str | int | None = None
    violations: list[Any] | None = None


def as_dict(raw: bytes) -> dict[str, Any] | None:
    """A JSON object body, or None."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None
