"""Account Balance: `POST /mpesa/accountbalance/v1/query`, its Result to ResultURL."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, post

from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import text
from mmo_mpesa.simulator.state import Book, MpesaSandbox, Sandbox


async def account_balance(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    result_url, _, ok = daraja.initiator_request(sandbox, book, body, "AccountBalance")
    daraja.own(sandbox, book, text(body, "PartyA", pattern=r"\d{5,7}"))
    text(body, "IdentifierType", pattern=r"[1-4]")
    conversation, originator = daraja.conversation_id(), str(uuid.uuid4())
    if not ok:
        payload = daraja.result("2001", originator, conversation, "")
    else:
        utility = book.utility()
        accounts = "&".join(
            (
                "Working Account|KES|0.00|0.00|0.00|0.00",
                f"Utility Account|KES|{utility:.2f}|{utility:.2f}|0.00|0.00",
                "Charges Paid Account|KES|0.00|0.00|0.00|0.00",
            )
        )
        parameters = [
            {"Key": "AccountBalance", "Value": accounts},
            {"Key": "BOCompletedTime", "Value": daraja.now_stamp()},
        ]
        payload = daraja.result("0", originator, conversation, "SGF0000000", parameters)
        payload["Result"]["ResultType"] = "0"
        payload["Result"]["ResultCode"] = "0"
    sandbox.send(result_url, payload)
    return daraja.ack(originator, conversation)


@post("/mpesa/accountbalance/v1/query", status_code=200)
async def balance_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, daraja.b2c_token(request), account_balance)


ROUTES = [balance_route]
