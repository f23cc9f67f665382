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


def as_dict(raw: bytes) -> dict[str, Any] | None:
    """A JSON object body, or None."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None
