"""One way to build an operator's HTTP client, and one way to read transport failures.

`create_http_client` gives an `httpx.AsyncClient` with explicit timeouts and a bounded
connection pool. `transport_error` turns an httpx exception into the core error that says
what the caller may do: a request that certainly never left (connection refused, connect
timeout, pool timeout) is `ProviderUnavailable`, safe to send again; one that may have
reached the operator (read timeout, connection dropped mid-answer) is `OutcomeUnknown` when
it moves money, `ProviderUnavailable` when it only reads. Authenticated calls to an
operator go through `mmo_core.operator.OperatorClient`, which uses both.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from mmo_core.errors import MmoError, OutcomeUnknown, ProviderTimeout, ProviderUnavailable

USER_AGENT = "mmo-gateway/0.1"


def create_http_client(
    *,
    base_url: str = "",
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    max_keepalive_connections: int = 20,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for one operator: timeouts, pooling, no redirects followed."""
    merged = {"User-Agent": USER_AGENT}
    merged.update(headers or {})
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
        ),
        headers=merged,
        follow_redirects=False,
        transport=transport,
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
