"""Orchestrator authentication: `Authorization: Bearer <key>`, and the scope of each route.

Every route under `/api/v1` declares the scope it needs with a `requires(scope)` guard
(`payments:write`, `payments:read`, `admin`). The guard asks the gateway's `Keyring`
(mmo_host.keys, which owns what a key is) who the key belongs to: a missing, unknown,
revoked or expired key is `401 unauthorized` with `WWW-Authenticate: Bearer`; a key without
the route's scope is `403 forbidden`. The caller's client id (`request.state.client_id`)
scopes payments and idempotency keys. A key is never stored or logged.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from mmo_host.keys import SCOPES, Principal

# request headers are bounded by the server; a longer "key" is not one of ours
_MAX_KEY_LENGTH = 512


def bearer_key(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _space, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > _MAX_KEY_LENGTH:
        return None
    return key


async def authenticate(connection: ASGIConnection) -> Principal:
    """The caller, once per request (kept on the request's state)."""
    known = connection.state.get("principal")
    if isinstance(known, Principal):
        return known
    key = bearer_key(connection)
    principal = None
    if key is not None:
        principal = await connection.app.state.gateway.keys.authenticate(key)
    if principal is None:
        raise NotAuthorizedException("A valid API key is required: Authorization: Bearer <key>")
    connection.state.principal = principal
    connection.state.client_id = principal.client_id
    return principal


class ScopeGuard:
    """The guard of a route that needs `scope` (declared with `requires`)."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope

    async def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if self.scope not in principal.scopes:
            raise PermissionDeniedException(f"This API key does not have the {self.scope} scope")

    def __repr__(self) -> str:
        return f"requires({self.scope!r})"


def requires(scope: str) -> ScopeGuard:
    """`guards=[requires("payments:write")]`: the route needs a key with that scope."""
    return ScopeGuard(scope)
