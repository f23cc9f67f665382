"""Accounts: `GET /{product}/v1_0/account/balance[/{currency}]` and the account holder's
`…/accountholder/{type}/{id}/active` and `…/basicuserinfo`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from mmo_mtn_momo.simulator.common import error, product_of
from mmo_mtn_momo.simulator.numbers import HOLDERS
from mmo_mtn_momo.simulator.state import MomoSandbox, Sandbox
from mmo_mtn_momo.wire import ENVIRONMENT_CURRENCY, PRODUCTS

SAND_BOX_USER = {
    "sub": "0",
    "name": "Sand Box",
    "given_name": "Sand",
    "family_name": "Box",
    "birthdate": "1976-08-13",
    "locale": "sv_SE",
    "gender": "MALE",
    "updated_at": 1676978048,
}


async def balance_of(request: Request, sandbox: MomoSandbox, currency: str | None) -> Response[Any]:
    """`…/account/balance[/{currency}]`: the account is in the environment's currency;
    another currency is not supported (500 INVALID_CURRENCY)."""
    product = product_of(request)
    caller = await sandbox.product_call(request, product)
    if isinstance(caller, Response):
        return caller
    own = ENVIRONMENT_CURRENCY[caller.env]
    if currency is not None and currency.upper() != own:
        return error(500, "INVALID_CURRENCY")
    available = sandbox.balances[caller.account][product]
    return Response({"availableBalance": str(available), "currency": own})


@get([f"/{p}/v1_0/account/balance" for p in PRODUCTS])
async def account_balance(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await balance_of(request, sandbox, None)


@get([f"/{p}/v1_0/account/balance/{{currency:str}}" for p in PRODUCTS])
async def account_balance_in(
    request: Request, currency: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await balance_of(request, sandbox, currency)


async def holder(
    request: Request, sandbox: MomoSandbox, id_type: str, holder_id: str
) -> Response[Any] | tuple[bool, str]:
    caller = await sandbox.product_call(request, product_of(request))
    if isinstance(caller, Response):
        return caller
    if id_type.lower() not in ("msisdn", "email", "party_code"):
        return error(400, "REQUEST_REJECTED", "Unknown accountHolderIdType")
    active, code = HOLDERS.get(holder_id, (True, None))
    if code is not None:
        return error(503 if code == "SERVICE_UNAVAILABLE" else 500, code)
    return active, holder_id


@get([f"/{p}/v1_0/accountholder/{{id_type:str}}/{{holder_id:str}}/active" for p in PRODUCTS])
async def holder_active(
    request: Request, id_type: FromPath[str], holder_id: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    found = await holder(request, sandbox, id_type, holder_id)
    if isinstance(found, Response):
        return found
    return Response({"result": found[0]})


@get([f"/{p}/v1_0/accountholder/{{id_type:str}}/{{holder_id:str}}/basicuserinfo" for p in PRODUCTS])
async def holder_info(
    request: Request, id_type: FromPath[str], holder_id: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    found = await holder(request, sandbox, id_type, holder_id)
    if isinstance(found, Response):
        return found
    if not found[0]:
        return error(404, "RESOURCE_NOT_FOUND")
    return Response(SAND_BOX_USER)


ROUTES = [account_balance, account_balance_in, holder_active, holder_info]
