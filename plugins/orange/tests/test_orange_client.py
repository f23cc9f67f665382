"""Unit tests of the Orange client and hooks with pytest-httpx: errors, tokens, formats."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.errors import (
    CallbackVerificationFailed,
    ConfigurationError,
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.testing import make_context
from mmo_core.types import InboundCallback, Payment
from mmo_orange import client, fields, plugin
from mmo_orange.settings import OrangeSettings

BASE = "http://orange.test"
PUBLIC = "http://gw.test"
WEBPAY_TOKEN = f"{BASE}/oauth/v3/token"
CM_TOKEN = f"{BASE}/token"
INIT = f"{BASE}/orange-money-webpay/dev/v1/webpayment"
STATUS = f"{BASE}/orange-money-webpay/dev/v1/transactionstatus"
MP = f"{BASE}/omcoreapis/1.0.2/mp"


def context(environment="sandbox", **settings):
    return make_context(
        plugin.DECLARATION,
        OrangeSettings(**settings),
        base_url=BASE,
        public_url=PUBLIC,
        environment=environment,
    )


def payment(msisdn="+2250701234567", currency="XOF", **changes) -> Payment:
    from mmo_core import phones

    values = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal(1200),
        "currency": currency,
        "msisdn": msisdn,
        "reference": "ORD-1",
        "country": phones.region_of(msisdn),
    } | changes
    return Payment(**values)


def token_ok(httpx_mock, url=WEBPAY_TOKEN, value="tok-1", expires_in=7776000):
    httpx_mock.add_response(
        url=url,
        method="POST",
        json={"token_type": "Bearer", "access_token": value, "expires_in": expires_in},
    )


CREATED = {
    "status": 201,
    "message": "OK",
    "pay_token": "pt-1",
    "payment_url": "https://pay.example/payment/pay_token/pt-1",
    "notif_token": "dd497bda3b250e536186fc0663f32f40",
}


# -- the one translation --------------------------------------------------------------------


def response(status: int, body) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (
            401,
            {"code": 40, "message": "Missing credentials", "description": "x"},
            ProviderAuthenticationError,
            "40",
        ),
        (
            401,
            {"code": 41, "message": "Invalid credentials", "description": "x"},
            ProviderAuthenticationError,
            "41",
        ),
        (
            401,
            {"code": 42, "message": "Expired credentials", "description": "x"},
            ProviderAuthenticationError,
            "42",
        ),
        (
            403,
            {"code": 50, "message": "Access denied", "description": "x"},
            ProviderAuthenticationError,
            "50",
        ),
        (
            404,
            {"code": 60, "message": "Resource not found", "description": "x"},
            InvalidRequest,
            "60",
        ),
        (
            400,
            {"code": 23, "message": "Missing body field", "description": "OrderId"},
            InvalidRequest,
            "23",
        ),
        (429, {"code": 53, "message": "Too many requests", "description": "x"}, RateLimited, "53"),
        (
            503,
            {"code": 5, "message": "Service unavailable", "description": "x"},
            ProviderUnavailable,
            "5",
        ),
        (500, {"code": 1, "message": "Internal error", "description": "x"}, OutcomeUnknown, "1"),
        (
            417,
            {
                "message": "60019 :: Le solde du compte du payeur est insuffisant",
                "data": {"inittxnstatus": "60019", "status": "FAILED"},
            },
            OperatorDeclined,
            "60019",
        ),
        (
            417,
            {"message": "Beneficiaire introuvable", "data": {"inittxnstatus": "60020"}},
            OperatorDeclined,
            "60020",
        ),
        (
            401,
            {"fault": {"code": 900901, "message": "Invalid Credentials", "description": "x"}},
            ProviderAuthenticationError,
            "900901",
        ),
        (
            400,
            {"error": "unsupported_grant_type", "error_description": "form expected"},
            InvalidRequest,
            "unsupported_grant_type",
        ),
        (
            417,
            {
                "message": "00068 :: Le code PIN du marchand est incorrect",
                "data": {"inittxnstatus": "00068", "status": "FAILED"},
            },
            OperatorDeclined,
            "00068",
        ),
        (
            403,
            {"message": "Invalid X-AUTH-TOKEN", "data": None},
            ProviderAuthenticationError,
            "403",
        ),
        (404, {"message": "PayToken introuvable", "data": None}, InvalidRequest, "404"),
        (502, "<html>bad gateway</html>", ProviderUnavailable, "502"),
        (
            504,
            {"fault": {"code": 101504, "message": "Timeout", "description": "x"}},
            ProviderUnavailable,
            "101504",
        ),
        (406, ["not", "an", "object"], InvalidRequest, "406"),
        (400, {"other": 1}, InvalidRequest, "400"),
    ],
)
def test_raise_for_maps_every_orange_error(status, body, error, code):
    with pytest.raises(error) as caught:
        client.raise_for(response(status, body), "initiate")
    assert caught.value.provider == "orange"
    assert caught.value.provider_code == code
    assert caught.value.provider_message


def test_raise_for_lets_success_through():
    assert client.raise_for(httpx.Response(201, json={}), "initiate") is None


def test_status_tables():
    assert [
        client.webpay_status(s)
        for s in ("INITIATED", "PENDING", "SUCCESS", "FAILED", "EXPIRED", "NEW")
    ] == ["pending", "pending", "succeeded", "failed", "expired", "pending"]
    assert [
        client.cameroon_status(s)
        for s in (
            "INITIATED",
            "PENDING",
            "SUCCESSFULL",
            "SUCCESS",
            "FAILED",
            "CANCELLED",
            "EXPIRED",
            None,
        )
    ] == ["pending", "pending", "succeeded", "succeeded", "failed", "failed", "expired", "pending"]


def test_identifiers_and_formats():
    assert client.notif_reference("a") != client.notif_reference("b")
    assert "a" * 8 not in client.notif_reference("a" * 32)
    assert client.split_coded("60019 :: solde insuffisant") == ("60019", "solde insuffisant")
    assert client.split_coded("plain") == (None, "plain")


def test_family_settings():
    settings = OrangeSettings(families="CM:cameroon, SN:webpay", default_family="webpay")
    assert settings.family_for("cm") == "cameroon"
    assert settings.family_for("CI") == "webpay"
    with pytest.raises(ConfigurationError):
        OrangeSettings(families="SN:nope").family_for("SN")
    assert OrangeSettings().family_for("SN") == "sonatel"
    assert OrangeSettings(families="CM:cameroon").uses("sonatel") is False
    with pytest.raises(ConfigurationError):
        OrangeSettings(default_family="nope").family_for("CI")


# -- WebPay ---------------------------------------------------------------------------------


async def test_webpay_initiate_sends_orange_body_and_returns_redirect(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(url=INIT, method="POST", status_code=201, json=CREATED)
    ctx = context()
    p = payment()
    ack = await plugin.initiate(ctx, p)
    sent = json.loads(httpx_mock.get_requests(url=INIT)[0].content)
    assert sent["currency"] == "OUV" and sent["amount"] == 1200
    assert sent["order_id"] == fields.webpay_order_id(p) and len(sent["order_id"]) <= 30
    assert sent["order_id"].startswith("ORD-1-") and sent["reference"] == "ORD-1"
    assert sent["notif_url"].startswith(f"{PUBLIC}/api/v1/webhooks/orange-money/callback?token=")
    assert len(sent["notif_url"]) <= 120
    token_request = httpx_mock.get_requests(url=WEBPAY_TOKEN)[0]
    assert token_request.headers["authorization"].startswith("Basic ")
    assert token_request.content == b"grant_type=client_credentials"
    request = httpx_mock.get_requests(url=INIT)[0]
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["x-mmo-simulator-payer"] == "4567"
    assert ack.next_action is not None and ack.next_action.url == CREATED["payment_url"]
    assert ack.provider_data["notif_token"] == CREATED["notif_token"]
    assert ack.provider_reference == client.notif_reference(CREATED["notif_token"])
    await ctx.http.aclose()


async def test_webpay_production_uses_country_path_and_currency(httpx_mock):
    url = "https://api.orange.example/orange-money-webpay/ci/v1/webpayment"
    token_ok(httpx_mock, url="https://api.orange.example/oauth/v3/token")
    httpx_mock.add_response(url=url, method="POST", status_code=201, json=CREATED)
    ctx = context("production", webpay_country="", webpay_base_url="https://api.orange.example")
    ack = await plugin.initiate(ctx, payment())
    request = httpx_mock.get_requests(url=url)[0]
    assert json.loads(request.content)["currency"] == "XOF"
    assert "x-mmo-simulator-payer" not in request.headers  # sandbox only
    assert ack.provider_data["cc"] == "ci"
    await ctx.http.aclose()


async def test_token_refreshed_once_on_401_code_42(httpx_mock):
    token_ok(httpx_mock, value="old")
    httpx_mock.add_response(
        url=INIT,
        method="POST",
        status_code=401,
        json={"code": 42, "message": "Expired credentials", "description": "expired"},
    )
    token_ok(httpx_mock, value="new")
    httpx_mock.add_response(url=INIT, method="POST", status_code=201, json=CREATED)
    ctx = context()
    await plugin.initiate(ctx, payment())
    calls = httpx_mock.get_requests(url=INIT)
    assert [c.headers["authorization"] for c in calls] == ["Bearer old", "Bearer new"]
    await ctx.http.aclose()


async def test_401_code_41_is_not_retried(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=INIT,
        method="POST",
        status_code=401,
        json={"code": 41, "message": "Invalid credentials", "description": "bad"},
    )
    ctx = context()
    with pytest.raises(ProviderAuthenticationError) as caught:
        await plugin.initiate(ctx, payment())
    assert caught.value.provider_code == "41"
    assert len(httpx_mock.get_requests(url=WEBPAY_TOKEN)) == 1
    await ctx.http.aclose()


async def test_token_cached_for_expires_in(httpx_mock):
    token_ok(httpx_mock, expires_in=7776000)
    httpx_mock.add_response(
        url=STATUS,
        method="POST",
        status_code=201,
        json={"status": "PENDING", "order_id": "o"},
        is_reusable=True,
    )
    ctx = context()
    p = payment(
        provider_data={
            "family": "webpay",
            "cc": "dev",
            "order_id": "o",
            "pay_token": "t",
            "amount": 1200,
        }
    )
    for _ in range(3):
        assert (await plugin.status(ctx, p)).status == "pending"
    assert len(httpx_mock.get_requests(url=WEBPAY_TOKEN)) == 1
    sent = json.loads(httpx_mock.get_requests(url=STATUS)[0].content)
    assert sent == {"order_id": "o", "amount": 1200, "pay_token": "t"}
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("orange", "ours", "code"),
    [
        ("SUCCESS", "succeeded", None),
        ("FAILED", "failed", "FAILED"),
        ("EXPIRED", "expired", "EXPIRED"),
        ("INITIATED", "pending", None),
    ],
)
async def test_webpay_status_mapping(httpx_mock, orange, ours, code):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=STATUS,
        method="POST",
        status_code=201,
        json={"status": orange, "order_id": "o", "txnid": "MP1"},
    )
    ctx = context()
    p = payment(
        provider_data={
            "family": "webpay",
            "cc": "dev",
            "order_id": "o",
            "pay_token": "t",
            "amount": 1200,
        }
    )
    report = await plugin.status(ctx, p)
    assert report.status == ours
    assert (report.failure.provider_code if report.failure else None) == code
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("prepared_ago", "created_ago", "ours"),
    [
        (30, 30, "pending"),  # within the pay_token's validity: the payer may still pay
        (200, 200, "expired"),  # past it and its margin: never confirmed, cannot be now
        (30, 900, "pending"),  # a queued send prepared late: its validity runs from then
        (None, 200, "expired"),  # prepared before prepared_at was kept: from its creation
    ],
)
async def test_webpay_initiated_past_its_validity_is_expired(
    httpx_mock, prepared_ago, created_ago, ours
):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=STATUS, method="POST", status_code=201, json={"status": "INITIATED", "order_id": "o"}
    )
    ctx = context(webpay_validity=100.0)
    now = dt.datetime.now(dt.UTC)
    data = {"family": "webpay", "cc": "dev", "order_id": "o", "pay_token": "t", "amount": 1200}
    if prepared_ago is not None:
        data["prepared_at"] = (now - dt.timedelta(seconds=prepared_ago)).isoformat()
    p = payment(provider_data=data, created_at=now - dt.timedelta(seconds=created_ago))
    report = await plugin.status(ctx, p)
    assert report.status == ours
    if ours == "expired":
        assert report.failure is not None and report.failure.code == "prompt_expired"
    await ctx.http.aclose()


async def test_webpay_status_without_pay_token_cannot_ask():
    ctx = context()
    with pytest.raises(NotSupported) as caught:
        await plugin.status(ctx, payment(provider_data={"family": "webpay"}))
    assert caught.value.code == "cannot_ask"
    await ctx.http.aclose()


async def test_transport_errors_become_core_errors(httpx_mock):
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=WEBPAY_TOKEN)
    ctx = context()
    with pytest.raises(ProviderUnavailable):
        await plugin.initiate(ctx, payment())
    token_ok(httpx_mock)
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=INIT)
    # webpayment moves no money (the payer approves on Orange's page, whose URL only the
    # answer gives): a timeout of it is "not sent", never an unknown outcome
    with pytest.raises(ProviderUnavailable):
        await plugin.initiate(ctx, payment())
    await ctx.http.aclose()


async def test_unreadable_answers(httpx_mock):
    httpx_mock.add_response(url=WEBPAY_TOKEN, method="POST", text="oops")
    ctx = context()
    with pytest.raises(ProviderUnavailable):
        await plugin.initiate(ctx, payment())
    token_ok(httpx_mock)
    httpx_mock.add_response(url=INIT, method="POST", status_code=201, json={"status": 201})
    with pytest.raises(ProviderUnavailable):  # webpayment moves no money
        await plugin.initiate(ctx, payment())
    await ctx.http.aclose()


def test_validate_rules():
    ctx = context()
    with pytest.raises(NotSupported):
        plugin.validate(ctx, payment(type="disbursement"))
    with pytest.raises(InvalidRequest):
        plugin.validate(ctx, payment(currency="XAF"))
    with pytest.raises(InvalidRequest) as caught:
        plugin.validate(context(return_url="https://x.example/" + "a" * 120), payment())
    assert caught.value.code == "url_too_long"
    with pytest.raises(InvalidRequest):
        plugin.validate(ctx, payment("+237670010000", "XAF"))  # MTN Cameroon range
    with pytest.raises(NotSupported):
        plugin.validate(ctx, payment("+237690010000", "XAF", type="remittance"))
    plugin.validate(ctx, payment("+237690010000", "XAF", type="disbursement"))


# -- callbacks --------------------------------------------------------------------------------


def inbound(ctx, kind: str, body: bytes, payment_id: str | None = None, token: str | None = None):
    url = httpx.URL(ctx.callback_url(kind, payment_id))
    query = dict(url.params)
    if token is not None:
        query["token"] = token
    return InboundCallback(
        provider="orange", kind=kind, method="POST", path=url.path, query=query, body=body
    )


@pytest.mark.parametrize(
    ("status", "ours", "code"), [("SUCCESS", "succeeded", None), ("FAILED", "failed", "FAILED")]
)
async def test_webpay_notification_forms(status, ours, code):
    ctx = context()
    body = json.dumps({"status": status, "notif_token": "nt", "txnid": "MP1"}).encode()
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "callback", body))
    assert outcome.authenticated is False
    assert outcome.reply.status_code == 200
    assert outcome.update.status == ours
    assert outcome.update.provider_reference == client.notif_reference("nt")
    assert (outcome.update.failure.provider_code if outcome.update.failure else None) == code
    await ctx.http.aclose()


async def test_callbacks_with_bad_token_or_body_are_refused():
    ctx = context()
    body = b'{"status": "SUCCESS", "notif_token": "nt"}'
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(ctx, inbound(ctx, "callback", body, token="forged"))
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(ctx, inbound(ctx, "callback", b"{nope"))
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(ctx, inbound(ctx, "status", b'{"status": "X"}', "p1"))
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("status", "message", "ours", "code"),
    [
        ("SUCCESSFULL", "Successful Payment", "succeeded", None),
        ("SUCCESS", "ok", "succeeded", None),
        ("FAILED", "60011 :: Le code PIN saisi est incorrect", "failed", "60011"),
        ("CANCELLED", "Transaction annulee", "failed", "CANCELLED"),
        ("EXPIRED", "", "expired", "EXPIRED"),
        ("PENDING", "", "pending", None),
    ],
)
async def test_cameroon_notification_forms(status, message, ours, code):
    ctx = context()
    body = json.dumps({"payToken": "MP123", "status": status, "message": message}).encode()
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "status", body, "pay-1"))
    assert outcome.update.payment_id == "pay-1"
    assert outcome.update.provider_reference == "MP123"
    assert outcome.update.status == ours
    assert (outcome.update.failure.provider_code if outcome.update.failure else None) == code
    await ctx.http.aclose()


# -- Orange Cameroon --------------------------------------------------------------------------


def cm_token(httpx_mock):
    token_ok(httpx_mock, url=CM_TOKEN, value="cm-tok", expires_in=3600)


async def test_cameroon_initiate_formats_number_amount_and_headers(httpx_mock):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": "MP1"}}
    )
    httpx_mock.add_response(
        url=f"{MP}/pay",
        method="POST",
        json={
            "message": "Merchant payment successfully initiated",
            "data": {
                "payToken": "MP1",
                "txnid": "MP1.1",
                "status": "PENDING",
                "inittxnstatus": "200",
            },
        },
    )
    ctx = context()
    p = payment("+237690010000", "XAF", amount=Decimal(100))
    ack = await plugin.initiate(ctx, p)
    pay = httpx_mock.get_requests(url=f"{MP}/pay")[0]
    sent = json.loads(pay.content)
    assert sent["subscriberMsisdn"] == "690010000" and sent["amount"] == "100"
    assert sent["payToken"] == "MP1" and sent["pin"] == "1234"
    assert f"ref={p.id}" in sent["notifUrl"]
    assert pay.headers["x-auth-token"] == OrangeSettings().cameroon_auth_token
    assert pay.headers["authorization"] == "Bearer cm-tok"
    assert ack.status == "pending" and ack.provider_reference == "MP1"
    assert ack.provider_transaction_id == "MP1.1"
    await ctx.http.aclose()


async def test_cameroon_417_is_declined_with_its_code(httpx_mock):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": "MP1"}}
    )
    httpx_mock.add_response(
        url=f"{MP}/pay",
        method="POST",
        status_code=417,
        json={
            "message": "60019 :: Le solde du compte du payeur est insuffisant",
            "data": {"inittxnstatus": "60019", "status": "FAILED"},
        },
    )
    ctx = context()
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, payment("+237690010001", "XAF"))
    assert caught.value.provider_code == "60019"
    assert caught.value.provider_message == "Le solde du compte du payeur est insuffisant"
    await ctx.http.aclose()


async def test_cameroon_failed_in_a_200_and_missing_paytoken(httpx_mock):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": "MP1"}}
    )
    httpx_mock.add_response(
        url=f"{MP}/pay",
        method="POST",
        json={
            "message": "x",
            "data": {
                "status": "FAILED",
                "inittxnstatus": "60021",
                "inittxnmessage": "Utilisateur bloque",
            },
        },
    )
    ctx = context()
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, payment("+237690010000", "XAF"))
    assert caught.value.provider_code == "60021"
    httpx_mock.add_response(url=f"{MP}/init", method="POST", json={"message": "no", "data": None})
    with pytest.raises(ProviderUnavailable):
        await plugin.initiate(ctx, payment("+237690010000", "XAF"))
    await ctx.http.aclose()


async def test_cameroon_token_refreshed_on_401(httpx_mock):
    token_ok(httpx_mock, url=CM_TOKEN, value="old", expires_in=3600)
    httpx_mock.add_response(
        url=f"{MP}/paymentstatus/MP1",
        status_code=401,
        json={
            "fault": {"code": 900901, "message": "Invalid Credentials", "description": "expired"}
        },
    )
    token_ok(httpx_mock, url=CM_TOKEN, value="new", expires_in=3600)
    httpx_mock.add_response(
        url=f"{MP}/paymentstatus/MP1",
        json={
            "message": "ok",
            "data": {
                "payToken": "MP1",
                "status": "SUCCESSFULL",
                "txnid": "T1",
                "confirmtxnstatus": "200",
            },
        },
    )
    ctx = context()
    report = await plugin.status(
        ctx,
        payment(
            "+237690010000", "XAF", provider_reference="MP1", provider_data={"family": "cameroon"}
        ),
    )
    assert report.status == "succeeded" and report.provider_transaction_id == "T1"
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("data", "ours", "code"),
    [
        (
            {"status": "FAILED", "confirmtxnstatus": "60011", "confirmtxnmessage": "PIN"},
            "failed",
            "60011",
        ),
        ({"status": "CANCELLED", "confirmtxnstatus": None}, "failed", "CANCELLED"),
        ({"status": "EXPIRED"}, "expired", "EXPIRED"),
        ({"status": "PENDING"}, "pending", None),
    ],
)
async def test_cameroon_status_mapping(httpx_mock, data, ours, code):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{BASE}/omcoreapis/1.0.2/cashin/paymentstatus/CI1",
        json={"message": "ok", "data": {"payToken": "CI1", **data}},
    )
    ctx = context()
    p = payment(
        "+237690010000",
        "XAF",
        provider_data={"family": "cameroon", "kind": "cashin", "pay_token": "CI1"},
    )
    report = await plugin.status(ctx, p)
    assert report.status == ours
    assert (report.failure.provider_code if report.failure else None) == code
    await ctx.http.aclose()


async def test_cameroon_prepare_takes_a_paytoken_once(httpx_mock):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": "MP7"}}
    )
    ctx = context()
    p = payment("+237690010000", "XAF")
    prepared = await plugin.prepare(ctx, p)
    assert prepared.provider_reference == "MP7"
    assert prepared.provider_data == {"family": "cameroon", "kind": "mp", "pay_token": "MP7"}
    # a payment that holds its payToken is not given another
    held = msgspec.structs.replace(p, provider_data=prepared.provider_data)
    assert await plugin.prepare(ctx, held) is None
    assert len(httpx_mock.get_requests(url=f"{MP}/init")) == 1
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("status_code", "body", "error"),
    [
        # Orange's own words: a payToken with no pay received, or one it never issued
        (200, {"message": "ok", "data": {"payToken": "MP7", "status": "INITIATED"}}, "unknown"),
        (404, {"message": "Transaction introuvable", "data": None}, "unknown"),
        # the API gateway's fault (a wrong base URL or version) says nothing of the payment
        (404, {"fault": {"code": 900906, "message": "No matching resource"}}, "invalid"),
    ],
)
async def test_cameroon_status_unknown_to_orange(httpx_mock, status_code, body, error):
    cm_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{MP}/paymentstatus/MP7", method="GET", status_code=status_code, json=body
    )
    ctx = context()
    p = payment("+237690010000", "XAF", provider_data={"family": "cameroon", "pay_token": "MP7"})
    expected = UnknownToOperator if error == "unknown" else InvalidRequest
    with pytest.raises(expected):
        await plugin.status(ctx, p)
    await ctx.http.aclose()


async def test_cameroon_status_without_paytoken():
    ctx = context()
    with pytest.raises(NotSupported) as caught:
        await plugin.status(ctx, payment("+237690010000", "XAF"))
    assert caught.value.code == "cannot_ask"
    await ctx.http.aclose()


# -- resend_prompt (Cameroon mp/push) --------------------------------------------------------

PUSHED = {
    "message": "Push sent to customer",
    "data": {"payToken": "MP9", "status": "PENDING", "inittxnstatus": "200", "txnid": "MP1.2"},
}


def cm_payment(**changes) -> Payment:
    values = {
        "status": "pending",
        "provider_reference": "MP9",
        "provider_data": {"family": "cameroon", "kind": "mp", "pay_token": "MP9"},
    } | changes
    return payment("+237690010000", "XAF", **values)


async def test_resend_prompt_pushes_the_pay_token_with_both_credentials(httpx_mock):
    cm_token(httpx_mock)
    httpx_mock.add_response(url=f"{MP}/push/MP9", method="GET", json=PUSHED)
    ctx = context()
    assert await plugin.resend_prompt(ctx, cm_payment()) is None
    request = httpx_mock.get_requests(url=f"{MP}/push/MP9")[0]
    assert request.headers["authorization"] == "Bearer cm-tok"
    assert request.headers["x-auth-token"] == OrangeSettings().cameroon_auth_token
    assert request.content == b""
    await ctx.http.aclose()


async def test_resend_prompt_takes_the_reference_when_no_pay_token_is_stored(httpx_mock):
    cm_token(httpx_mock)
    # a plain-text answer (older gateways) is accepted as well: only the status counts
    httpx_mock.add_response(url=f"{MP}/push/MP7", method="GET", text="Push sent to customer")
    ctx = context()
    p = payment("+237690010000", "XAF", provider_reference="MP7", status="pending")
    await plugin.resend_prompt(ctx, p)
    assert len(httpx_mock.get_requests(url=f"{MP}/push/MP7")) == 1
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "provider_code"),
    [
        (
            417,
            {
                "message": "60100 :: Transaction deja effectuee",
                "data": {"payToken": "MP9", "status": "SUCCESSFULL"},
            },
            InvalidRequest,
            "not_pending",
            "60100",
        ),
        (
            417,
            {
                "message": "60101 :: Transaction expiree",
                "data": {"payToken": "MP9", "status": "EXPIRED"},
            },
            InvalidRequest,
            "not_pending",
            "60101",
        ),
        (
            404,
            {"message": "PayToken introuvable", "data": None},
            InvalidRequest,
            "not_found",
            "404",
        ),
        (
            400,
            {"message": "Aucun paiement initie pour ce payToken", "data": None},
            InvalidRequest,
            "invalid_request",
            "400",
        ),
        (
            403,
            {"message": "Invalid X-AUTH-TOKEN", "data": None},
            ProviderAuthenticationError,
            "provider_authentication_failed",
            "403",
        ),
        (
            503,
            {"fault": {"code": 101503, "message": "Runtime Error", "description": "x"}},
            ProviderUnavailable,
            None,
            "101503",
        ),
    ],
)
async def test_resend_prompt_refusals(httpx_mock, status, body, error, code, provider_code):
    cm_token(httpx_mock)
    httpx_mock.add_response(url=f"{MP}/push/MP9", method="GET", status_code=status, json=body)
    ctx = context()
    with pytest.raises(error) as caught:
        await plugin.resend_prompt(ctx, cm_payment())
    if code is not None:
        assert caught.value.code == code
    assert caught.value.provider_code == provider_code
    assert caught.value.provider_message
    await ctx.http.aclose()


async def test_resend_prompt_refreshes_an_expired_token_once(httpx_mock):
    token_ok(httpx_mock, url=CM_TOKEN, value="old", expires_in=3600)
    httpx_mock.add_response(
        url=f"{MP}/push/MP9",
        method="GET",
        status_code=401,
        json={"fault": {"code": 900901, "message": "Invalid Credentials", "description": "x"}},
    )
    token_ok(httpx_mock, url=CM_TOKEN, value="new", expires_in=3600)
    httpx_mock.add_response(url=f"{MP}/push/MP9", method="GET", json=PUSHED)
    ctx = context()
    await plugin.resend_prompt(ctx, cm_payment())
    pushes = httpx_mock.get_requests(url=f"{MP}/push/MP9")
    assert [r.headers["authorization"] for r in pushes] == ["Bearer old", "Bearer new"]
    await ctx.http.aclose()


@pytest.mark.parametrize(
    ("p", "error", "words"),
    [
        (
            payment(status="pending", provider_data={"family": "webpay", "pay_token": "pt"}),
            NotSupported,
            "WebPay",
        ),
        (
            payment(
                "+221771234567",
                status="pending",
                provider_data={"family": "sonatel", "transaction_id": "MP1"},
            ),
            NotSupported,
            "Sonatel",
        ),
        (
            payment(
                "+237690010000",
                "XAF",
                type="disbursement",
                status="pending",
                provider_data={"family": "cameroon", "kind": "cashin", "pay_token": "CI1"},
            ),
            NotSupported,
            "merchant payments",
        ),
        (cm_payment(status="succeeded"), InvalidRequest, "succeeded"),
        (cm_payment(status="expired"), InvalidRequest, "expired"),
        (
            payment("+237690010000", "XAF", status="pending"),
            InvalidRequest,
            "no Orange payToken",
        ),
    ],
)
async def test_resend_prompt_refused_before_any_call(p, error, words):
    # no httpx_mock responses: any request would fail the test
    ctx = context()
    with pytest.raises(error) as caught:
        await plugin.resend_prompt(ctx, p)
    assert words in caught.value.message
    assert caught.value.provider == "orange"
    await ctx.http.aclose()


async def test_resend_prompt_by_country_when_provider_data_has_no_family():
    ctx = context()
    with pytest.raises(NotSupported):
        await plugin.resend_prompt(ctx, payment(status="pending"))  # CI: WebPay
    await ctx.http.aclose()


async def test_health_reports_failures(httpx_mock):
    httpx_mock.add_response(
        url=WEBPAY_TOKEN,
        method="POST",
        status_code=401,
        json={"code": 41, "message": "Invalid credentials", "description": "x"},
    )
    ctx = context(families="")
    report = await plugin.health(ctx)
    assert not report.ok
    assert "provider_authentication_failed" in report.detail
    await ctx.http.aclose()
