"""Limits and hygiene: what the host accepts from callers before any handler sees it.

One owner for every rule about the shape of a request (docs/security.md):

- body size per route family, answered `413 request_too_large` after the rest of the body
  has been read and dropped (up to `DRAIN_LIMIT`), so the caller reads the answer instead
  of a reset connection;
- on the API: JSON bodies only (`415 unsupported_media_type` otherwise), valid UTF-8, at
  most `MAX_JSON_DEPTH` levels deep, no NUL character in any string or key; no NUL or
  invalid UTF-8 in path segments, query parameters or the stored `Idempotency-Key` (400);
- on webhooks: the same checks decide `400 malformed`, but the callback row is kept (the
  operator's request is evidence), through `storable_*`, which never fail to insert;
- amounts: ASCII decimal strings only (`AMOUNT_PATTERN`).

Nothing here touches the database; the ASGI middleware runs before Litestar reads a body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

# -- limits --------------------------------------------------------------------------------

API_MAX_BODY = 64 * 1024  # the largest API body (a payment with metadata) is a few KiB
# routes whose bodies are large by design: a payout batch of up to 10,000 items
BATCH_MAX_BODY = 8 * 1024 * 1024
ROUTE_MAX_BODY = {"/api/v1/payouts/batches": BATCH_MAX_BODY}
MAX_JSON_DEPTH = 32  # the deepest body we define is 3 levels; metadata gets the rest
DRAIN_LIMIT = 16 * 1024 * 1024  # read and drop up to this much of an oversized body
WEBHOOK_PREFIX = "/api/v1/webhooks/"
API_PREFIX = "/api/"

# ASCII digits only, anchored at both ends: msgspec runs `re.search`, and `$` would accept
# a trailing newline; `(?![\s\S])` is "end of string" in both Python and ECMA-262 (OpenAPI).
AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?(?![\s\S])"

# a route segment or kind of a webhook URL, and the token the gateway put in it
_WEBHOOK_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Refused(Exception):
    """A request refused before any handler: status, error code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- text and JSON -------------------------------------------------------------------------


def text_problem(raw: bytes, what: str) -> str | None:
    """Why `raw` cannot be text the database holds (invalid UTF-8, a NUL), or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{what} is not valid UTF-8"
    if "\x00" in text:
        return f"{what} contains a NUL character"
    return None


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON in `body` nests arrays and objects more than `limit` levels deep.

    Counted on the bytes, strings left out, before any parser recurses into them.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def json_problem(body: bytes) -> str | None:
    """Why `body` is not JSON the gateway takes (too deep, not UTF-8, not JSON, a NUL)."""
    if too_deep(body):
        return f"The JSON body nests more than {MAX_JSON_DEPTH} levels"
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return "The body is not valid UTF-8 JSON"
    if _has_nul(value):
        return "The JSON body contains a NUL character"
    return None


def looks_like_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


# -- storing what an operator sent, whatever it is -------------------------------------------


def storable(text: str, max_length: int | None = None) -> str:
    """`text` as Postgres text/JSONB holds it: NUL and lone surrogates escaped, cut to fit."""
    safe = text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if max_length is None else safe[:max_length]


def storable_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {storable(str(k)): storable(v) if isinstance(v, str) else v for k, v in values.items()}


def webhook_problem(
    scope: Scope, segment: str, kind: str, query: Mapping[str, str], body: bytes
) -> str | None:
    """Why a webhook request is malformed before any provider looks at it, or None.

    The route segment and kind are the gateway's own names; the token is the one it put in
    the callback URL; the path, query and a JSON body must be text the database holds.
    """
    problem = request_line_problem(scope)
    if problem:
        return problem
    if not _WEBHOOK_SEGMENT.fullmatch(segment) or not _WEBHOOK_SEGMENT.fullmatch(kind):
        return "The webhook path is not one the gateway hands out"
    token = query.get("token")
    if token is not None and not _TOKEN.fullmatch(token):
        return "The callback URL token is malformed"
    if looks_like_json(body):
        return json_problem(body)
    return None


# -- the request line and headers of API calls ---------------------------------------------------


def _query_problem(query_string: bytes) -> str | None:
    for pair in query_string.split(b"&"):
        for part in pair.split(b"=", 1):
            problem = text_problem(unquote_to_bytes(part.replace(b"+", b" ")), "A query parameter")
            if problem:
                return problem
    return None


def request_line_problem(scope: Scope) -> str | None:
    """NUL or invalid UTF-8 in the path, a query parameter or the Idempotency-Key header."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    problem = text_problem(unquote_to_bytes(raw_path), "The path") or _query_problem(
        scope.get("query_string", b"")
    )
    if problem:
        return problem
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            problem = text_problem(value, "The Idempotency-Key header")
            if problem is None and _CONTROL.search(value.decode()):
                problem = "The Idempotency-Key header contains a control character"
            return problem
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


# -- the middleware -------------------------------------------------------------------------


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, or (what was read, True) once it passes `limit` (the rest dropped)."""
    chunks: list[bytes] = []
    size = 0
    over = False
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            over = True
            chunks.clear()
            if size > DRAIN_LIMIT:
                break
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), over


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def send_refusal(send: Send, refused: Refused, close: bool = False) -> None:
    body = msgspec.json.encode({"error": {"code": refused.code, "message": refused.message}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(limit: int) -> Refused:
    return Refused(413, "request_too_large", f"The body is over the limit of {limit} bytes")


def check_api_body(scope: Scope, body: bytes) -> None:
    """A non-empty API body must be declared and be JSON the gateway takes."""
    if not body:
        return
    if not is_json_media_type(_header(scope, b"content-type") or ""):
        raise Refused(415, "unsupported_media_type", "The body must be application/json")
    problem = json_problem(body)
    if problem:
        raise Refused(400, "invalid_request", problem)


class HygieneMiddleware(ASGIMiddleware):
    """Body limits for every `/api/` route; request-line, Content-Type and JSON checks for
    the API (webhooks check theirs in `callbacks.receive`, which keeps the row)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, webhook_max_body: int, api_max_body: int = API_MAX_BODY) -> None:
        self.webhook_max_body = webhook_max_body
        self.api_max_body = api_max_body

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path: str = scope["path"]
        if not path.startswith(API_PREFIX):
            await next_app(scope, receive, send)
            return
        webhook = path.startswith(WEBHOOK_PREFIX)
        limit = (
            self.webhook_max_body
            if webhook
            else ROUTE_MAX_BODY.get(path.rstrip("/"), self.api_max_body)
        )
        try:
            problem = None if webhook else request_line_problem(scope)
            if problem:
                raise Refused(400, "invalid_request", problem)
            declared = _header(scope, b"content-length")
            if declared and declared.isdigit() and int(declared) > DRAIN_LIMIT:
                await send_refusal(send, _too_large(limit), close=True)
                return
            body, over = await _read_body(receive, limit)
            if over:
                raise _too_large(limit)
            if not webhook and scope.get("method") in ("POST", "PUT", "PATCH"):
                check_api_body(scope, body)
        except Refused as refused:
            await send_refusal(send, refused)
            return
        await next_app(scope, _replay(body, receive), send)
