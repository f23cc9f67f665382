"""Structured logs: JSON lines, a request id followed from the POST to the callback and the
event deliveries, numbers masked and secrets redacted (tests/conftest.py's LogScan checks
every line of the run besides)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mmo_core.errors import ConfigurationError
from mmo_host import logs
from mmo_host.config import HostConfig
from mmo_host.worker import Worker

from tests.conftest import wait_for_status


class Lines(logging.Handler):
    """The lines the gateway writes, rendered by the formatter `mmo serve` uses."""

    def __init__(self, fmt: str = "json") -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logs.formatter(fmt))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def lines(api) -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def wait_for_line(lines: Lines, timeout: float = 10.0, **wanted: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for line in lines.parsed():
            if all(line.get(k) == v for k, v in wanted.items()):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line with {wanted}")
        await asyncio.sleep(0.05)


def payment() -> dict[str, str]:
    return {
        "type": "collection",
        "amount": "150",
        "currency": "KES",
        "msisdn": "+254712345678",
        "provider": "example",
        "reference": "LOG-1",
    }


async def test_a_request_id_follows_the_payment_to_its_callback(api, host, lines):
    request_id = f"orch-{uuid.uuid4().hex[:12]}"
    created = await api.post(
        "/api/v1/payments",
        json=payment(),
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-Request-Id": request_id},
    )
    assert created.status_code == 202, created.text
    assert created.headers["x-request-id"] == request_id
    payment_id = created.json()["id"]
    await wait_for_status(api, payment_id, {"succeeded"})
    callback = await wait_for_line(lines, event="callback", payment_id=payment_id)
    await Worker(host.gateway, worker_id="logs-worker").drain()

    # every line is one JSON object (one line per event), with a level, a logger and a time
    parsed = lines.parsed()
    assert all("\n" not in line for line in lines.lines)
    assert all({"event", "level", "logger", "time"} <= set(line) for line in parsed)

    # the POST: its request line and, under its request id, the operator call and the
    # status it left the payment in, both naming the payment
    posted = [line for line in parsed if line.get("request_id") == request_id]
    by_event = {line["event"]: line for line in posted}
    assert by_event["request"]["route"] == "/api/v1/payments"
    assert by_event["request"]["status"] == 202
    assert by_event["operator call"] | {"duration_ms": 0} == by_event["operator call"] | {
        "provider": "example",
        "account": "default",
        "hook": "initiate",
        "outcome": "ok",
        "payment_id": payment_id,
        "duration_ms": 0,
    }
    assert by_event["payment status"]["payment_id"] == payment_id
    assert by_event["payment status"]["status"] == "pending"

    # the callback: the operator's request has its own id; its lines name the payment and
    # the request that created it
    assert callback["outcome"] == "applied" and callback["verified"] is True
    webhook_id = callback["request_id"]
    assert webhook_id and webhook_id != request_id
    assert callback["payment_request_id"] == request_id
    webhook = [line for line in parsed if line.get("request_id") == webhook_id]
    assert {
        (line["event"], line.get("route"), line.get("status"), line.get("payment_id"))
        for line in webhook
    } >= {
        # the webhook's own request line names the payment once it is matched
        ("request", "/api/v1/webhooks/{segment}/{kind}", 200, payment_id),
        ("payment status", None, "succeeded", payment_id),
        ("callback", None, None, payment_id),
    }
    # the worker delivered the payment's events: lines by the payment's id, no request id
    deliveries = [
        line
        for line in lines.parsed()
        if line["event"] == "event delivery" and line["payment_id"] == payment_id
    ]
    assert {d["type"] for d in deliveries} == {
        "payment.created",
        "payment.pending",
        "payment.succeeded",
    }
    assert all(d["outcome"] == "delivered" and "request_id" not in d for d in deliveries)
    # the whole story, by payment id: POST, callback, deliveries; the number never shown
    story = [line for line in lines.parsed() if line.get("payment_id") == payment_id]
    assert [line["event"] for line in story].count("payment status") == 2
    assert not any("+254712345678" in line or "254712345678" in line for line in lines.lines)


async def test_an_insane_request_id_is_replaced(api, lines):
    for given in ("two words", "x" * 200, "../etc", 'a"b', ""):
        response = await api.get("/api/v1/payments", headers={"X-Request-Id": given})
        assert response.status_code == 200
        assert response.headers["x-request-id"] != given
        assert len(response.headers["x-request-id"]) == 32
    fresh = (await api.get("/api/v1/payments")).headers["x-request-id"]
    assert fresh and fresh != (await api.get("/api/v1/payments")).headers["x-request-id"]


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    """A record made by hand: a number or secret never passes through the suite's loggers
    (LogScan would rightly flag it)."""
    made = logging.LogRecord("mmo.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_numbers_are_masked_and_secrets_redacted():
    line = json.loads(
        logs.formatter("json").format(
            record(
                "paying %s (national %s) for order %s",
                "+254712345678",
                "0712345678",
                "2041",
                msisdn="+256772123456",
                callback_secret="s3cret-value-0123456789",
                authorization="Bearer sk_live_abcdefghijklmnopqrstuvwx",
                payment_id="1827c34c-5b7e-4c2e-9d7e-254712345678",
            )
        )
    )
    assert line["event"] == "paying +254*******78 (national 071*****78) for order 2041"
    assert line["msisdn"] == "+256*******56"
    assert line["callback_secret"] == "[redacted]"
    assert line["authorization"] == "[redacted]"
    assert line["payment_id"] == "1827c34c-5b7e-4c2e-9d7e-254712345678"  # an id, not a number
    assert line["level"] == "warning" and line["logger"] == "mmo.test"


def structlog_record(event: dict[str, Any]) -> logging.LogRecord:
    """A record as structlog's `wrap_for_formatter` hands it to logging."""
    made = logging.LogRecord("mmo.test", logging.ERROR, __file__, 1, event, (), None)
    made._logger = logging.getLogger("mmo.test")  # type: ignore[attr-defined]
    made._name = "error"  # type: ignore[attr-defined]
    return made


def test_the_formatter_scrubs_what_structlog_did_not():
    # a line scrubbed in structlog's chain: its fields as they were, the traceback the
    # formatter adds is scrubbed too
    chained = logs.scrub(
        None, "error", {"event": "x +254712345678", "token": "abc", "n": 5, "exc_info": True}
    )
    try:
        raise RuntimeError("payer 254712345678 refused")
    except RuntimeError:
        line = json.loads(logs.formatter("json").format(structlog_record(chained)))
    assert line["event"] == "x +254*******78" and line["token"] == "[redacted]"
    assert line["n"] == 5
    assert "254*******78" in line["exception"] and "254712345678" not in line["exception"]
    assert "_record" not in line and "_from_structlog" not in line
    # a structlog line that did not pass through `scrub` (another configuration): all of it
    raw = {"event": "y 0712345678", "api_key": "sk_live_abcdefghijklmnopqrstuvwx"}
    line = json.loads(logs.formatter("json").format(structlog_record(raw)))
    assert line["event"] == "y 071*****78" and line["api_key"] == "[redacted]"


def test_a_json_line_writes_any_value():
    import datetime as dt
    from decimal import Decimal

    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    event_id = uuid.uuid4()
    chained = logs.scrub(
        None,
        "info",
        {
            "event": "café",
            "event_id": event_id,
            "amount": Decimal("1.50"),
            "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "odd": Odd(),
            "big": 2**70,
            "none": None,
        },
    )
    text = logs.formatter("json").format(structlog_record(chained))
    line = json.loads(text)
    assert "\n" not in text and line["event"] == "café"
    assert line["event_id"] == str(event_id) and line["amount"] == "1.50"
    assert line["at"].startswith("2026-01-01T00:00:00") and line["odd"] == "<odd>"
    assert line["big"] == 2**70 and line["none"] is None


def test_structlog_lines_are_scrubbed_before_any_handler():
    scrubbed = logs.scrub(None, "info", {"event": "x 254712345678", "token": "abc", "n": 5})
    assert scrubbed == {"event": "x 254*******78", "token": "[redacted]", "n": 5}


def test_console_format_is_one_readable_line():
    text = logs.formatter("console").format(record("gateway ready (%s)", "sandbox"))
    assert "gateway ready (sandbox)" in text and "\n" not in text and not text.startswith("{")
    with pytest.raises(ValueError, match="log format"):
        logs.formatter("xml")


def test_the_log_format_setting():
    assert HostConfig.from_env({}).log_format == "console"
    assert HostConfig.from_env({"MMO_LOG_FORMAT": "JSON"}).log_format == "json"
    production = {
        "MMO_ENV": "production",
        "MMO_API_KEYS": "k" * 32,
        "MMO_CALLBACK_SECRET": "s" * 32,
        "MMO_PUBLIC_URL": "https://gw.example",
        "DATABASE_URL": "postgresql://db/mmo",
        "MMO_ENABLED_PROVIDERS": "example",
    }
    assert HostConfig.from_env(production).log_format == "json"
    assert HostConfig.from_env(production | {"MMO_LOG_FORMAT": "console"}).log_format == "console"
    with pytest.raises(ConfigurationError, match="MMO_LOG_FORMAT"):
        HostConfig.from_env({"MMO_LOG_FORMAT": "xml"})


def test_the_cli_writes_json_lines():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMO_", "DATABASE_URL"))}
    env |= {"MMO_LOG_FORMAT": "json", "MMO_ENABLED_PROVIDERS": "example"}
    result = subprocess.run(
        [sys.executable, "-m", "mmo_host.cli", "providers", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout)["providers"][0]["name"] == "example"
    written = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert written, "the registry logs the providers it leaves out"
    assert any("installed but not enabled" in line["event"] for line in written)
    assert all(line["level"] and line["time"] for line in written)
