"""`POST /auth/oauth2/token` with a JSON body of client credentials: a token of the
application (account) whose credentials they are."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, post

from mmo_airtel.simulator.state import Sandbox

TOKEN_LIFETIME = 180


@post("/auth/oauth2/token", status_code=200)
async def token(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    account = (
        sandbox.account_of(body.get("client_id"), body.get("client_secret"))
        if isinstance(body, dict) and body.get("grant_type") == "client_credentials"
        else None
    )
    if account is None:
        return Response(
            {"error_description": "Invalid client authentication", "error": "invalid_client"},
            status_code=400,
        )
    value = sandbox.issue_token(account, TOKEN_LIFETIME)
    return Response(
        {"access_token": value, "expires_in": str(TOKEN_LIFETIME), "token_type": "bearer"}
    )


ROUTES = [token]
