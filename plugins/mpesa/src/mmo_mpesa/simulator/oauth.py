"""`GET /oauth/v1/generate?grant_type=client_credentials` with Basic auth."""

from __future__ import annotations

import base64
import secrets
import string
from typing import Any

from litestar import Request, Response, get

from mmo_mpesa.simulator.daraja import error
from mmo_mpesa.simulator.state import Sandbox

TOKEN_LIFETIME = 3599
TOKEN_ALPHABET = string.ascii_letters + string.digits


@get("/oauth/v1/generate")
async def generate(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    if request.query_params.get("grant_type") != "client_credentials":
        return error("400.008.02", "Invalid grant type passed")
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return error("400.008.01", "Invalid authentication type passed")
    try:
        user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        user, secret = "", ""
    book = sandbox.apps.get((user, secret))
    if book is None:
        return error("400.008.01", "Invalid Authentication passed")
    value = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(28))
    sandbox.issue(book, value, TOKEN_LIFETIME)
    return Response({"access_token": value, "expires_in": str(TOKEN_LIFETIME)})


ROUTES = [generate]
