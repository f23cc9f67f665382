"""Real HTTP servers on loopback for tests: an ASGI app in a thread, a callback recorder."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class ServedApp:
    url: str
    port: int
    server: Any


@contextlib.contextmanager
def serve_app(
    app: Any, *, host: str = "127.0.0.1", startup_timeout: float = 10.0
) -> Iterator[ServedApp]:
    """Serve `app` with uvicorn on a free port of `host` until the block ends."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield ServedApp(url=f"http://{host}:{port}", port=port, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 20.0
):
    """Serve `app` with uvicorn in the running event loop (so it shares the test's loop)."""
    import asyncio

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start in time")
        await asyncio.sleep(0.02)
    try:
        yield ServedApp(url=f"http://{host}:{port}", port=port, server=server)
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackRecorder:
    """An ASGI app that answers 200 to everything and keeps each request."""

    requests: list[RecordedRequest] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        recorded = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope.get("query_string", b"").decode())),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived (or fail after `timeout` seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} callback(s), got {len(self.requests)}")
            return list(self.requests)
