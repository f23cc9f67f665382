"""Rate limits through HTTP: per API client, per webhook source address, shared over Redis.

The suite's host runs with generous limits; each test lowers them on the served gateway
(its config is read per request) and the window is one second.
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from litestar.stores.redis import RedisStore
from mmo_host.app import build_registry
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway
from mmo_host.keys import ENV_CLIENT_ID
from mmo_host.ratelimit import RateLimits, RedisLimiter

from tests.conftest import OTHER_KEY, host_environ
from tests.test_webhooks import fake_url


@pytest.fixture
def limits(host, monkeypatch):
    def set_limits(api: int = 0, webhooks: int = 0) -> None:
        config = dataclasses.replace(
            host.gateway.config, rate_limit_api=api, rate_limit_webhooks=webhooks
        )
        monkeypatch.setattr(host.gateway, "config", config)

    return set_limits


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


async def burst(
    client: httpx.AsyncClient, n: int, method: str, url: str, **kw
) -> list[httpx.Response]:
    """`n` requests at once: well inside one window, even on a loaded machine."""
    return list(await asyncio.gather(*(client.request(method, url, **kw) for _ in range(n))))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


async def test_the_api_is_limited_per_client(api, host, limits):
    limits(api=5)
    responses = await burst(api, 20, "GET", "/api/v1/admin/providers")
    assert statuses(responses).count(200) <= 5 * 2  # at most two windows' worth
    assert_limited(next(r for r in responses if r.status_code != 200))
    # another client has its own budget (it has no admin scope: it reads its payments)
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert (await api.get("/api/v1/payments", headers=other)).status_code == 200


async def test_a_limit_of_zero_is_off(api, host, limits):
    limits(api=0, webhooks=0)
    responses = await burst(api, 30, "GET", "/api/v1/admin/providers")
    assert set(statuses(responses)) == {200}


async def test_webhooks_are_limited_per_source_address(api, host, limits):
    limits(webhooks=3)
    async with httpx.AsyncClient() as client:
        responses = await burst(client, 12, "POST", fake_url(host), content=b'{"ref": "x"}')
        assert statuses(responses).count(429) >= 12 - 3 * 2
        assert_limited(next(r for r in responses if r.status_code == 429))
    # another source address (all of 127/8 is loopback on Linux) has its own budget
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(fake_url(host), content=b'{"ref": "x"}')
    assert response.status_code != 429


async def test_two_gateways_on_one_redis_share_the_limit(api, host, limits, redis_url):
    """What another host process counted on the shared Redis, the served one refuses."""
    limits(api=5)
    config = HostConfig.from_env(host_environ("postgresql://unused", REDIS_URL=redis_url))
    other = Gateway(config, build_registry(config))
    await other.open()
    original = host.gateway.store
    # the served host as if started with the same REDIS_URL
    host.gateway.store = RedisStore.with_client(url=redis_url, namespace="mmo")
    try:
        assert isinstance(RateLimits(host.gateway).limiter(), RedisLimiter)
        elsewhere = RateLimits(other).limiter()
        assert isinstance(elsewhere, RedisLimiter)
        # another process takes the whole second's budget of this client...
        key = f"api:{ENV_CLIENT_ID}"  # API_KEY is a key of the environment's client
        await host.gateway.store._redis.delete(f"mmo:ratelimit:{key}")
        for _ in range(5):
            assert await elsewhere.hit(key, 5) is None
        # ...and the served host refuses the client's next request
        assert_limited(await api.get("/api/v1/admin/providers"))
        other_client = {"Authorization": f"Bearer {OTHER_KEY}"}
        # (the other client has no admin scope: it reads its payments)
        assert (await api.get("/api/v1/payments", headers=other_client)).status_code == 200
    finally:
        await host.gateway.store._redis.aclose(close_connection_pool=True)
        host.gateway.store = original
        await other.close()
