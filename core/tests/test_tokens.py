import asyncio

import pytest
from litestar.stores.memory import MemoryStore
from mmo_core.tokens import AccessToken, TokenCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def test_many_concurrent_callers_cause_one_fetch():
    cache = TokenCache()
    calls = 0

    async def fetch():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return AccessToken.lasting(f"t{calls}", 3600)

    values = await asyncio.gather(*[cache.get("k", fetch) for _ in range(50)])
    assert set(values) == {"t1"} and calls == 1 and cache.fetches == 1


async def test_refreshes_before_expiry_and_after_invalidation():
    clock = Clock()
    cache = TokenCache(clock=clock)
    issued = []

    async def fetch():
        issued.append(clock.now)
        return AccessToken.lasting(f"t{len(issued)}", "180", now=clock.now)

    assert await cache.get("k", fetch) == "t1"
    clock.now += 150  # 30 s left of 180: still outside the 18 s margin
    assert await cache.get("k", fetch) == "t1"
    clock.now += 15  # 15 s left: inside the margin, refresh early
    assert await cache.get("k", fetch) == "t2"
    await cache.invalidate("k")
    assert await cache.get("k", fetch) == "t3"


async def test_fetch_errors_reach_the_caller_and_are_not_cached():
    cache = TokenCache()
    attempts = 0

    async def fetch():
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("operator down")
        return AccessToken.lasting("ok", 60)

    with pytest.raises(RuntimeError):
        await cache.get("k", fetch)
    assert await cache.get("k", fetch) == "ok"


async def test_a_shared_store_lets_two_caches_reuse_one_token():
    store = MemoryStore()
    first, second = TokenCache(store), TokenCache(store)

    async def fetch():
        return AccessToken.lasting("shared", 3600)

    async def never():
        raise AssertionError("second cache must reuse the stored token")

    assert await first.get("k", fetch) == "shared"
    assert await second.get("k", never) == "shared"
    await second.invalidate("k")
    assert await store.get("k") is None


async def test_refresh_bypasses_a_fresh_token_and_keeps_the_new_one():
    cache = TokenCache()
    issued = []

    async def fetch():
        issued.append(1)
        return AccessToken.lasting(f"t{len(issued)}", 3600)

    assert await cache.get("k", fetch) == "t1"
    assert await cache.refresh("k", fetch) == "t2"
    assert await cache.get("k", fetch) == "t2" and cache.fetches == 2


async def test_invalidate_forgets_only_the_refused_token():
    store = MemoryStore()
    cache = TokenCache(store)
    values = iter(["t1", "t2"])

    async def fetch():
        return AccessToken.lasting(next(values), 3600)

    assert await cache.get("k", fetch) == "t1"
    await cache.invalidate("k", refused="t0")  # an older token: t1 stays
    assert await cache.get("k", fetch) == "t1"
    await cache.invalidate("k", refused="t1")
    assert await store.get("k") is None
    assert await cache.get("k", fetch) == "t2"
