"""The bench's relay, a process of its own: the host's public URL points here.

- `/api/v1/webhooks/...`: a simulator's callback. In `forward` mode it is passed to the
  host as it came (method, path, query, headers, body) and the host's answer is returned;
  in `capture` mode it is kept and answered 200, so that the callback burst can post the
  simulator's own callbacks, byte for byte, to real payments.
- `/events`: the gateway's outbound events (MMO_EVENT_URLS), counted by type.
- `/_relay/mode`, `/_relay/captured`, `/_relay/stats`: the bench's controls.

Run as `python -m mmo_host.bench.relay PORT HOST_URL[,HOST_URL...]`: with several hosts
(`mmo bench --hosts N`) each callback goes to the next one in turn, as a load balancer
in front of them would.
"""

from __future__ import annotations

import base64
import itertools
import json
import sys
from collections import Counter
from typing import Any

import httpx

HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class Relay:
    def __init__(self, target: str) -> None:
        self.targets = [t.rstrip("/") for t in target.split(",") if t]
        self._turn = itertools.cycle(self.targets)
        self.mode = "forward"
        self.captured: list[dict[str, Any]] = []
        self.forwarded: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            self._client = httpx.AsyncClient(timeout=60, limits=limits)
        return self._client

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._client is not None:
                        await self._client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if path.startswith("/api/v1/webhooks/"):
            status, answer = await self.callback(scope["method"], path, query, headers, body)
        elif path == "/events":
            self.event(body)
            status, answer = 200, b"{}"
        elif path == "/_relay/mode":
            self.mode = json.loads(body)["mode"]
            status, answer = 200, json.dumps({"mode": self.mode}).encode()
        elif path == "/_relay/captured":
            captured, self.captured = self.captured, []
            status, answer = 200, json.dumps(captured).encode()
        elif path == "/_relay/stats":
            stats = {"forwarded": self.forwarded, "events": self.events, "mode": self.mode}
            status, answer = 200, json.dumps(stats).encode()
        else:
            status, answer = 404, b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def callback(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        kept = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        if self.mode == "capture":
            self.captured.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "headers": kept,
                    "body": base64.b64encode(body).decode(),
                }
            )
            return 200, b"{}"
        url = f"{next(self._turn)}{path}" + (f"?{query}" if query else "")
        try:
            response = await self.client.request(method, url, content=body, headers=kept)
        except httpx.HTTPError as exc:
            self.forwarded[type(exc).__name__] += 1
            return 502, b"{}"
        self.forwarded[str(response.status_code)] += 1
        return response.status_code, response.content

    def event(self, body: bytes) -> None:
        try:
            self.events[str(json.loads(body).get("type"))] += 1
        except (ValueError, AttributeError):
            self.events["unreadable"] += 1


def main() -> None:  # pragma: no cover - run as a process by the bench
    import uvicorn

    port, target = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        Relay(target),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
