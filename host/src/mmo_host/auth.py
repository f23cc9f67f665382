"""Orchestrator authentication: `Authorization: Bearer <key>`, keys from MMO_API_KEYS.

Keys are compared in constant time. A key is never stored or logged: its client id (the
first 16 hex digits of its SHA-256) scopes idempotency keys and payment listings.
"""

from __future__ import annotations

import hashlib
import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler


def client_id_for(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    header = connection.headers.get("authorization", "")
    scheme, _space, key = header.partition(" ")
    gateway = connection.app.state.gateway
    key = key.strip()
    if scheme.lower() == "bearer" and key:
        matched = False
        for candidate in gateway.config.api_keys:
            matched |= hmac.compare_digest(key.encode(), candidate.encode())
        if matched:
            connection.state.client_id = client_id_for(key)
            return
    raise NotAuthorizedException("A valid API key is required: Authorization: Bearer <key>")
