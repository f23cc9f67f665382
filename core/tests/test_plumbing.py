"""Callback URL tokens, transport error classification, simulator building blocks."""

from __future__ import annotations

import httpx
import msgspec
import pytest
from mmo_core.callbacks import (
    build_callback_url,
    callback_token,
    constant_time_equals,
    verify_callback_token,
)
from mmo_core.errors import (
    CallbackVerificationFailed,
    MmoError,
    OutcomeUnknown,
    ProviderTimeout,
    ProviderUnavailable,
)
from mmo_core.http import create_http_client, transport_error
from mmo_core.simulation import FaultInjector, Faults, Ledger, scenario
from mmo_core.types import InboundCallback


def inbound(url: str, provider="op", kind="result") -> InboundCallback:
    query = dict(httpx.URL(url).params)
    return InboundCallback(provider=provider, kind=kind, method="POST", path="/x", query=query)


def test_callback_url_tokens_bind_provider_kind_and_payment():
    url = build_callback_url("http://gw/", "op-path", "op", "result", "s3cret", "pay-1")
    assert url.startswith("http://gw/api/v1/webhooks/op-path/result?ref=pay-1&token=")
    assert verify_callback_token("s3cret", inbound(url)) == "pay-1"
    for forged in (
        inbound(url, kind="other"),
        inbound(url, provider="another"),
        inbound(url.replace("ref=pay-1", "ref=pay-2")),
        inbound(url.split("&token=")[0]),
    ):
        with pytest.raises(CallbackVerificationFailed):
            verify_callback_token("s3cret", forged)
    with pytest.raises(CallbackVerificationFailed):
        verify_callback_token("other-secret", inbound(url))
    plain = build_callback_url("http://gw", "op", "op", "result", "s3cret")
    assert verify_callback_token("s3cret", inbound(plain)) is None
    assert callback_token("a", "op", "k") != callback_token("b", "op", "k")
    assert constant_time_equals("abc", b"abc") and not constant_time_equals("abc", "abd")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (httpx.ConnectTimeout("slow"), ProviderTimeout),
        (httpx.PoolTimeout("busy"), ProviderTimeout),
        (httpx.ReadTimeout("no answer"), OutcomeUnknown),
        (httpx.RemoteProtocolError("dropped"), OutcomeUnknown),
    ],
)
def test_transport_errors_say_whether_the_request_may_have_arrived(exc, expected):
    error = transport_error(exc, "op", "initiate")
    assert type(error) is expected and error.provider == "op"
    assert error.retryable == issubclass(expected, ProviderUnavailable)


async def test_http_client_has_explicit_timeouts():
    client = create_http_client(base_url="http://127.0.0.1:1", timeout=7, connect_timeout=2)
    try:
        assert client.timeout.read == 7 and client.timeout.connect == 2
        assert client.follow_redirects is False
    finally:
        await client.aclose()


async def test_http_client_reuses_its_connection_and_notices_a_dropped_one():
    """A real loopback server: the pooled connection is reused, a connection the server
    closed while idle is noticed (readable at EOF) and replaced, and a cookie the server
    sets is sent back (the jar is read only when a response sets one)."""
    import asyncio

    accepted: list[int] = []
    seen_cookies: list[str] = []
    drop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                cookie = [
                    line.split(":", 1)[1].strip()
                    for line in head.split("\r\n")
                    if line.lower().startswith("cookie:")
                ]
                seen_cookies.append(cookie[0] if cookie else "")
                extra = b"set-cookie: s=1; Path=/\r\n" if len(seen_cookies) == 1 else b""
                writer.write(b"HTTP/1.1 200 OK\r\n" + extra + b"content-length: 2\r\n\r\nok")
                await writer.drain()
                if drop.is_set():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = create_http_client(base_url=f"http://127.0.0.1:{port}")
    try:
        assert (await client.get("/a")).text == "ok"
        assert (await client.get("/b")).text == "ok"
        assert len(accepted) == 1  # kept alive and reused
        drop.set()
        assert (await client.get("/c")).status_code == 200  # the server closes after this
        await asyncio.sleep(0.05)
        assert (await client.get("/d")).status_code == 200  # a new connection, no error
        assert len(accepted) == 2
        assert seen_cookies == ["", "s=1", "s=1", "s=1"]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


def test_error_strings_lead_with_the_request_id():
    error = MmoError("boom", request_id="req-1", provider="op", provider_code="X1")
    assert str(error) == "Request req-1: boom"
    assert "X1" in repr(error)


def test_scenarios_by_last_four_digits():
    assert scenario("+254712340001") == "insufficient_funds"
    assert scenario("256772129991") == "double_callback"
    assert scenario("+254712345678") == "success"


def test_faults_are_validated_and_seeded():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"error_rate": 2}, Faults)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"nonsense": 1}, Faults)
    injector = FaultInjector()
    injector.configure(
        Faults(error_rate=1.0, drop_callback_rate=0.0, duplicate_callback_rate=1.0, seed=3)
    )
    assert injector.error_status() == 500
    assert injector.callback_copies() == 2
    injector.configure(Faults(drop_callback_rate=1.0, callback_delay_ms=500))
    assert injector.callback_copies() == 0
    assert injector.callback_delay(0.1) == 0.5
    injector.configure(Faults(out_of_order=True, seed=1))
    delays = {injector.callback_delay(1.0) for _ in range(5)}
    assert len(delays) > 1


def test_ledger_records_and_finds():
    ledger = Ledger()
    ledger.record("T1", reference="a", status="PENDING")
    ledger.record("T1", status="SUCCESSFUL")
    assert ledger.get("T1") == {"id": "T1", "reference": "a", "status": "SUCCESSFUL"}
    assert ledger.find(reference="a")["id"] == "T1"
    assert ledger.find(reference="b") is None and ledger.get("T2") is None
    assert len(ledger.entries()) == 1
