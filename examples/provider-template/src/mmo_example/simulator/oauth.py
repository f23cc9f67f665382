"""`POST /oauth/token`: client credentials in Basic auth."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from litestar import Request, Response, post

from mmo_example.simulator.errors import error
from mmo_example.simulator.state import Sandbox


@post("/oauth/token", status_code=200)
async def token(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    header = request.headers.get("authorization", "")
    try:
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    account = sandbox.account_of(user, password)
    if account is None:
        return error(401, "invalid_client", "Client authentication failed")
    value = secrets.token_urlsafe(24)
    sandbox.tokens[value] = account
    return Response({"access_token": value, "token_type": "Bearer", "expires_in": "3600"})


ROUTES = [token]
