"""C2B: `POST /mpesa/c2b/v1|v2/registerurl` and `/simulate`; the validation request and
the confirmation to the registered URLs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from decimal import Decimal
from typing import Any

import httpx
from litestar import Request, Response, post

from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import ACCEPTED, OTHER_TOKEN, WALLET, Invalid, bad, text
from mmo_mpesa.simulator.state import Book, C2BPayment, MpesaSandbox, Sandbox
from mmo_mpesa.simulator.stk import STK_TYPES

BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "exe", "cmd", "sql", "query")


def _registrable(body: dict[str, Any], name: str) -> str:
    found = daraja.url(body, name)
    word = next((w for w in BANNED_URL_WORDS if w in found.lower()), None)
    if word is not None:
        raise Invalid(
            "400.002.02", f"Bad Request - Invalid {name} - URL has the word {word.upper()}"
        )
    return found


async def register_url(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    """URLs are registered per shortcode, and only by the app the shortcode is linked to."""
    shortcode = daraja.own(sandbox, book, text(body, "ShortCode", pattern=r"\d{5,7}"))
    if body.get("ResponseType") not in ("Completed", "Cancelled"):
        raise bad("ResponseType")
    urls = {name: _registrable(body, name) for name in ("ConfirmationURL", "ValidationURL")}
    book.registered[shortcode] = {**urls, "ResponseType": body["ResponseType"]}
    return Response(
        {
            "OriginatorCoversationID": daraja.request_id(),
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        }
    )


def _transaction(
    body: dict[str, Any], shortcode: str, amount: int, phone: str, version: str
) -> dict[str, Any]:
    masked = (
        hashlib.sha256(phone.encode()).hexdigest()
        if version == "v1"
        else f"{phone[:4]} ***** {phone[-3:]}"
    )
    return {
        "TransactionType": "Pay Bill"
        if body["CommandID"] == "CustomerPayBillOnline"
        else "Buy Goods",
        "TransID": daraja.receipt(),
        "TransTime": daraja.now_stamp(),
        "TransAmount": f"{amount:.2f}",
        "BusinessShortCode": shortcode,
        "BillRefNumber": text(body, "BillRefNumber", pattern=r".{0,20}", optional=True),
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": masked,
        "FirstName": "Test",
        "MiddleName": "",
        "LastName": "Customer",
    }


async def c2b_simulate(
    sandbox: MpesaSandbox, book: Book, body: dict[str, Any], version: str
) -> Response[Any]:
    shortcode = daraja.own(sandbox, book, text(body, "ShortCode", pattern=r"\d{5,7}"))
    if body.get("CommandID") not in STK_TYPES:
        raise bad("CommandID")
    amount = daraja.amount(body)
    phone = text(body, "Msisdn", pattern=WALLET.pattern)
    text(body, "BillRefNumber", pattern=r".{0,20}", optional=True)
    urls = book.registered.get(shortcode)
    if urls is None:
        raise Invalid("500.003.1001", "No URLs registered for this ShortCode")
    transaction = _transaction(body, shortcode, amount, phone, version)
    sandbox.spawn(c2b_deliver(sandbox, book, transaction, urls, phone))
    return Response(
        {
            "OriginatorCoversationID": daraja.request_id(),
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED,
        }
    )


async def _validated(
    sandbox: MpesaSandbox,
    http: httpx.AsyncClient,
    transaction: dict[str, Any],
    urls: dict[str, str],
) -> bool:
    """Whether the payment is accepted: the validation URL's answer when validation is on
    and it answers, else the registered ResponseType."""
    accepted = urls["ResponseType"] == "Completed"
    if sandbox.settings.simulator_validation:
        try:
            answer = await http.post(urls["ValidationURL"], json=transaction)
            accepted = str(answer.json().get("ResultCode")) == "0"
        except (httpx.HTTPError, ValueError, AttributeError):
            pass  # unreachable or unreadable: the registered ResponseType applies
    return accepted


async def c2b_deliver(
    sandbox: MpesaSandbox,
    book: Book,
    transaction: dict[str, Any],
    urls: dict[str, str],
    phone: str,
) -> None:
    """Validation first (when enabled), then the confirmation unless it was refused."""
    await asyncio.sleep(sandbox.delay)
    async with httpx.AsyncClient(timeout=8.0) as http:
        accepted = await _validated(sandbox, http, transaction, urls)
        sandbox.record(
            book,
            transaction["TransID"],
            product="c2b",
            amount=transaction["TransAmount"],
            msisdn=phone,
            reference=transaction["BillRefNumber"],
            status="completed" if accepted else "rejected",
        )
        if not accepted:
            return
        book.c2b_receipts[transaction["TransID"]] = C2BPayment(
            phone=phone,
            amount=int(Decimal(transaction["TransAmount"])),
            receipt=transaction["TransID"],
            reference=transaction["BillRefNumber"],
        )
        confirmed = dict(transaction, OrgAccountBalance=f"{book.utility():.2f}")
        with contextlib.suppress(httpx.HTTPError):
            response = await http.post(urls["ConfirmationURL"], json=confirmed)
            sandbox.callbacks.record(urls["ConfirmationURL"], response.status_code)


@post(["/mpesa/c2b/v1/registerurl", "/mpesa/c2b/v2/registerurl"], status_code=200)
async def register_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, OTHER_TOKEN, register_url)


async def _simulate_v1(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    return await c2b_simulate(sandbox, book, body, "v1")


async def _simulate_v2(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    return await c2b_simulate(sandbox, book, body, "v2")


@post(["/mpesa/c2b/v1/simulate", "/mpesa/c2b/v2/simulate"], status_code=200)
async def simulate_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    handler = _simulate_v1 if "/v1/" in request.url.path else _simulate_v2
    return await daraja.product(sandbox, request, OTHER_TOKEN, handler)


ROUTES = [register_route, simulate_route]
