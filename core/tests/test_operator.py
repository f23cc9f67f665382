"""The operator client: token, 401 refresh once, transport errors, Retry-After, health probe."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from mmo_core.errors import (
    InvalidRequest,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from mmo_core.operator import OperatorClient, honours_retry_after, probe, request, retry_after
from mmo_core.settings import ProviderSettings
from mmo_core.testing import make_context
from mmo_core.tokens import AccessToken
from mmo_core.types import ProviderDeclaration
from pytest_httpx import HTTPXMock

BASE = "https://op.test"
TOKEN_URL = f"{BASE}/token"
PAY_URL = f"{BASE}/pay"

DECLARATION = ProviderDeclaration(
    name="op", display_name="Op", countries=("KE",), currencies=("KES",), operations=()
)


def context():
    return make_context(
        DECLARATION, ProviderSettings(), base_url=BASE, public_url="https://gw.test"
    )


def operator(ctx, **kwargs) -> OperatorClient:
    async def fetch() -> AccessToken:
        response = await request(ctx, "POST", "/token", "token", moves_money=False)
        return AccessToken.lasting(response.json()["access_token"], 3600)

    return OperatorClient(
        ctx, token_key=ctx.token_key("client"), fetch_token=fetch, headers={"X-Key": "k"}, **kwargs
    )


def add_tokens(httpx_mock: HTTPXMock, *values: str) -> None:
    for value in values:
        httpx_mock.add_response(method="POST", url=TOKEN_URL, json={"access_token": value})


def bearers(httpx_mock: HTTPXMock, url: str = PAY_URL) -> list[str]:
    return [r.headers["authorization"] for r in httpx_mock.get_requests(url=url)]


async def test_sends_with_the_cached_token_and_the_operator_headers(httpx_mock: HTTPXMock):
    add_tokens(httpx_mock, "t1")
    httpx_mock.add_response(method="POST", url=PAY_URL, json={}, is_reusable=True)
    op = operator(context())
    for _ in range(2):
        response = await op.send("POST", "/pay", "initiate", moves_money=True, json={"a": 1})
        assert response.status_code == 200
    assert bearers(httpx_mock) == ["Bearer t1", "Bearer t1"]
    assert httpx_mock.get_requests(url=PAY_URL)[0].headers["x-key"] == "k"
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 1


async def test_a_refused_token_is_refreshed_once_and_the_call_resent(httpx_mock: HTTPXMock):
    add_tokens(httpx_mock, "old", "new")
    httpx_mock.add_response(method="POST", url=PAY_URL, status_code=401)
    httpx_mock.add_response(method="POST", url=PAY_URL, json={"ok": True})
    response = await operator(context()).send(
        "POST", "/pay", "initiate", moves_money=True, content=b"{}"
    )
    assert response.json() == {"ok": True}
    assert bearers(httpx_mock) == ["Bearer old", "Bearer new"]
    assert [r.content for r in httpx_mock.get_requests(url=PAY_URL)] == [b"{}", b"{}"]


async def test_refresh_happens_only_once(httpx_mock: HTTPXMock):
    add_tokens(httpx_mock, "old", "new")
    httpx_mock.add_response(method="GET", url=PAY_URL, status_code=401, is_reusable=True)
    response = await operator(context()).send("GET", "/pay", "status", moves_money=False)
    assert response.status_code == 401  # the plugin's reading makes it an auth error
    assert bearers(httpx_mock) == ["Bearer old", "Bearer new"]


async def test_an_operators_own_token_refusal_test(httpx_mock: HTTPXMock):
    add_tokens(httpx_mock, "old", "new")
    httpx_mock.add_response(method="GET", url=PAY_URL, status_code=403, text="invalid_token")
    httpx_mock.add_response(method="GET", url=PAY_URL, status_code=403, text="forbidden")
    op = operator(context(), token_refused=lambda r: b"invalid_token" in r.content)
    response = await op.send("GET", "/pay", "status", moves_money=False)
    assert response.text == "forbidden"
    assert bearers(httpx_mock) == ["Bearer old", "Bearer new"]


async def test_concurrent_refusals_fetch_one_new_token(httpx_mock: HTTPXMock):
    add_tokens(httpx_mock, "old", "new")

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401 if req.headers["authorization"] == "Bearer old" else 200)

    httpx_mock.add_callback(answer, url=PAY_URL, is_reusable=True)
    ctx = context()
    op = operator(ctx)
    await op.token()
    answers = await asyncio.gather(
        *[op.send("GET", "/pay", "status", moves_money=False) for _ in range(5)]
    )
    assert {a.status_code for a in answers} == {200}
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2 and ctx.tokens.fetches == 2


@pytest.mark.parametrize(
    ("exc", "moves_money", "expected"),
    [
        (httpx.ConnectError("refused"), True, ProviderUnavailable),
        (httpx.ConnectTimeout("slow"), True, ProviderTimeout),
        (httpx.ReadTimeout("no answer"), True, OutcomeUnknown),
        (httpx.RemoteProtocolError("dropped"), True, OutcomeUnknown),
        (httpx.ConnectError("refused"), False, ProviderUnavailable),
        (httpx.ConnectTimeout("slow"), False, ProviderTimeout),
        (httpx.ReadTimeout("no answer"), False, ProviderUnavailable),
        (httpx.RemoteProtocolError("dropped"), False, ProviderUnavailable),
    ],
)
async def test_transport_errors_by_what_the_call_does(
    httpx_mock: HTTPXMock, exc, moves_money, expected
):
    add_tokens(httpx_mock, "t1")
    httpx_mock.add_exception(exc, url=PAY_URL)
    with pytest.raises(expected) as caught:
        await operator(context()).send("POST", "/pay", "x", moves_money=moves_money)
    assert type(caught.value) is expected and caught.value.provider == "op"


async def test_a_lost_token_answer_is_unavailable_not_unknown(httpx_mock: HTTPXMock):
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=TOKEN_URL)
    with pytest.raises(ProviderUnavailable):
        await operator(context()).send("POST", "/pay", "initiate", moves_money=True)


# -- Retry-After ------------------------------------------------------------------------------


def answer(status: int, value: str | None) -> httpx.Response:
    headers = {} if value is None else {"Retry-After": value}
    return httpx.Response(status, headers=headers)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value, seconds):
    now = dt.datetime(2026, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert retry_after(answer(429, value), now=now) == seconds


@honours_retry_after
def read(response: httpx.Response, operation: str) -> str:
    if response.status_code == 429:
        raise RateLimited(f"{operation} rate limited", provider="op", retry_after=60)
    if response.status_code >= 500:
        raise ProviderUnavailable(f"{operation} unavailable", provider="op")
    if response.status_code >= 400:
        raise InvalidRequest("refused", provider="op")
    return "ok"


def test_the_operators_retry_after_reaches_the_error():
    with pytest.raises(RateLimited) as limited:
        read(answer(429, "12"), "initiate")
    assert limited.value.retry_after == 12.0
    with pytest.raises(ProviderUnavailable) as down:
        read(answer(503, "30"), "status")
    assert down.value.retry_after == 30.0
    assert read(answer(200, "5"), "status") == "ok" and read.__name__ == "read"


def test_without_a_readable_retry_after_the_plugins_value_stays():
    with pytest.raises(RateLimited) as limited:
        read(answer(429, None), "initiate")
    assert limited.value.retry_after == 60
    with pytest.raises(ProviderUnavailable) as down:
        read(answer(502, "30"), "status")  # only 429 and 503 carry a hint we honour
    assert down.value.retry_after is None
    with pytest.raises(InvalidRequest):
        read(answer(400, "30"), "status")


# -- health -----------------------------------------------------------------------------------


async def test_the_health_probe_reaches_the_operator_even_with_a_cached_token(
    httpx_mock: HTTPXMock,
):
    add_tokens(httpx_mock, "t1", "t2")
    op = operator(context())
    assert await op.token() == "t1"
    report = await op.probe("token ok")
    assert report.ok and report.detail == "token ok" and report.latency_ms is not None
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert await op.token() == "t2"  # the probe's token is kept for the next call


async def test_the_health_probe_reports_a_failure_with_its_latency(httpx_mock: HTTPXMock):
    httpx_mock.add_exception(httpx.ConnectError("down"), url=TOKEN_URL)
    report = await operator(context()).probe()
    assert not report.ok and report.latency_ms is not None
    assert report.detail.startswith("provider_unavailable: ")


async def test_probe_names_the_operators_code():
    async def refused() -> None:
        raise ProviderAuthenticationError("refused", provider="op", provider_code="login_failed")

    report = await probe(refused, detail="unused")
    assert report.detail == "provider_authentication_failed: refused [login_failed]"
