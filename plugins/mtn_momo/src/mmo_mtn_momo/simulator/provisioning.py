"""Sandbox user provisioning: `POST /v1_0/apiuser`, `GET /v1_0/apiuser/{id}`,
`POST /v1_0/apiuser/{id}/apikey`."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from mmo_mtn_momo.simulator.common import error, is_uuid4
from mmo_mtn_momo.simulator.state import ApiUserRecord, Sandbox
from mmo_mtn_momo.wire import ApiUserCreate


@post("/v1_0/apiuser", status_code=201)
async def create_user(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    refused = sandbox.subscription(request, None)
    if refused is not None:
        return refused
    reference = request.headers.get("x-reference-id")
    if not is_uuid4(reference):
        return error(400, "REQUEST_REJECTED", "X-Reference-Id must be a UUID version 4")
    try:
        body = msgspec.json.decode(await request.body(), type=ApiUserCreate)
    except msgspec.MsgspecError as exc:
        return error(400, "REQUEST_REJECTED", str(exc))
    if reference in sandbox.users:
        return error(409, "RESOURCE_ALREADY_EXIST")
    key = sandbox.subscription_key(request)
    # the API user is the account's whose subscription key created it
    sandbox.users[reference] = ApiUserRecord(  # type: ignore[index]
        sandbox.key_product[key], body.provider_callback_host, sandbox.key_account(request)
    )
    return Response(b"", status_code=201)


@get("/v1_0/apiuser/{user_id:str}")
async def read_user(request: Request, user_id: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    refused = sandbox.subscription(request, None)
    if refused is not None:
        return refused
    record = sandbox.users.get(user_id)
    if record is None:
        return error(404, "RESOURCE_NOT_FOUND")
    return Response({"providerCallbackHost": record.host or "", "targetEnvironment": "sandbox"})


@post("/v1_0/apiuser/{user_id:str}/apikey", status_code=201)
async def create_key(request: Request, user_id: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    refused = sandbox.subscription(request, None)
    if refused is not None:
        return refused
    record = sandbox.users.get(user_id)
    if record is None:
        return error(404, "RESOURCE_NOT_FOUND")
    key = secrets.token_hex(16)
    record.keys.add(key)
    return Response({"apiKey": key}, status_code=201)


ROUTES = [create_user, read_user, create_key]
