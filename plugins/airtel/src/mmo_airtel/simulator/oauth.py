"""`POST /auth/oauth2/token` with a JSON body of client credentials."""

from __future__ import annotations

import json
import secrets
import time
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
    settings = sandbox.settings
    if (
        not isinstance(body, dict)
        or body.get("client_id") != settings.client_id
        or body.get("client_secret") != settings.client_secret
        or body.get("grant_type") != "client_credentials"
    ):
        return Response(
            {"error_description": "Invalid client authentication", "error": "invalid_client"},
            status_code=400,
        )
    value = secrets.token_urlsafe(24)
    sandbox.tokens[value] = time.monotonic() + TOKEN_LIFETIME
    return Response(
        {"access_token": value, "expires_in": str(TOKEN_LIFETIME), "token_type": "bearer"}
    )


ROUTES = [token]
