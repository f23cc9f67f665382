"""The result board: answers that arrive by callback, for the hook waiting on them."""

from __future__ import annotations

import asyncio

from litestar.stores.memory import MemoryStore
from mmo_core.results import ResultBoard


async def test_in_one_process():
    board = ResultBoard(keep=1)
    assert await board.wait("a", 0.01) is None
    await board.put("a", b"1")
    await board.put("b", b"2")
    assert await board.wait("b", 0.01) == b"2"
    assert await board.wait("a", 0.01) is None  # only the newest `keep` are kept


async def test_a_waiter_is_woken_by_a_later_put():
    board = ResultBoard()
    waiting = asyncio.create_task(board.wait("k", 5))
    await asyncio.sleep(0.01)
    await board.put("k", b"answer")
    assert await asyncio.wait_for(waiting, 1) == b"answer"
    assert board._waiters == {}


async def test_two_processes_share_a_store():
    """The worker waits, a web process receives the callback: they share the store."""
    store = MemoryStore()
    worker, web = ResultBoard(store, poll_interval=0.01), ResultBoard(store)
    waiting = asyncio.create_task(worker.wait("conv-1", 5))
    await asyncio.sleep(0.03)
    await web.put("conv-1", b"result")
    assert await asyncio.wait_for(waiting, 1) == b"result"
    # already there before anyone waits
    await web.put("conv-2", b"early")
    assert await worker.wait("conv-2", 0.01) == b"early"
    assert await worker.wait("conv-3", 0.05) is None
