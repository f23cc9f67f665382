"""Collection: the USSD push (`POST /merchant/v1/payments/`, signed v2), its enquiry
(`GET /standard/v1/payments/{id}`) and refunds (`POST /standard/v1|v2/payments/refund`)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_airtel.simulator.envelope import amount_of, enquiry_answer, ok, refuse, router, status
from mmo_airtel.simulator.state import AirtelSandbox, Call, Sandbox, airtel_id

COLLECTION_DECLINES: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("DP00800001007", "Not enough balance"),
    "cancelled": ("DP00800001008", "Transaction refused by the payer"),
    "unreachable": ("DP00800001024", "Transaction timed out"),
    "wrong_pin": ("DP00800001002", "Incorrect PIN entered"),
}


class _Subscriber(msgspec.Struct):
    msisdn: str | int
    country: str | None = None
    currency: str | None = None


class _PushTransaction(msgspec.Struct):
    amount: Decimal
    id: str | int
    country: str | None = None
    currency: str | None = None


class _PushRequest(msgspec.Struct):
    """What the simulator reads of a push. `msisdn` may come as a JSON number (pyairtel
    0.1.1 sends `int("255...")`): Airtel reads its digits and answers a number with the
    country code by its length (ESB000033, notes section 13.2), not a field error."""

    reference: str
    subscriber: _Subscriber
    transaction: _PushTransaction


def _record(sandbox: AirtelSandbox, body: _PushRequest, call: Call, amount: Any) -> dict[str, Any]:
    msisdn = str(body.subscriber.msisdn)
    currency = call.currency
    record: dict[str, Any] = {
        "id": str(body.transaction.id),
        "account": call.account,
        "kind": "collection",
        "amount": amount,
        "currency": currency,
        "msisdn": msisdn,
        "reference": body.reference,
        "created_at": int(time.time() * 1000),
        "airtel_money_id": airtel_id("MP"),
    }
    case = scenario(msisdn)
    if case in COLLECTION_DECLINES:
        code, text = COLLECTION_DECLINES[case]
        record.update(status="TF", response_code=code, message=text)
    else:
        record.update(
            status="TS",
            response_code="DP00800001001",
            message=f"Paid {currency} {amount} to SIMULATED MERCHANT, "
            f"Trans ID {record['airtel_money_id']}.",
        )
        sandbox.move(call.account, currency, "COLL", amount)
    return record


async def collect(request: Request, sandbox: AirtelSandbox, signed: bool) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    country = checked.country
    raw = await request.body()
    if signed and (refused := sandbox.check_signature(request, raw, "DP00800001026")):
        return refused
    try:
        body = msgspec.json.decode(raw, type=_PushRequest)
    except msgspec.MsgspecError as exc:
        return refuse(f"Field validation failed: {exc}", "ESB000008")
    if not body.reference.strip() or not str(body.transaction.id).strip():
        # both mandatory (notes section 4); Airtel documents no length limit for either
        return refuse("Field validation failed: reference, transaction.id", "ESB000008")
    if not sandbox.msisdn_ok(country, str(body.subscriber.msisdn)):
        return refuse("Invalid MSISDN Length", "ESB000033", "DP00800001005")
    amount = amount_of(body.transaction.amount)
    if amount is None:
        return refuse("Invalid amount", "ESB000008", "DP00800001004")
    tx_id = str(body.transaction.id)
    if sandbox.find(checked.account, tx_id) is not None:
        return refuse("External Transaction ID already exists", "ESB000041")
    record = _record(sandbox, body, checked, amount)
    sandbox.add(record)
    sandbox.record(
        record,
        kind="collection",
        msisdn=sandbox.international(checked.country, record["msisdn"]),
        amount=str(amount),
        currency=checked.currency,
        status=record["status"],
        response_code=record["response_code"],
        airtel_money_id=record["airtel_money_id"],
        reference=record["reference"],
        signed=signed,
    )
    sandbox.send_callback(request.headers.get("x-callback-url"), record)
    await sandbox.hang()
    return ok({"transaction": {"id": tx_id, "status": "SUCCESS"}}, "DP00800001006")


@post("/merchant/v1/payments/", status_code=200)
async def push(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await collect(request, sandbox, signed=False)


@post("/merchant/v2/payments/", status_code=200)
async def push_v2(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await collect(request, sandbox, signed=True)


@get("/standard/v1/payments/{transaction_id:str}")
async def enquiry(
    request: Request, transaction_id: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    record = sandbox.find(checked.account, transaction_id)
    if record is None or record["kind"] != "collection":
        return refuse(
            "No transaction found with provided id", "ESB000045", "DP00800001025", code="404"
        )
    return enquiry_answer(record)


async def do_refund(request: Request, sandbox: AirtelSandbox, signed: bool) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    raw = await request.body()
    if signed and (refused := sandbox.check_signature(request, raw, "DP00800001026")):
        return refused
    try:
        body = json.loads(raw)
        airtel_money_id = str(body["transaction"]["airtel_money_id"])
    except (ValueError, KeyError, TypeError):
        return router("ROUTER003", "Missing header/body params")
    record = sandbox.find_by_airtel_id(checked.account, airtel_money_id)
    if (
        record is None
        or record["kind"] != "collection"
        or record["status"] not in ("TS", "REFUNDED")
    ):
        return refuse("No transaction found with provided id", "ESB000045", "DP00800001025")
    if record["status"] == "REFUNDED":
        return refuse("Transaction already refunded", "ESB000011", "DP00800001009")
    record["status"] = "REFUNDED"
    sandbox.move(record["account"], record["currency"], "COLL", -record["amount"])
    sandbox.record(record, status="REFUNDED")
    return Response(
        {
            "data": {"transaction": {"airtel_money_id": airtel_money_id, "status": "SUCCESS"}},
            "status": status(),
        }
    )


@post("/standard/v1/payments/refund", status_code=200)
async def refund(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await do_refund(request, sandbox, signed=False)


@post("/standard/v2/payments/refund", status_code=200)
async def refund_v2(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await do_refund(request, sandbox, signed=True)


ROUTES = [push, push_v2, enquiry, refund, refund_v2]
