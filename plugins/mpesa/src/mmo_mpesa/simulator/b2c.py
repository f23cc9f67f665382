"""B2C v3: `POST /mpesa/b2c/v3/paymentrequest`, its Result to ResultURL (or the timeout
to QueueTimeOutURL)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from litestar import Request, Response, post
from mmo_core.simulation import Scenario, scenario

from mmo_mpesa.client import NAIROBI
from mmo_mpesa.simulator import daraja
from mmo_mpesa.simulator.daraja import WALLET, Invalid, bad, text
from mmo_mpesa.simulator.state import Book, MpesaSandbox, Sandbox, Transfer

B2C_COMMANDS = ("SalaryPayment", "BusinessPayment", "PromotionPayment")
# The shared test numbers in Daraja's B2C ResultCodes.
B2C_OUTCOMES = {
    "insufficient_funds": "1",
    "cancelled": "2040",
    "wrong_pin": "2001",
}


def _outcome(
    sandbox: MpesaSandbox, book: Book, body: dict[str, Any], amount: int, case: Scenario
) -> str:
    if not sandbox.credential_ok(book, body, "InitiatorName"):
        return "2001"
    if amount < 10:
        return "2"
    if case == "unreachable":
        return "QueueTimeOut"
    return B2C_OUTCOMES.get(case, "0")


def _timed_out(transfer: Transfer) -> dict[str, Any]:
    return {
        "Result": {
            "ResultType": 1,
            "ResultCode": 1,
            "ResultDesc": "The service request has timed out.",
            "OriginatorConversationID": transfer.originator_id,
            "ConversationID": transfer.conversation_id,
        }
    }


def _result(book: Book, transfer: Transfer) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"Key": "TransactionAmount", "Value": transfer.amount},
        {"Key": "TransactionReceipt", "Value": transfer.receipt},
        {"Key": "ReceiverPartyPublicName", "Value": f"{transfer.phone} - Test Customer"},
        {
            "Key": "TransactionCompletedDateTime",
            "Value": f"{dt.datetime.now(tz=NAIROBI):%d.%m.%Y %H:%M:%S}",
        },
        {"Key": "B2CUtilityAccountAvailableFunds", "Value": daraja.number(book.utility())},
        {"Key": "B2CWorkingAccountAvailableFunds", "Value": daraja.number(0)},
        {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
        {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": daraja.number(0)},
    ]
    return daraja.result(  # each parameter is a {"Key", "Value"} object
        transfer.result_code,
        transfer.originator_id,
        transfer.conversation_id,
        transfer.receipt,
        parameters,
    )


async def b2c(sandbox: MpesaSandbox, book: Book, body: dict[str, Any]) -> Response[Any]:
    originator = text(body, "OriginatorConversationID")
    text(body, "InitiatorName")
    text(body, "SecurityCredential")
    if body.get("CommandID") not in B2C_COMMANDS:
        raise bad("CommandID")
    amount = daraja.amount(body)
    daraja.own(sandbox, book, text(body, "PartyA", pattern=r"\d{5,7}"))
    phone = text(body, "PartyB", pattern=WALLET.pattern)
    text(body, "Remarks", pattern=r".{2,100}")
    text(body, "Occassion", pattern=r".{1,100}", optional=True)
    timeout_url = daraja.url(body, "QueueTimeOutURL")
    result_url = daraja.url(body, "ResultURL")
    if originator in book.transfers:
        raise Invalid("500.002.1001", "Duplicate OriginatorConversationID.")
    case = scenario(phone)
    code = _outcome(sandbox, book, body, amount, case)
    transfer = Transfer(
        originator_id=originator,
        conversation_id=daraja.conversation_id(),
        phone=phone,
        amount=amount,
        result_code=code,
        done_at=time.time() + sandbox.delay,
    )
    sandbox.add_transfer(book, transfer)
    sandbox.record(
        book,
        originator,
        product="b2c",
        conversation_id=transfer.conversation_id,
        amount=amount,
        msisdn=phone,
        result_code=code,
        receipt=transfer.receipt,
        status={"0": "completed", "QueueTimeOut": "expired"}.get(code, "failed"),
    )
    if code == "QueueTimeOut":
        sandbox.send(timeout_url, _timed_out(transfer))
    else:
        sandbox.send(result_url, _result(book, transfer), case=case)
    return daraja.ack(originator, transfer.conversation_id)


@post("/mpesa/b2c/v3/paymentrequest", status_code=200)
async def b2c_route(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await daraja.product(sandbox, request, daraja.b2c_token(request), b2c)


ROUTES = [b2c_route]
