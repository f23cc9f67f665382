"""Reversal: `POST /mpesa/reversal/v1/request` of an STK push, its Result to ResultURL."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, post

from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import OTHER_TOKEN, bad, text
from mmo_mpesa.simulator.state import Book, MpesaSandbox, Sandbox, StkPush


def _reversed(book: Book, push: StkPush, amount: int, transaction: str) -> list[dict[str, Any]]:
    """Reverse the push: the Result's parameters."""
    push.reversed = True
    return [
        {"Key": "Amount", "Value": daraja.number(amount)},
        {"Key": "OriginalTransactionID", "Value": transaction},
        {"Key": "Charge", "Value": daraja.number(0)},
        {"Key": "CreditPartyPublicName", "Value": f"{push.phone} - Test Customer"},
        {"Key": "DebitPartyPublicName", "Value": f"{book.settings.shortcode} - Sandbox"},
    ]


async def reversal(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    result_url, _, ok = daraja.initiator_request(sandbox, book, body, "TransactionReversal")
    transaction = text(body, "TransactionID")
    amount = daraja.amount(body)
    daraja.own(sandbox, book, text(body, "ReceiverParty", pattern=r"\d{5,7}"))
    if str(body.get("RecieverIdentifierType")) != "11":
        raise bad("RecieverIdentifierType")
    text(body, "Remarks", pattern=r".{2,100}")
    conversation, originator = daraja.conversation_id(), str(uuid.uuid4())
    push = book.push_receipts.get(transaction)  # the app's own pushes only
    reversal_id = daraja.receipt()
    if not ok:
        payload = daraja.result("2001", originator, conversation, "")
    elif push is None:
        payload = daraja.result("R000002", originator, conversation, reversal_id)
    elif push.reversed:
        payload = daraja.result("R000001", originator, conversation, reversal_id)
    elif amount > push.amount:
        payload = daraja.result("3", originator, conversation, reversal_id)
    else:
        parameters = _reversed(book, push, amount, transaction)
        sandbox.record(book, push.checkout_request_id, status="reversed", reversal=reversal_id)
        payload = daraja.result("0", originator, conversation, reversal_id, parameters)
    sandbox.send(result_url, payload)
    return daraja.ack(originator, conversation)


@post("/mpesa/reversal/v1/request", status_code=200)
async def reversal_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, OTHER_TOKEN, reversal)


ROUTES = [reversal_route]
