"""Who may see the dashboard: a key with the `admin` scope, entered once on the login page.

The key is kept in a cookie the page's scripts cannot read (HttpOnly), that the browser
sends only from the dashboard's own pages (SameSite=Strict: a form on another site cannot
post to the replay button with it), only under `/dashboard`, and only over TLS when the
public URL is https (Secure). Each request asks the gateway's `Keyring` again, the same
lookup `mmo_host.auth.requires` uses, so a revoked or expired key stops working within the
keyring's cache time, as on the API. The key is never logged or rendered.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler

from mmo_host.keys import Principal

COOKIE = "mmo_dashboard"
COOKIE_PATH = "/dashboard"
# request headers are bounded by the server; a longer "key" is not one of ours (auth.py)
MAX_KEY_LENGTH = 512


class LoginRequired(Exception):
    """No key, or a key the gateway does not know (any more): the login page."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.reason = reason


class AdminRequired(Exception):
    """A real key without the `admin` scope (a payments key): refused, saying so."""


class ForeignOrigin(Exception):
    """A form posted from another origin than the dashboard's."""


async def principal_of(connection: ASGIConnection, key: str | None) -> Principal | None:
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    principal: Principal | None = await connection.app.state.gateway.keys.authenticate(key)
    return principal


async def admin_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guard of every dashboard page but the login page (`opt={"public": True}`)."""
    if handler.opt.get("public"):
        return
    key = connection.cookies.get(COOKIE)
    if not key:
        raise LoginRequired()
    principal = await principal_of(connection, key)
    if principal is None:
        raise LoginRequired("That key is not known, revoked or expired: enter an admin key.")
    if "admin" not in principal.scopes:
        raise AdminRequired()
    connection.state.principal = principal
    connection.state.client_id = principal.client_id
    if connection.scope.get("method") == "POST":
        same_origin(connection)


def same_origin(connection: ASGIConnection) -> None:
    """A POST whose `Origin` names another site is refused (SameSite already keeps the
    cookie off it; this also covers browsers that ignore SameSite)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return
    public = connection.app.state.gateway.config.base_public_url
    own = f"{connection.url.scheme}://{connection.headers.get('host', '')}"
    allowed = {_origin(public), _origin(own)}
    if _origin(origin) not in allowed:
        raise ForeignOrigin()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def session_cookie(connection: ASGIConnection, key: str) -> Cookie:
    secure = connection.app.state.gateway.config.base_public_url.startswith("https://")
    return Cookie(
        key=COOKIE,
        value=key,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def cleared_cookie(connection: ASGIConnection) -> Cookie:
    cookie = session_cookie(connection, "")
    return Cookie(
        key=cookie.key,
        value="",
        path=cookie.path,
        httponly=True,
        samesite="strict",
        secure=cookie.secure,
        max_age=0,
        expires=0,
    )
