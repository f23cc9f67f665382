"""What Orange's API gateway answers for every family: `{code, message, description}`
errors, Basic-auth token requests, the unknown path."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

from litestar import Request, Response

from mmo_orange.simulator.state import OrangeSandbox


def gateway_error(status: int, code: int, message: str, description: str) -> Response[Any]:
    return Response(
        {"code": code, "message": message, "description": description}, status_code=status
    )


def basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


async def basic_token(
    request: Request, sandbox: OrangeSandbox, family: str, lifetime: int
) -> Response[Any]:
    """A client-credentials token of the accounts holding the Basic credentials, with a
    form body `grant_type=client_credentials`."""
    await sandbox.injector.latency()
    credentials = basic(request.headers.get("authorization", ""))
    if credentials is None:
        return gateway_error(401, 40, "Missing credentials", "Basic authorization expected")
    accounts = sandbox.holders(family, *credentials)
    if not accounts:
        return gateway_error(
            401, 41, "Invalid credentials", "Invalid or missing client_id / client_secret"
        )
    form = parse_qs((await request.body()).decode(errors="replace"))
    if not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ) or form.get("grant_type") != ["client_credentials"]:
        return Response(
            {
                "error": "unsupported_grant_type",
                "error_description": "form body grant_type=client_credentials expected",
            },
            status_code=400,
        )
    return Response(sandbox.new_token(lifetime, family, accounts), status_code=200)


def not_found(request: Request, exc: Exception) -> Response[Any]:
    return gateway_error(404, 60, "Resource not found", "The requested URI does not exist")
