"""Callbacks sent to the caller's URL in the background, as operators send them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from mmo_core.simulation.faults import FaultInjector

log = logging.getLogger("mmo.simulator")


class CallbackSender:
    """Sends callbacks in the background, as operators do: once, late, twice or never.

    The injected faults apply to every callback: dropped, duplicated, delayed, out of order.
    """

    def __init__(self, faults: FaultInjector, *, timeout: float = 10.0) -> None:
        self.faults = faults
        self.timeout = timeout
        self.sent: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # the transport, not a client: an operator keeps no cookies and follows no
        # redirects, and the client's per-request work (cookie jar, auth and redirect
        # loops) was a tenth of a simulator's time under load
        self._transport: httpx.AsyncHTTPTransport | None = None

    def schedule(
        self,
        url: str,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        delay: float = 0.2,
        copies: int = 1,
    ) -> None:
        copies = self.faults.callback_copies(copies)
        for copy in range(copies):
            wait = self.faults.callback_delay(delay) + copy * 0.05
            task = asyncio.get_running_loop().create_task(
                self._send(url, body, headers or {}, method, wait)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def record(self, url: str, status: int) -> None:
        """A callback the simulator delivered itself (e.g. M-Pesa's C2B confirmation)."""
        self.sent.append({"url": url.split("?")[0], "status": status})

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], method: str, wait: float
    ) -> None:
        await asyncio.sleep(wait)
        if self._transport is None:
            # as many kept connections as callbacks in flight: a host that holds each
            # callback while it confirms it has dozens open at once, and httpx's default
            # (20 kept) made the rest a new TCP connection each (7% of a simulator's CPU)
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            self._transport = httpx.AsyncHTTPTransport(limits=limits)
        merged = {"Content-Type": "application/json", **headers}
        request = httpx.Request(
            method,
            url,
            content=body,
            headers=merged,
            extensions={"timeout": httpx.Timeout(self.timeout).as_dict()},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            self.record(url, response.status_code)
        except httpx.HTTPError as exc:
            self.sent.append({"url": url.split("?")[0], "error": type(exc).__name__})
            log.info("simulator callback to %s failed: %s", url.split("?")[0], type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None


__all__ = ["CallbackSender"]
