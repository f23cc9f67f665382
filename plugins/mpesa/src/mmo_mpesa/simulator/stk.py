"""M-Pesa Express: `POST /mpesa/stkpush/v1/processrequest` (the STK push) and
`POST /mpesa/stkpushquery/v1/query`, and the push's callback to CallBackURL."""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from typing import Any

from litestar import Request, Response, post
from mmo_core.simulation import scenario

from mmo_mpesa.client import NAIROBI, RESULT_CODES, password
from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import STK_TOKEN, WALLET, Invalid, bad, text
from mmo_mpesa.simulator.state import Book, MpesaSandbox, Sandbox, StkPush

SANDBOX_SHORTCODE = "174379"
STK_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
STK_ACCEPTED = "Success. Request accepted for processing"
# The shared test numbers in Daraja's ResultCodes.
STK_OUTCOMES = {
    "insufficient_funds": "1",
    "cancelled": "1032",
    "unreachable": "1037",
    "wrong_pin": "2001",
}
# M-Pesa's own test numbers for the other prompt timeouts (last four digits)
MPESA_OUTCOMES = {"1036": "1036", "1019": "1019"}
LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"


def _credentials(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> str:
    """The BusinessShortCode, when it is the app's and the Password is built with its
    passkey: another app's shortcode is refused as an invalid token, a shortcode no app
    has as "Merchant does not exist" (the public 174379 is every app's that has no other)."""
    shortcode = daraja.own(sandbox, book, text(body, "BusinessShortCode", pattern=r"\d{5,7}"))
    stamp = daraja.timestamp(body)
    secret = text(body, "Password")
    if shortcode not in book.shortcodes and shortcode != SANDBOX_SHORTCODE:
        raise Invalid("500.001.1001", "Merchant does not exist")
    if secret != password(shortcode, book.settings.passkey, stamp):
        raise Invalid("500.001.1001", "Wrong credentials")
    return shortcode


def _fields(body: dict[str, Any]) -> tuple[int, str, str, str]:
    """The push's fields, checked in Daraja's order: (amount, phone, callback, reference)."""
    text(body, "BusinessShortCode", pattern=r"\d{5,7}")
    daraja.timestamp(body)
    if body.get("TransactionType") not in STK_TYPES:
        raise bad("TransactionType")
    amount = daraja.amount(body)
    text(body, "PartyA", pattern=WALLET.pattern)
    phone = text(body, "PhoneNumber", pattern=WALLET.pattern)
    text(body, "PartyB", pattern=r"\d{5,7}")
    callback = daraja.url(body, "CallBackURL")
    # letters and digits, at most 12 (shared/providers/mpesa.md)
    reference = text(body, "AccountReference", pattern=r"[A-Za-z0-9]{1,12}")
    text(body, "TransactionDesc", pattern=r".{0,13}", optional=True)
    return amount, phone, callback, reference


def _new_push(phone: str, amount: int, reference: str, code: str, done_at: float) -> StkPush:
    hexes = [uuid.uuid4().hex for _ in range(4)]
    return StkPush(
        merchant_request_id=f"{hexes[0][:4]}-{hexes[1][:4]}-{hexes[2][:4]}-{hexes[3][:20]}",
        checkout_request_id=f"ws_CO_{dt.datetime.now(tz=NAIROBI):%d%m%Y%H%M%S}"
        f"{secrets.randbelow(1000):03d}{phone[3:]}",
        phone=phone,
        amount=amount,
        reference=reference,
        result_code=code,
        done_at=done_at,
        receipt=daraja.receipt() if code == "0" else "",
    )


async def stk_push(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    amount, phone, callback, reference = _fields(body)
    _credentials(sandbox, book, body)
    now = time.time()
    if sandbox.in_flight(phone, now):
        raise Invalid("500.001.1001", LOCKED)
    case = scenario(phone)
    code = MPESA_OUTCOMES.get(phone[-4:]) or STK_OUTCOMES.get(case, "0")
    push = _new_push(phone, amount, reference, code, now + sandbox.delay)
    sandbox.add_push(book, push)
    sandbox.record(
        book,
        push.checkout_request_id,
        product="stk",
        amount=amount,
        msisdn=phone,
        reference=reference,
        result_code=code,
        receipt=push.receipt,
        status="completed" if code == "0" else "failed",
    )
    sandbox.send(callback, stk_callback(push), case=case)
    return Response(
        {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": STK_ACCEPTED,
            "CustomerMessage": STK_ACCEPTED,
        }
    )


def stk_callback(push: StkPush) -> dict[str, Any]:
    callback: dict[str, Any] = {
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": int(push.result_code),
        "ResultDesc": RESULT_CODES[push.result_code].rstrip("."),
    }
    if push.result_code == "0":
        callback["ResultDesc"] = RESULT_CODES["0"]
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": daraja.number(push.amount)},
                {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(daraja.now_stamp())},
                {"Name": "PhoneNumber", "Value": int(push.phone)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


async def stk_query(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    _credentials(sandbox, book, body)
    checkout = text(body, "CheckoutRequestID")
    # only the app's own pushes: another app's CheckoutRequestID is unknown to it
    push = book.pushes.get(checkout)
    if push is None:
        raise Invalid("500.001.1001", "This transaction does not exist")
    if time.time() < push.done_at:
        raise Invalid("500.001.1001", "The transaction is being processed")
    return Response(
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": push.result_code,
            "ResultDesc": RESULT_CODES[push.result_code].rstrip("."),
        }
    )


@post("/mpesa/stkpush/v1/processrequest", status_code=200)
async def stk_push_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, STK_TOKEN, stk_push)


@post("/mpesa/stkpushquery/v1/query", status_code=200)
async def stk_query_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, STK_TOKEN, stk_query)


ROUTES = [stk_push_route, stk_query_route]
