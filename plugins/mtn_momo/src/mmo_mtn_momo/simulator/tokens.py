"""`POST /{product}/token/` (Basic apiUser:apiKey), and the simulator's token revocation.

A token is the API user's account's: the subscription key of the request must be one of
that account's (another account's API user gets `login_failed`, as an unknown one)."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import Any

from litestar import Request, Response, post

from mmo_mtn_momo.simulator.common import product_of
from mmo_mtn_momo.simulator.state import Sandbox
from mmo_mtn_momo.wire import PRODUCTS


def _basic(header: str) -> tuple[str, str]:
    try:
        user, _, secret = (
            base64.b64decode(header.removeprefix("Basic "), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        user, secret = "", ""
    return user, secret


@post([f"/{p}/token" for p in PRODUCTS], status_code=200)
async def token(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    product = product_of(request)
    refused = sandbox.subscription(request, product)
    if refused is not None:
        return refused
    user, secret = _basic(request.headers.get("authorization", ""))
    record = sandbox.users.get(user)
    settings = sandbox.settings
    held = sandbox.key_accounts.get(sandbox.subscription_key(request), set())
    if (
        record is None
        or record.product != product
        or secret not in record.keys
        or record.account not in held  # another account's API user on this subscription
    ):
        return Response({"error": "login_failed"}, status_code=settings.login_failed_status)
    value = secrets.token_urlsafe(32)
    sandbox.tokens[value] = (record.account, product, user, time.time() + settings.token_lifetime)
    return Response(
        {
            "access_token": value,
            "token_type": "access_token",
            "expires_in": settings.token_lifetime,
        }
    )


@post("/_simulator/revoke-tokens", status_code=200, include_in_schema=False)
async def revoke_tokens(sandbox: Sandbox) -> dict[str, int]:
    """Simulator only: every token stops working (as if all had expired)."""
    count = len(sandbox.tokens)
    sandbox.tokens.clear()
    return {"revoked": count}


ROUTES = [token, revoke_tokens]
