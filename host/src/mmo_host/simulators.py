"""Mounting the providers' simulators inside the host (sandbox only).

A mounted ASGI app does not get lifespan events from the server, so the host drives each
simulator's lifespan itself: started with the host, shut down with it (closing the
simulator's callback client and pending callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import asgi


def mount(path: str, simulator: Any, name: str):
    async def simulator_mount(scope: Any, receive: Any, send: Any) -> None:
        await simulator(scope, receive, send)

    return asgi(
        path, is_mount=True, copy_scope=True, name=f"simulator:{name}", include_in_schema=False
    )(simulator_mount)


@contextlib.asynccontextmanager
async def lifespan(app: Any, timeout: float = 10.0) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan protocol around the block."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.get_running_loop().create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await asyncio.wait_for(outbox.get(), timeout)
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"simulator failed to start: {message.get('message', '')}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(outbox.get(), timeout)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout)
