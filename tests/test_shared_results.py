"""Results shared through Redis: the hook waits in one process, the callback lands in another."""

from __future__ import annotations

import asyncio

from litestar.stores.redis import RedisStore
from mmo_core.results import ResultBoard


async def test_a_result_put_by_one_gateway_reaches_a_waiter_in_another(redis_url):
    worker_store = RedisStore.with_client(url=redis_url, namespace="mmo-test")
    web_store = RedisStore.with_client(url=redis_url, namespace="mmo-test")
    try:
        worker = ResultBoard(worker_store.with_namespace("results:mpesa"), poll_interval=0.01)
        web = ResultBoard(web_store.with_namespace("results:mpesa"))
        waiting = asyncio.create_task(worker.wait("mpesa:result:AG_1", 5))
        await asyncio.sleep(0.05)
        await web.put("mpesa:result:AG_1", b'{"ResultCode":0}')
        assert await asyncio.wait_for(waiting, 2) == b'{"ResultCode":0}'
        # namespaced per provider: another provider's board does not see it
        other = ResultBoard(worker_store.with_namespace("results:airtel"))
        assert await other.wait("mpesa:result:AG_1", 0.05) is None
    finally:
        await worker_store._redis.aclose(close_connection_pool=True)
        await web_store._redis.aclose(close_connection_pool=True)
