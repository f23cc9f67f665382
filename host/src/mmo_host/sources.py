"""Where a webhook came from, and whether its operator sends from there.

Each provider may list the networks its operator calls from (`MMO_<NAME>_ALLOWED_IPS`,
comma-separated addresses or CIDR blocks; empty: any source, the default). Behind a
TLS-terminating proxy the peer address is the proxy's: `MMO_TRUSTED_PROXIES` lists the
proxies whose `X-Forwarded-For` is believed (off by default, since anyone can send that
header). The client address is then the right-most address of the chain that is not a
trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from mmo_core.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(value: str, setting: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 196.201.214.200` as networks; a bad entry names its setting."""
    found = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigurationError(f"{setting}: {part!r} is not an address or network") from None
    return tuple(found)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def _within(address: object, allowed: Iterable[Network]) -> bool:
    return any(address in network for network in allowed)


def client_address(
    peer: str | None, headers: Mapping[str, str], trusted_proxies: tuple[Network, ...]
) -> str | None:
    """The caller's address: the peer's, or behind trusted proxies the right-most address
    of `X-Forwarded-For` that is not one of them (None when it cannot be read)."""
    address = _address(peer)
    if address is None or not _within(address, trusted_proxies):
        return str(address) if address else None
    chain = [part for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for hop in reversed(chain):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # a garbled chain: trust nothing of it
        if not _within(hop_address, trusted_proxies):
            return str(hop_address)
    return str(address)


def allowed(address: str | None, allowed_networks: tuple[Network, ...]) -> bool:
    """Whether a webhook from `address` may be processed (any, with no allow-list)."""
    if not allowed_networks:
        return True
    parsed = _address(address)
    return parsed is not None and _within(parsed, allowed_networks)


__all__ = ["Network", "allowed", "client_address", "networks"]
