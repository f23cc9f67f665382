"""Disbursement: `POST /standard/v1|v2/disbursements/`, `/standard/v3/disbursements`
(signed, OAEP PIN), and `GET /standard/v1|v2|v3/disbursements/{id}`."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_airtel.simulator.envelope import amount_of, enquiry_answer, ok, refuse, router
from mmo_airtel.simulator.state import AirtelSandbox, Call, Sandbox, airtel_id
from mmo_airtel.wire import MSISDN_LENGTHS

# v2 (and v3, "as v2"): `reference` is 4 to 64 letters or digits (notes section 7)
_V2_REFERENCE = re.compile(r"[A-Za-z0-9]{4,64}")

DISBURSEMENT_DECLINES: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("DP00900001007", "Insufficient funds"),
    "cancelled": ("DP00900001013", "Transaction refused"),
    "unreachable": ("DP00900001005", "Transaction failed: payee unreachable"),
}


class _Payee(msgspec.Struct):
    msisdn: str | int
    currency: str | None = None
    name: str | None = None
    wallet_type: str | None = None


class _Transaction(msgspec.Struct):
    amount: Decimal
    id: str | int
    type: str | None = None


class _DisbursementRequest(msgspec.Struct):
    payee: _Payee
    reference: str
    pin: str
    transaction: _Transaction


def _refusal(
    sandbox: AirtelSandbox, body: _DisbursementRequest, version: str, call: Call
) -> Response[Any] | None:
    """The PIN, the transaction type, the reference and the payee's number, in Airtel's
    order."""
    pin = sandbox.decrypt_pin(call.settings, body.pin, version)
    if pin is None:
        return router("ROUTER116", "Incorrect encrypted pin: re-check the encryption")
    msisdn = str(body.payee.msisdn)
    if scenario(msisdn) == "wrong_pin" or pin != call.settings.pin:
        return router("ROUTER115", "Incorrect PIN")
    if version != "v1" and body.transaction.type not in ("B2C", "B2B"):
        return refuse("Invalid transaction type", "ESB000008", "DP00900001005")
    if version != "v1" and not _V2_REFERENCE.fullmatch(body.reference):
        return refuse(
            "Field validation failed: reference must be 4 to 64 alphanumeric characters",
            "ESB000008",
        )
    if not body.reference.strip() or not str(body.transaction.id).strip():
        return refuse("Field validation failed: reference, transaction.id", "ESB000008")
    country = call.country
    if not sandbox.msisdn_ok(country, msisdn):
        lengths = "/".join(str(n) for n in MSISDN_LENGTHS[country])
        return refuse(
            f"Invalid Msisdn Length. Msisdn Length should be {lengths}",
            "ESB000033",
            "DP00900001012",
        )
    return None


def _record(
    sandbox: AirtelSandbox, body: _DisbursementRequest, call: Call, amount: Decimal
) -> dict[str, Any]:
    msisdn = str(body.payee.msisdn)
    currency = call.currency
    record: dict[str, Any] = {
        "id": str(body.transaction.id),
        "account": call.account,
        "kind": "disbursement",
        "amount": amount,
        "currency": currency,
        "msisdn": msisdn,
        "reference": body.reference,
        "created_at": int(time.time() * 1000),
        "airtel_money_id": airtel_id("CI"),
        "reference_id": airtel_id("CI"),
    }
    case = scenario(msisdn)
    if case in DISBURSEMENT_DECLINES:
        code, text = DISBURSEMENT_DECLINES[case]
        record.update(status="TF", response_code=code, message=text)
    else:
        sandbox.move(call.account, currency, "DISB", -amount)
        record.update(
            status="TS",
            response_code="DP00900001001",
            message=f"You have sent {currency} {amount} to {msisdn}. TID: {record['reference_id']}",
        )
    return record


async def disburse(request: Request, sandbox: AirtelSandbox, version: str) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    raw = await request.body()
    if version == "v3" and (refused := sandbox.check_signature(request, raw, "DP00900001016")):
        return refused
    try:
        body = msgspec.json.decode(raw, type=_DisbursementRequest)
    except msgspec.MsgspecError:
        return router("ROUTER003", "Missing header/body params")
    refused = _refusal(sandbox, body, version, checked)
    if refused is not None:
        return refused
    amount = amount_of(body.transaction.amount)
    if amount is None:
        return refuse("Invalid amount", "ESB000008", "DP00900001004")
    tx_id = str(body.transaction.id)
    if sandbox.find(checked.account, tx_id) is not None:
        return refuse("Duplicate transaction id", "ESB000041", "DP00900001017")
    if sandbox.balance_of(checked.account, checked.currency) < amount:
        return refuse("Insufficient funds", "ESB000011", "DP00900001007")
    record = _record(sandbox, body, checked, amount)
    sandbox.add(record)
    sandbox.record(
        record,
        kind="disbursement",
        msisdn=sandbox.international(checked.country, record["msisdn"]),
        amount=str(amount),
        currency=checked.currency,
        reference=record["reference"],
        status=record["status"],
        response_code=record["response_code"],
        airtel_money_id=record["airtel_money_id"],
        signed=version == "v3",
    )
    sandbox.send_callback(request.headers.get("x-callback-url"), record)
    await sandbox.hang()
    data = {
        "transaction": {
            "reference_id": record["reference_id"],
            "airtel_money_id": record["airtel_money_id"],
            "id": tx_id,
            "status": "TIP",
        }
    }
    return ok(data, "DP00900001006", "Transaction is in process")


@post("/standard/v1/disbursements/", status_code=200)
async def disburse_v1(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await disburse(request, sandbox, "v1")


@post("/standard/v2/disbursements/", status_code=200)
async def disburse_v2(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await disburse(request, sandbox, "v2")


@post("/standard/v3/disbursements", status_code=200)
async def disburse_v3(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await disburse(request, sandbox, "v3")


@get(
    [
        "/standard/v1/disbursements/{transaction_id:str}",
        "/standard/v2/disbursements/{transaction_id:str}",
        "/standard/v3/disbursements/{transaction_id:str}",
    ]
)
async def disbursement_enquiry(
    request: Request, transaction_id: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    record = sandbox.find(checked.account, transaction_id)
    if record is None or record["kind"] != "disbursement":
        return refuse("Transaction not found", "ESB000045", "DP00900001015", code="404")
    return enquiry_answer(record)


ROUTES = [disburse_v1, disburse_v2, disburse_v3, disbursement_enquiry]
