"""Orange Money payloads, named as Orange names them (one section per API family)."""

from __future__ import annotations

from typing import Any

import msgspec

# -- OAuth (both families) ------------------------------------------------------------------


class TokenResponse(msgspec.Struct):
    access_token: str
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


class WebPaymentCreated(msgspec.Struct):
    status: int
    message: str
    pay_token: str
    payment_url: str
    notif_token: str


class TransactionStatusQuery(msgspec.Struct):
    """`POST .../transactionstatus`: all three fields are required (else 400 code 23)."""

    order_id: str | None = None
    amount: int | None = None
    pay_token: str | None = None


class TransactionStatus(msgspec.Struct):
    status: str
    order_id: str | None = None
    txnid: str | None = None


class Notification(msgspec.Struct):
    """What Orange POSTs to `notif_url`, only for SUCCESS or FAILED."""

    status: str
    notif_token: str
    txnid: str | None = None


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


class MpData(msgspec.Struct):
    payToken: str | None = None
    txnid: str | None = None
    status: str | None = None
    inittxnstatus: str | None = None
    inittxnmessage: str | None = None
    confirmtxnstatus: str | None = None
    confirmtxnmessage: str | None = None
    amount: int | str | None = None
    subscriberMsisdn: str | None = None


class MpEnvelope(msgspec.Struct):
    """Every omcoreapis answer: `{"message": "...", "data": {...}}`."""

    message: str = ""
    data: MpData | None = None


class MpNotification(msgspec.Struct):
    """What Orange Cameroon POSTs to `notifUrl` on a final state."""

    payToken: str
    status: str
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


class SonatelTransactionResponse(msgspec.Struct):
    """The answer of a transaction and of `GET .../transactions/{id}/status`."""

    status: str
    transactionId: str | None = None
    requestId: str | None = None
    description: str | None = None
    reference: str | None = None


class SonatelPublicKey(msgspec.Struct):
    """`GET /api/account/v1/publicKeys`: `key` is the base64 of the DER public key."""

    key: str
    keyId: str | None = None
    keyType: str = "RSA"
    keySize: int | None = None


class SonatelMerchantCallback(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/notification/v1/merchantcallback`: one callback URL per merchant code."""

    apiKey: str
    code: str
    name: str
    callbackUrl: str


class SonatelReportedMoney(msgspec.Struct):
    """`amount` of a callback: `value` is any JSON value, decoded with `float_hook=Decimal`
    so a fractional number never passes through a float; the reader checks it is money."""

    value: Any = None
    unit: str = "XOF"


class SonatelNotification(msgspec.Struct):
    """What Sonatel POSTs to the registered callback URL; `apiKey` is echoed back."""

    status: str
    transactionId: str
    apiKey: str | None = None
    reference: str | None = None
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
