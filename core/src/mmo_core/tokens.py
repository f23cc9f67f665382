"""An access-token cache that refreshes early and never stampedes.

Operators hand out OAuth tokens that live from 180 s (Airtel) to an hour (MTN, M-Pesa).
`TokenCache.get(key, fetch)` returns a cached token while it is fresh, and refreshes it a
margin before it expires (a tenth of its lifetime, at most `refresh_margin` seconds). When
many coroutines need a token at once, one of them calls `fetch` and the others wait for it.

With a shared `store` (anything with the async `get`/`set`/`delete` of Litestar's stores,
such as a `RedisStore`), several host processes reuse one token instead of each fetching
its own. Tokens are secrets: they are never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec


class AccessToken(msgspec.Struct, frozen=True):
    """A bearer token and when it stops being valid (epoch seconds)."""

    value: str
    expires_at: float
    issued_at: float

    @classmethod
    def lasting(cls, value: str, expires_in: float | int | str, *, now: float | None = None):
        """A token valid for `expires_in` seconds from now (operators send it as text too)."""
        issued = time.time() if now is None else now
        return cls(value=value, expires_at=issued + float(expires_in), issued_at=issued)


class TokenStore(Protocol):
    async def get(self, key: str, renew_for: int | None = None) -> bytes | None: ...
    async def set(self, key: str, value: str | bytes, expires_in: int | None = None) -> None: ...
    async def delete(self, key: str) -> None: ...


class TokenCache:
    def __init__(
        self,
        store: TokenStore | None = None,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # how many times a fetch ran: for tests and metrics

    def _fresh(self, token: AccessToken | None) -> bool:
        if token is None:
            return False
        lifetime = max(token.expires_at - token.issued_at, 0.0)
        margin = min(self._refresh_margin, lifetime / 10)
        return self._clock() < token.expires_at - margin

    async def get(self, key: str, fetch: Callable[[], Awaitable[AccessToken]]) -> str:
        """The token for `key`, fetched with `fetch()` when missing or about to expire."""
        token = self._tokens.get(key)
        if self._fresh(token):
            return token.value  # type: ignore[union-attr]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._tokens.get(key)
            if self._fresh(token):
                return token.value  # type: ignore[union-attr]
            token = await self._from_store(key)
            if not self._fresh(token):
                self.fetches += 1
                token = await fetch()
                await self._to_store(key, token)
            self._tokens[key] = token  # type: ignore[assignment]
            return token.value  # type: ignore[union-attr]

    async def refresh(self, key: str, fetch: Callable[[], Awaitable[AccessToken]]) -> str:
        """Fetch a new token for `key` now, whatever the cache holds, and keep it.

        For a health probe, which must reach the operator rather than answer from memory.
        Callers of `get` waiting meanwhile get the new token.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self.fetches += 1
            token = await fetch()
            await self._to_store(key, token)
            self._tokens[key] = token
            return token.value

    async def invalidate(self, key: str, refused: str | None = None) -> None:
        """Forget the token for `key` (the operator refused it); the next `get` fetches.

        With `refused`, the token the operator refused: the cache forgets only that one, so
        when many calls are refused at once, a token already fetched again by one of them
        is kept and the others do not each fetch their own.
        """
        if refused is not None:
            held = self._tokens.get(key) or await self._from_store(key)
            if held is not None and held.value != refused:
                return
        self._tokens.pop(key, None)
        if self._store is not None:
            await self._store.delete(key)

    async def _from_store(self, key: str) -> AccessToken | None:
        if self._store is None:
            return None
        raw = await self._store.get(key)
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=AccessToken)
        except msgspec.DecodeError:
            return None

    async def _to_store(self, key: str, token: AccessToken) -> None:
        if self._store is None:
            return
        ttl = int(token.expires_at - self._clock())
        if ttl > 0:
            await self._store.set(key, msgspec.json.encode(token), expires_in=ttl)


__all__ = ["AccessToken", "TokenCache", "TokenStore"]
