"""Answers that arrive by callback for a hook that is waiting for them.

Some operators answer a query asynchronously: Daraja's Transaction Status, Reversal and
Account Balance reply "accepted", then POST the Result to a URL. The hook that asked
(`status`, `reverse`, `balance`) waits on `context.results` for a short while, and the
`parse_callback` of the Result puts it there.

The asking process and the process receiving the callback are often not the same: the
worker polls while a web process takes the webhook. With a shared `store` (the host's
Redis), a Result put by one process is seen by a waiter in any other. Without one, the
board works within one process (the default `mmo serve`, whose worker runs in-process).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from mmo_core.tokens import TokenStore


class ResultBoard:
    """Bytes kept briefly under a key, for whoever waits on that key.

    `put` never blocks on a waiter; `wait` returns the value, or None after `timeout`.
    Values are kept `keep_for` seconds in the store, and the newest `keep` in memory.
    """

    def __init__(
        self,
        store: TokenStore | None = None,
        *,
        keep: int = 1000,
        keep_for: int = 600,
        poll_interval: float = 0.05,
    ) -> None:
        self._store = store
        self._results: OrderedDict[str, bytes] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[bytes]]] = {}
        self._keep = keep
        self._keep_for = keep_for
        self._poll = poll_interval

    async def put(self, key: str, value: bytes) -> None:
        self._results[key] = value
        self._results.move_to_end(key)
        while len(self._results) > self._keep:
            self._results.popitem(last=False)
        for waiter in self._waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(value)
        if self._store is not None:
            await self._store.set(key, value, expires_in=self._keep_for)

    async def wait(self, key: str, timeout: float) -> bytes | None:
        if key in self._results:
            return self._results[key]
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._store is not None:
                    found = await self._store.get(key)
                    if found is not None:
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                slice_ = left if self._store is None else min(left, self._poll)
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), slice_)
                except TimeoutError:
                    continue
        finally:
            waiters = self._waiters.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(key, None)
            if not waiter.done():
                waiter.cancel()


__all__ = ["ResultBoard"]
