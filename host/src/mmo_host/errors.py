"""One place that turns errors into HTTP responses: `{"error": {"code", "message"}}`.

No stack trace ever reaches a caller; unexpected errors are logged with their trace and
answered with a generic 500 body. An error that says the database is unreachable (a
restart of Postgres, wherever it surfaced: a query, a transaction, the API key lookup) is
not unexpected: it is `503 database_unavailable` with `Retry-After`, and an operator's
webhook answered so sends its callback again.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from mmo_core.errors import MmoError

from mmo_host import database
from mmo_host.keys import KeysUnavailable
from mmo_host.schemas import ErrorBody

log = logging.getLogger("mmo.http")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# what any authenticated API route may answer before its handler runs (docs/api.md, Errors)
API_ERRORS = (400, 401, 413, 415, 429)
# what an operator's webhook may be answered (docs/api.md, Operators' webhooks)
WEBHOOK_ERRORS = (400, 401, 404, 413, 429, 503)
OPERATOR_ERRORS = (502, 503, 504)


def error_responses(*statuses: int, **more: ResponseSpec) -> dict[int, ResponseSpec]:
    """The OpenAPI `responses` of a route: each status answered with `ErrorBody`.

    `more` adds other documented answers by status (`_202=ResponseSpec(...)`).
    """
    responses = {
        status: ResponseSpec(data_container=ErrorBody, description=_HTTP_CODES.get(status, "error"))
        for status in sorted(set(statuses))
    }
    responses.update({int(key.lstrip("_")): spec for key, spec in more.items()})
    return responses


def _body(code: str, message: str, details: Any = None, provider: str | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    if provider:
        error["provider"] = provider
    return {"error": error}


def mmo_error_handler(_: Request, exc: MmoError) -> Response:
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    if status >= 500:
        log.warning("%s: %s", exc.code, exc)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after else None
    # details (e.g. the country and network no provider serves) are for the caller's 4xx
    details = exc.details if status < 500 else None
    return Response(
        _body(exc.code, exc.message, details, provider=exc.provider),
        status_code=status,
        headers=headers,
    )


def database_unavailable_handler(request: Request, exc: Exception) -> Response:
    """The database did not answer: the caller (or the operator) retries shortly."""
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return mmo_error_handler(request, database.DatabaseUnavailable())


def validation_handler(_: Request, exc: ValidationException) -> Response:
    details = exc.extra if exc.extra else None
    return Response(_body("invalid_request", str(exc.detail), details), status_code=400)


def http_error_handler(_: Request, exc: HTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "error")
    if exc.status_code >= 500:
        return Response(_body("internal_error", "An internal error occurred"), status_code=500)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return Response(_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)


def internal_error_handler(request: Request, exc: Exception) -> Response:
    if database.is_outage(exc):
        return database_unavailable_handler(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(_body("internal_error", "An internal error occurred"), status_code=500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    MmoError: mmo_error_handler,
    # the API key could not be looked up: the database did not answer (keys.py)
    KeysUnavailable: database_unavailable_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
