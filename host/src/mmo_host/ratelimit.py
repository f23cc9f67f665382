"""Rate limits: requests per second per API client, and per source address on webhooks.

A fixed one-second window per key, counted in memory per process, or in Redis (one
atomic Lua script: INCR, and PEXPIRE on the window's first hit; Redis 6.2 and later) when
`REDIS_URL` is set, so several host processes share one limit. Over the limit the answer
is `429 rate_limited` with `Retry-After`. While Redis does not answer, each process counts
in its own memory (logged, and shown by `/health/ready`): the limit still protects the
gateway, per process, and is shared again when Redis answers.

Settings: `MMO_RATE_LIMIT_API` (per client), `MMO_RATE_LIMIT_WEBHOOKS` (per source
address), 0 = off. Litestar's RateLimitMiddleware is not used: it is not atomic across
processes (docs/security.md).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from litestar import Request
from mmo_core.errors import MmoError

from mmo_host import sources
from mmo_host.gateway import REDIS_FAILURES, Gateway, SharedRedis
from mmo_host.hygiene import API_PREFIX, WEBHOOK_PREFIX

log = logging.getLogger("mmo.ratelimit")

WINDOW = 1.0  # seconds
_MAX_KEYS = 100_000  # memory limiter: forget expired windows past this many keys

# KEYS[1]: the window's counter; ARGV[1]: the window in milliseconds
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class TooManyRequests(MmoError):
    """The caller went over its rate limit; `retry_after` says when to try again."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class MemoryLimiter:
    """Fixed windows in this process's memory."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int) -> float | None:
        """Count one request; None when allowed, else seconds until the window ends."""
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= WINDOW:
            start, count = now, 0
        self._windows[key] = (start, count + 1)
        if len(self._windows) > _MAX_KEYS:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW}
        return None if count < limit else WINDOW - (now - start)


class RedisLimiter:
    """Fixed windows in Redis, shared by every process on that Redis."""

    def __init__(
        self, redis: Any, prefix: str = "mmo:ratelimit", shared: SharedRedis | None = None
    ) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._prefix = prefix
        self._shared = shared or SharedRedis(redis)
        self._local = MemoryLimiter()  # while Redis does not answer

    async def hit(self, key: str, limit: int) -> float | None:
        if not self._shared.usable():
            return await self._local.hit(key, limit)
        try:
            count, ttl = await self._script(
                keys=[f"{self._prefix}:{key}"], args=[int(WINDOW * 1000)]
            )
        except REDIS_FAILURES as exc:
            self._shared.failed("rate_limits", exc)
            return await self._local.hit(key, limit)
        self._shared.worked()
        return None if int(count) <= limit else int(ttl) / 1000


class RateLimits:
    """The app's `before_request` hook: it runs after the guards, so the API key's client
    id is known (`request.state.client_id`)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._limiter: MemoryLimiter | RedisLimiter | None = None
        self._redis: Any = None

    def limiter(self) -> MemoryLimiter | RedisLimiter:
        store = self.gateway.store
        redis = store._redis if store is not None else None
        if self._limiter is None or redis is not self._redis:
            self._redis = redis
            self._limiter = (
                RedisLimiter(redis, shared=self.gateway.redis)
                if redis is not None
                else MemoryLimiter()
            )
        return self._limiter

    def _key_and_limit(self, request: Request) -> tuple[str, int] | None:
        path = request.url.path
        config = self.gateway.config
        if path.startswith(WEBHOOK_PREFIX):
            peer = request.client.host if request.client else None
            headers = {k.lower(): v for k, v in request.headers.items()}
            # behind trusted proxies, the forwarded address (sources.client_address)
            address = sources.client_address(peer, headers, self.gateway.trusted_proxies)
            return f"webhooks:{address or 'unknown'}", config.rate_limit_webhooks
        if path.startswith(API_PREFIX):
            client = getattr(request.state, "client_id", None)
            if client is None:
                return None
            return f"api:{client}", config.rate_limit_api
        return None

    async def before_request(self, request: Request) -> None:
        found = self._key_and_limit(request)
        if found is None or found[1] <= 0:
            return
        key, limit = found
        wait = await self.limiter().hit(key, limit)
        if wait is not None:
            raise TooManyRequests(f"More than {limit} requests per second; slow down", wait)
