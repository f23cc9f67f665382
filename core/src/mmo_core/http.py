"""One way to build an operator's HTTP client, and one way to read transport failures.

`create_http_client` gives an `httpx.AsyncClient` with explicit timeouts and a bounded
connection pool. `transport_error` turns an httpx exception into the core error that says
what the caller may do: a request that certainly never left (connection refused, connect
timeout, pool timeout) is `ProviderUnavailable`, safe to send again; one that may have
reached the operator (read timeout, connection dropped mid-answer) is `OutcomeUnknown` when
it moves money, `ProviderUnavailable` when it only reads. Authenticated calls to an
operator go through `mmo_core.operator.OperatorClient`, which uses both.

What a request costs the host (issue 17): httpcore checks every pooled connection on every
request and response (is it closed, expired, or readable, i.e. dropped by the server), and
anyio builds a dict of attributes each time it is asked for a stream's socket; that was
about a sixth of the host's CPU with a few dozen pooled connections. The pool's streams
here keep their socket (the same readability check, without the dict), idle connections
expire after `keepalive_expiry`, and the cookie jar is only read when a response sets a
cookie.
"""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable, Mapping

import anyio
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOBackend, AnyIOStream
from httpcore._utils import is_socket_readable

from mmo_core.errors import MmoError, OutcomeUnknown, ProviderTimeout, ProviderUnavailable

USER_AGENT = "mmo-gateway/0.1"


class _Stream(AnyIOStream):
    """httpcore's anyio stream, with its socket looked up once (httpcore asks whether it is
    readable for every pooled connection on every request)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        super().__init__(stream)
        self._socket = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)  # noqa: S610

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        if info == "socket":
            return self._socket
        return super().get_extra_info(info)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        wrapped = await super().start_tls(ssl_context, server_hostname, timeout)
        assert isinstance(wrapped, AnyIOStream)
        return _Stream(wrapped._stream)


class _Backend(AnyIOBackend):
    """httpcore's anyio backend, whose streams are `_Stream`s."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_tcp(host, port, timeout, local_address, socket_options)
        assert isinstance(stream, AnyIOStream)
        return _Stream(stream._stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_unix_socket(path, timeout, socket_options)
        assert isinstance(stream, AnyIOStream)
        return _Stream(stream._stream)


class _Cookies(httpx.Cookies):
    """A client's cookie jar that is only read when a response sets a cookie (httpx builds
    two urllib adapters for every response otherwise)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


def _lighten(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client's pools (its own and any proxy's from the environment) open `_Stream`s,
    and its cookie jar is read only when a response sets a cookie."""
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.AsyncConnectionPool):
            pool._network_backend = _Backend()
    client._cookies = _Cookies(client.cookies)
    return client


def create_http_client(
    *,
    base_url: str = "",
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    max_keepalive_connections: int = 20,
    keepalive_expiry: float = 5.0,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for one operator: timeouts, pooling, no redirects followed.

    Make one per operator account and keep it (the gateway keeps it in the account's
    context): every call of that account reuses its pool. An idle connection is closed
    after `keepalive_expiry` seconds, and at most `max_keepalive_connections` are kept.
    """
    merged = {"User-Agent": USER_AGENT}
    merged.update(headers or {})
    return _lighten(
        httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
                keepalive_expiry=keepalive_expiry,
            ),
            headers=merged,
            follow_redirects=False,
            transport=transport,
        )
    )


def transport_error(
    exc: httpx.HTTPError, provider: str, operation: str, *, moves_money: bool = True
) -> MmoError:
    """Classify an httpx transport failure (not an HTTP error status).

    A request that certainly never left is `ProviderTimeout` (connect or pool timeout) or
    `ProviderUnavailable` (connection refused). One that may have reached the operator (read
    timeout, connection dropped after sending) is `OutcomeUnknown` when the call moves money,
    and `ProviderUnavailable` when it does not (a status, balance or lookup query, a token):
    asking again is harmless then.
    """
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderTimeout(
            f"{provider}: {operation} timed out before the request was sent", provider=provider
        )
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailable(f"{provider}: cannot connect for {operation}", provider=provider)
    if not moves_money:
        return ProviderUnavailable(
            f"{provider}: {operation} got no answer ({type(exc).__name__})", provider=provider
        )
    return OutcomeUnknown(
        f"{provider}: {operation} was sent but no answer came back ({type(exc).__name__})",
        provider=provider,
    )


__all__ = ["USER_AGENT", "create_http_client", "transport_error"]
