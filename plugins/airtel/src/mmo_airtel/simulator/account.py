"""Account: balances (`/standard/v1|v2/users/balance`), the transaction list
(`/merchant/v1/transactions`), the KYC enquiry (`/standard/v1/users/{msisdn}`) and the
PIN encryption key (`/v1/rsa/encryption-keys`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter
from mmo_core.simulation import scenario

from mmo_airtel.simulator.envelope import json_amount, ok, refuse, status
from mmo_airtel.simulator.state import Sandbox
from mmo_airtel.wire import WALLET_TYPES


@get("/standard/v1/users/balance")
async def balance(request: Request, sandbox: Sandbox) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    currency = checked.currency
    return ok(
        {
            "balance": f"{sandbox.balance_of(checked.account, currency):.2f}",
            "currency": currency,
            "account_status": "ACTIVE",
        }
    )


@get("/standard/v2/users/balance")
async def balance_v2(
    request: Request,
    sandbox: Sandbox,
    wallet: Annotated[str | None, QueryParameter(name="type")] = None,
) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    currency = checked.currency
    if wallet not in WALLET_TYPES:
        return refuse(f"Invalid type: expected one of {', '.join(WALLET_TYPES)}", "ESB000008")
    available = sandbox.wallet_of(checked.account, currency, wallet)
    return ok({"balance": f"{available:.2f}", "currency": currency, "account_status": "ACTIVE"})


@get("/merchant/v1/transactions")
async def transaction_list(
    request: Request,
    sandbox: Sandbox,
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
    limit: Annotated[str | None, QueryParameter(name="limit")] = None,
    offset: Annotated[str | None, QueryParameter(name="offset")] = None,
) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    try:
        low, high = int(start or 0), int(end or 2**62)
        size, skip = int(limit or 20), int(offset or 0)
    except ValueError:
        return refuse("Field validation failed: from, to, limit, offset", "ESB000008")
    if size < 1 or skip < 0:
        return refuse("Field validation failed: limit, offset", "ESB000008")
    records, first, last = sandbox.listed(checked.account, checked.currency, low, high)
    page = records[min(first + skip, last) : min(first + skip + size, last)]
    return ok({"count": last - first, "transactions": [summary_entry(r) for r in page]})


def summary_entry(record: dict[str, Any]) -> dict[str, Any]:
    party = {"currency": record["currency"], "msisdn": record["msisdn"], "name": "JOHN DOE"}
    merchant = {"currency": record["currency"], "msisdn": "", "name": "SIMULATED MERCHANT"}
    collection = record["kind"] == "collection"
    return {
        "charges": {"service": 0},
        "payee": merchant if collection else party,
        "payer": party if collection else merchant,
        "service": {"type": "MERCHANT_PAYMENT" if collection else "B2C"},
        "transaction": {
            "airtel_money_id": record["airtel_money_id"],
            "amount": json_amount(record["amount"]),
            "created_at": record["created_at"],
            "id": record["id"],
            "reference_number": record["reference"],
            "status": record["status"],
        },
    }


@get("/standard/v1/users/{msisdn:str}")
async def user(request: Request, msisdn: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    if not sandbox.msisdn_ok(checked.country, msisdn):
        return refuse("Invalid MSISDN Length", "ESB000033", "DP02200000000")
    if msisdn.endswith("0404"):
        return refuse("User not found", "ESB000011", "DP02200000002", code="200")
    data = {
        "first_name": "JOHN",
        "last_name": "DOE",
        "grade": "SUBS",
        "is_barred": scenario(msisdn) == "cancelled",
        "is_pin_set": True,
        "msisdn": msisdn,
        "reg_status": "SUBS",
        "registered_id": "*****" + msisdn[-4:],
    }
    return ok(data, "DP02200000001")


@get("/v1/rsa/encryption-keys")
async def encryption_keys(request: Request, sandbox: Sandbox) -> Response[Any]:
    checked = await sandbox.guard(request)
    if isinstance(checked, Response):
        return checked
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return Response(
        {
            "data": {
                "key_id": 100,
                "key": sandbox.public_key,
                "valid_upto": until.strftime("%d-%m-%Y %H:%M:%S"),
            },
            "status": status(message="Success", response_code="DP02010001001"),
        }
    )


ROUTES = [balance, balance_v2, transaction_list, user, encryption_keys]
