"""Transaction Status: `POST /mpesa/transactionstatus/v1/query`, its Result to ResultURL."""

from __future__ import annotations

import time
import uuid
from typing import Any

from litestar import Request, Response, post

from mmo_mpesa.client import RESULT_CODES
from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import OTHER_TOKEN, bad, text
from mmo_mpesa.simulator.state import Book, C2BPayment, MpesaSandbox, Sandbox, StkPush, Transfer


def _state(found: StkPush | Transfer | C2BPayment) -> str:
    if time.time() < found.done_at:
        return "Pending"
    if found.result_code == "0":
        return "Reversed" if getattr(found, "reversed", False) else "Completed"
    if found.result_code in ("QueueTimeOut", "1037", "1036", "1019"):
        return "Expired"
    return "Failed"


def status_parameters(book: Book, found: StkPush | Transfer | C2BPayment) -> list[dict[str, Any]]:
    state = _state(found)
    return [
        {"Key": "DebitPartyName", "Value": f"{book.settings.b2c_shortcode} - Sandbox Business"},
        {"Key": "CreditPartyName", "Value": f"{found.phone} - Test Customer"},
        {"Key": "TransactionStatus", "Value": state},
        {"Key": "Amount", "Value": str(found.amount)},
        {"Key": "ReceiptNo", "Value": found.receipt},
        {"Key": "ReasonType", "Value": found.result_code},
        {"Key": "TransactionReason", "Value": RESULT_CODES.get(found.result_code, state)},
    ]


async def transaction_status(
    sandbox: MpesaSandbox, book: Book, body: dict[str, Any]
) -> Response[Any]:
    result_url, _, ok = daraja.initiator_request(sandbox, book, body, "TransactionStatusQuery")
    daraja.own(sandbox, book, text(body, "PartyA", pattern=r"\d{5,12}"))
    text(body, "IdentifierType", pattern=r"[1-4]")
    text(body, "Remarks", pattern=r".{1,100}")
    text(body, "Occasion", pattern=r".{0,100}", optional=True)
    wanted = str(body.get("TransactionID") or "")
    original = str(body.get("OriginalConversationID") or "")
    if not wanted and not original:
        raise bad("TransactionID")
    conversation, originator = daraja.conversation_id(), str(uuid.uuid4())
    # only the app's own transactions: another app's are unknown to it
    found = book.transfers.get(original) or book.by_receipt(wanted)
    if not ok:
        payload = daraja.result("2001", originator, conversation, "")
    elif found is None:
        payload = daraja.result("R000002", originator, conversation, "")
    else:
        payload = daraja.result(
            "0", originator, conversation, daraja.receipt(), status_parameters(book, found)
        )
    sandbox.send(result_url, payload)
    return daraja.ack(originator, conversation)


@post("/mpesa/transactionstatus/v1/query", status_code=200)
async def status_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, OTHER_TOKEN, transaction_status)


ROUTES = [status_route]
