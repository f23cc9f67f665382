"""Unit tests of the MTN MoMo client and hooks against mocked HTTP (pytest-httpx)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.callbacks import callback_token
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.testing import make_context
from mmo_core.types import InboundCallback, Payment
from mmo_mtn_momo import client, plugin
from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.wire import Transaction
from pytest_httpx import HTTPXMock

BASE = "https://momo.test"
PUBLIC = "https://gw.example.com"
SECRET = "unit-secret"
TOKEN_URL = f"{BASE}/collection/token/"
RTP_URL = f"{BASE}/collection/v1_0/requesttopay"


def context(**settings):
    values = {"callback_delay": 0.0, **settings}
    return make_context(
        plugin.DECLARATION,
        msgspec.convert(values, MtnMomoSettings, strict=False),
        base_url=BASE,
        public_url=PUBLIC,
        callback_secret=SECRET,
    )


def payment(kind: str = "collection", **changes) -> Payment:
    values = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "amount": Decimal("1500"),
        "currency": "EUR",
        "msisdn": "+46733123451",
        "reference": "ord-1001",
        "country": "SE",
        "description": "Order 1001",
    }
    values.update(changes)
    return Payment(**values)


def token_ok(httpx_mock: HTTPXMock, product: str = "collection", value: str = "tok-1") -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/{product}/token/",
        json={"access_token": value, "token_type": "access_token", "expires_in": 3600},
    )


# -- formatting ------------------------------------------------------------------------------


def test_amount_msisdn_and_text_formats() -> None:
    assert client.amount_text(Decimal("1500.00")) == "1500"
    assert client.amount_text(Decimal("12.50")) == "12.5"
    assert client.msisdn("+46733123450") == "46733123450"


def test_declaration_markets_follow_target_environments() -> None:
    decl = plugin.mmo_provider()
    assert decl.serves("UG", "UGX") and decl.serves("GH", "GHS") and decl.serves("RW", "RWF")
    assert decl.serves("SE", "EUR") and decl.serves("CL", "EUR")
    assert not decl.serves("UG", "EUR")
    assert not decl.serves("UG", "GHS")
    assert decl.webhook_path == "mtn-momo"
    assert decl.webhook_kinds == ("collection", "disbursement", "remittance", "refund")
    assert "reversal" in decl.operations


def test_validate_checks_the_environment_currency() -> None:
    plugin.validate(context(), payment())
    with pytest.raises(InvalidRequest):
        plugin.validate(context(), payment(currency="UGX"))
    plugin.validate(context(target_environment="mtnuganda"), payment(currency="UGX"))
    with pytest.raises(InvalidRequest):
        plugin.validate(context(target_environment="mtnmars"), payment())


def test_the_default_sandbox_sends_each_country_to_its_target_environment() -> None:
    """Against the gateway's simulator a Ugandan payment goes to mtnuganda (so UGX is
    taken); MTN's own sandbox (a base URL) and a configured environment are kept."""
    assert client.target_environment(context(), "UG") == "mtnuganda"
    assert client.target_environment(context(), "CM") == "mtncameroon"
    assert client.target_environment(context(), "SE") == "sandbox"
    assert client.target_environment(context()) == "sandbox"
    mtn_sandbox = context(base_url="https://sandbox.momodeveloper.mtn.com")
    assert client.target_environment(mtn_sandbox, "UG") == "sandbox"
    with pytest.raises(InvalidRequest):
        plugin.validate(mtn_sandbox, payment(currency="UGX", msisdn="+256772345678", country="UG"))
    plugin.validate(context(), payment(currency="UGX", msisdn="+256772345678", country="UG"))
    assert client.target_environment(context(target_environment="mtnghana"), "UG") == "mtnghana"
    renamed = context(country_environments="UG=mtnrwanda")
    assert client.target_environment(renamed, "UG") == "mtnrwanda"


# -- the one translation of errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (400, {"code": "REQUEST_REJECTED", "message": "bad"}, InvalidRequest, "REQUEST_REJECTED"),
        (400, None, InvalidRequest, "REQUEST_REJECTED"),
        (
            401,
            {"statusCode": 401, "message": "Access denied"},
            ProviderAuthenticationError,
            "ACCESS_DENIED",
        ),
        (403, None, ProviderAuthenticationError, "FORBIDDEN_IP"),
        (404, {"code": "RESOURCE_NOT_FOUND", "message": "x"}, InvalidRequest, "RESOURCE_NOT_FOUND"),
        (
            409,
            {"code": "RESOURCE_ALREADY_EXIST", "message": "d"},
            InvalidRequest,
            "RESOURCE_ALREADY_EXIST",
        ),
        (429, None, RateLimited, "HTTP_429"),
        (500, {"error": "login_failed"}, ProviderAuthenticationError, "login_failed"),
        (401, {"error": "login_failed"}, ProviderAuthenticationError, "login_failed"),
        (
            500,
            {"code": "NOT_ALLOWED_TARGET_ENVIRONMENT", "message": "f"},
            ProviderAuthenticationError,
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
        ),
        (
            500,
            {"code": "INVALID_CALLBACK_URL_HOST", "message": "h"},
            InvalidRequest,
            "INVALID_CALLBACK_URL_HOST",
        ),
        (
            500,
            {"code": "INVALID_CURRENCY", "message": "Currency not supported."},
            InvalidRequest,
            "INVALID_CURRENCY",
        ),
        (
            500,
            {"code": "INTERNAL_PROCESSING_ERROR", "message": "i"},
            OutcomeUnknown,
            "INTERNAL_PROCESSING_ERROR",
        ),
        (
            500,
            {"code": "SERVICE_UNAVAILABLE", "message": "s"},
            ProviderUnavailable,
            "SERVICE_UNAVAILABLE",
        ),
        (503, None, ProviderUnavailable, "HTTP_503"),
        (502, None, ProviderUnavailable, "HTTP_502"),
        (504, None, OutcomeUnknown, "HTTP_504"),
        (500, {"code": "PAYER_NOT_FOUND", "message": "p"}, OperatorDeclined, "PAYER_NOT_FOUND"),
        (500, {"code": "PAYEE_NOT_FOUND", "message": "p"}, OperatorDeclined, "PAYEE_NOT_FOUND"),
        (500, {"code": "NOT_ALLOWED", "message": "n"}, OperatorDeclined, "NOT_ALLOWED"),
        (500, {"code": "NOT_ENOUGH_FUNDS", "message": "n"}, OperatorDeclined, "NOT_ENOUGH_FUNDS"),
        (
            500,
            {"code": "PAYER_LIMIT_REACHED", "message": "n"},
            OperatorDeclined,
            "PAYER_LIMIT_REACHED",
        ),
        (
            500,
            {"code": "PAYEE_NOT_ALLOWED_TO_RECEIVE", "message": "n"},
            OperatorDeclined,
            "PAYEE_NOT_ALLOWED_TO_RECEIVE",
        ),
        (
            500,
            {"code": "SENDER_ACCOUNT_NOT_ACTIVE", "message": "n"},
            OperatorDeclined,
            "SENDER_ACCOUNT_NOT_ACTIVE",
        ),
        (
            500,
            {"code": "COULD_NOT_PERFORM_TRANSACTION"},
            OperatorDeclined,
            "COULD_NOT_PERFORM_TRANSACTION",
        ),
    ],
)
def test_raise_for_maps_every_documented_error(status, body, error, code) -> None:
    content = json.dumps(body).encode() if body is not None else b"<html>oops</html>"
    response = httpx.Response(status, content=content)
    with pytest.raises(error) as caught:
        client.raise_for(response, "initiate")
    assert caught.value.provider_code == code
    assert caught.value.provider_message
    assert caught.value.provider == "mtn_momo"


def test_raise_for_lets_success_through() -> None:
    client.raise_for(httpx.Response(202), "initiate")


# -- statuses and reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "SUCCESSFUL", "financialTransactionId": "600198217"}, "succeeded", None),
        ({"status": "PENDING"}, "pending", None),
        ({"status": "CREATED"}, "pending", None),
        ({"status": "ONGOING"}, "pending", None),
        ({"status": "FAILED", "reason": "APPROVAL_REJECTED"}, "failed", "APPROVAL_REJECTED"),
        ({"status": "FAILED", "reason": "NOT_ENOUGH_FUNDS"}, "failed", "NOT_ENOUGH_FUNDS"),
        ({"status": "FAILED", "reason": "PAYER_NOT_FOUND"}, "failed", "PAYER_NOT_FOUND"),
        (
            {"status": "FAILED", "reason": "INTERNAL_PROCESSING_ERROR"},
            "failed",
            "INTERNAL_PROCESSING_ERROR",
        ),
        ({"status": "FAILED", "reason": "EXPIRED"}, "expired", "EXPIRED"),
        (
            {"status": "FAILED", "reason": "COULD_NOT_PERFORM_TRANSACTION"},
            "expired",
            "COULD_NOT_PERFORM_TRANSACTION",
        ),
        (
            {
                "status": "FAILED",
                "reason": {"code": "PAYER_NOT_FOUND", "message": "Payer not found"},
            },
            "failed",
            "PAYER_NOT_FOUND",
        ),
        ({"status": "FAILED", "reason": "SOMETHING_NEW"}, "failed", "SOMETHING_NEW"),
        ({"status": "FAILED"}, "failed", "FAILED"),
        ({"status": "REJECTED"}, "failed", "REJECTED"),
        ({"status": "TIMEOUT"}, "expired", "TIMEOUT"),
    ],
)
def test_outcome_of_every_status_and_reason(body, status, code) -> None:
    state, failure = client.outcome(msgspec.convert(body, Transaction))
    assert state == status
    assert (failure.provider_code if failure else None) == code
    if isinstance(body.get("reason"), dict):
        assert failure.message == "Payer not found"


# -- tokens ---------------------------------------------------------------------------------------


async def test_token_is_fetched_once_with_basic_auth_and_cached(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    assert await client.token(ctx, "collection") == "tok-1"
    assert await client.token(ctx, "collection") == "tok-1"
    (request,) = httpx_mock.get_requests()
    settings = ctx.settings
    expected = base64.b64encode(
        f"{settings.collection_api_user}:{settings.collection_api_key}".encode()
    ).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["ocp-apim-subscription-key"] == settings.collection_subscription_key


async def test_tokens_are_per_product(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, "collection", "tok-c")
    token_ok(httpx_mock, "disbursement", "tok-d")
    assert await client.token(ctx, "collection") == "tok-c"
    assert await client.token(ctx, "disbursement") == "tok-d"
    disb = httpx_mock.get_requests()[1]
    assert disb.headers["ocp-apim-subscription-key"] == ctx.settings.disbursement_subscription_key


async def test_bad_credentials_are_an_authentication_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKEN_URL, status_code=500, json={"error": "login_failed"})
    with pytest.raises(ProviderAuthenticationError):
        await client.token(context(), "collection")


async def test_unreadable_token_answer(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKEN_URL, text="not json")
    with pytest.raises(OutcomeUnknown):
        await client.token(context(), "collection")


async def test_token_transport_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectTimeout("slow"), url=TOKEN_URL)
    with pytest.raises(ProviderTimeout):
        await client.token(context(), "collection")


async def test_expired_token_is_refreshed_once(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, value="old")
    token_ok(httpx_mock, value="new")
    p = payment()
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=401,
        json={"statusCode": 401, "message": "expired"},
    )
    httpx_mock.add_response(
        method="GET", url=f"{RTP_URL}/{p.id}", json={"status": "PENDING", "amount": "1500"}
    )
    report = await plugin.status(ctx, p)
    assert report.status == "pending"
    gets = [r for r in httpx_mock.get_requests() if r.method == "GET"]
    assert [r.headers["authorization"] for r in gets] == ["Bearer old", "Bearer new"]
    assert all(r.headers["x-target-environment"] == "sandbox" for r in gets)


async def test_token_refused_twice_is_an_authentication_error(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, value="a")
    token_ok(httpx_mock, value="b")
    p = payment()
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=401,
        json={"statusCode": 401, "message": "no"},
        is_reusable=True,
    )
    with pytest.raises(ProviderAuthenticationError):
        await plugin.status(ctx, p)


# -- initiate -------------------------------------------------------------------------------------


async def test_request_to_pay_headers_and_body(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    httpx_mock.add_response(method="POST", url=RTP_URL, status_code=202)
    p = payment(description="Tom's order & more")
    result = await plugin.initiate(ctx, p)
    assert result.status == "pending"
    assert result.provider_reference == p.id
    assert result.provider_data == {
        "product": "collection",
        "mode": "requesttopay",
        "accepted": True,
    }
    request = httpx_mock.get_requests()[-1]
    assert request.headers["x-reference-id"] == p.id
    assert request.headers["x-target-environment"] == "sandbox"
    assert request.headers["authorization"] == "Bearer tok-1"
    callback = request.headers["x-callback-url"]
    assert callback.startswith(f"{PUBLIC}/api/v1/webhooks/mtn-momo/collection?ref={p.id}&token=")
    body = json.loads(request.content)
    assert body == {
        "amount": "1500",
        "currency": "EUR",
        "externalId": "ord-1001",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123451"},
        "payerMessage": "Tom s order and more",
        "payeeNote": "ord-1001",
    }


@pytest.mark.parametrize("kind", ["disbursement", "remittance"])
async def test_transfer_uses_payee_and_its_product(httpx_mock: HTTPXMock, kind: str) -> None:
    ctx = context()
    token_ok(httpx_mock, kind)
    httpx_mock.add_response(method="POST", url=f"{BASE}/{kind}/v1_0/transfer", status_code=202)
    p = payment(kind)
    result = await plugin.initiate(ctx, p)
    assert result.provider_data["product"] == kind
    request = httpx_mock.get_requests()[-1]
    assert json.loads(request.content)["payee"] == {
        "partyIdType": "MSISDN",
        "partyId": "46733123451",
    }
    assert f"/webhooks/mtn-momo/{kind}?" in request.headers["x-callback-url"]


async def test_lost_answer_is_resent_with_same_reference_and_409_confirmed(
    httpx_mock: HTTPXMock,
) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_exception(httpx.ReadTimeout("lost"), method="POST", url=RTP_URL)
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=409,
        json={
            "code": "RESOURCE_ALREADY_EXIST",
            "message": "Duplicated reference id. Creation of resource failed.",
        },
    )
    httpx_mock.add_response(
        method="GET", url=f"{RTP_URL}/{p.id}", json={"status": "PENDING", "amount": "1500"}
    )
    result = await plugin.initiate(ctx, p)
    assert result.status == "pending" and result.provider_reference == p.id
    posts = [r for r in httpx_mock.get_requests() if r.method == "POST" and r.url == RTP_URL]
    assert len(posts) == 2
    assert {r.headers["x-reference-id"] for r in posts} == {p.id}
    assert posts[0].content == posts[1].content


async def test_409_confirmed_as_succeeded(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=409,
        json={"code": "RESOURCE_ALREADY_EXIST", "message": "d"},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        json={"status": "SUCCESSFUL", "financialTransactionId": "600198217", "amount": "1500"},
    )
    result = await plugin.initiate(ctx, p)
    assert result.status == "succeeded"
    assert result.provider_transaction_id == "600198217"


async def test_409_confirmed_as_failed_is_declined(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=409,
        json={"code": "RESOURCE_ALREADY_EXIST", "message": "d"},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        json={"status": "FAILED", "reason": "APPROVAL_REJECTED"},
    )
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, p)
    assert caught.value.provider_code == "APPROVAL_REJECTED"


async def test_409_not_readable_is_unknown(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=409,
        json={"code": "RESOURCE_ALREADY_EXIST", "message": "d"},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "x"},
    )
    with pytest.raises(OutcomeUnknown):
        await plugin.initiate(ctx, p)


async def test_resends_stop_after_the_configured_attempts(httpx_mock: HTTPXMock) -> None:
    ctx = context(resend_attempts=1)
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=500,
        json={"code": "INTERNAL_PROCESSING_ERROR", "message": "i"},
        is_reusable=True,
    )
    with pytest.raises(OutcomeUnknown) as caught:
        await plugin.initiate(ctx, payment())
    assert caught.value.provider_code == "INTERNAL_PROCESSING_ERROR"
    assert len([r for r in httpx_mock.get_requests() if r.url == RTP_URL]) == 2


async def test_definite_refusal_is_not_resent(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=RTP_URL,
        status_code=500,
        json={"code": "PAYER_NOT_FOUND", "message": "p"},
    )
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, payment())
    assert caught.value.provider_code == "PAYER_NOT_FOUND"
    assert len([r for r in httpx_mock.get_requests() if r.url == RTP_URL]) == 1


# -- status ---------------------------------------------------------------------------------------


async def test_status_reads_failed_reason_and_amount(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment(
        status="pending", provider_reference=str(uuid.uuid4()), provider_data={"accepted": True}
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.provider_reference}",
        json={"status": "FAILED", "reason": "NOT_ENOUGH_FUNDS", "amount": "1500"},
    )
    report = await plugin.status(ctx, p)
    assert report.status == "failed"
    assert report.failure.provider_code == "NOT_ENOUGH_FUNDS"
    assert report.amount == Decimal(1500)


async def test_status_404_after_202_is_pending_not_failed(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment(status="pending", provider_reference=None, provider_data={"accepted": True})
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "x"},
    )
    assert (await plugin.status(ctx, p)).status == "pending"


async def test_status_404_without_202_is_unknown(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment(status="unknown")
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "x"},
    )
    with pytest.raises(UnknownToOperator) as caught:
        await plugin.status(ctx, p)
    assert caught.value.provider_code == "RESOURCE_NOT_FOUND"


async def test_status_of_transfer_and_unreadable_body(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, "remittance")
    p = payment("remittance")
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/remittance/v1_0/transfer/{p.id}", text="garbage"
    )
    with pytest.raises(OutcomeUnknown):
        await plugin.status(ctx, p)


async def test_status_transport_error(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_exception(httpx.ConnectError("down"), method="GET", url=f"{RTP_URL}/{p.id}")
    with pytest.raises(ProviderUnavailable):
        await plugin.status(ctx, p)


# -- callbacks ------------------------------------------------------------------------------------


def inbound(
    kind: str,
    body: dict | bytes,
    payment_id: str | None,
    *,
    token: str | None = None,
    method: str = "PUT",
) -> InboundCallback:
    query = {"ref": payment_id} if payment_id else {}
    query["token"] = token or callback_token(SECRET, "mtn_momo", kind, payment_id)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundCallback(
        provider="mtn_momo",
        kind=kind,
        method=method,
        path=f"/api/v1/webhooks/mtn-momo/{kind}",
        query=query,
        body=raw,
    )


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_callback_successful(method: str) -> None:
    pid = str(uuid.uuid4())
    body = {
        "financialTransactionId": "600198217",
        "externalId": "ord-1001",
        "amount": "1500",
        "currency": "EUR",
        "payer": {"partyIdType": "MSISDN", "partyId": "56733123453"},
        "payerMessage": "m",
        "payeeNote": "n",
        "status": "SUCCESSFUL",
    }
    outcome = await plugin.parse_callback(
        context(), inbound("collection", body, pid, method=method)
    )
    assert outcome.authenticated is False
    assert outcome.reply.status_code == 200
    update = outcome.update
    assert update.status == "succeeded"
    assert update.payment_id == pid
    assert update.provider_transaction_id == "600198217"
    assert update.amount == Decimal(1500)
    assert update.msisdn == "+56733123453"


@pytest.mark.parametrize(
    ("reason", "status", "code"),
    [
        ("APPROVAL_REJECTED", "failed", "APPROVAL_REJECTED"),
        ({"code": "PAYER_NOT_FOUND", "message": "Payer not found"}, "failed", "PAYER_NOT_FOUND"),
        ("EXPIRED", "expired", "EXPIRED"),
    ],
)
async def test_callback_failed_keeps_reason(reason, status, code) -> None:
    pid = str(uuid.uuid4())
    body = {
        "externalId": "ord-1001",
        "amount": "1500",
        "currency": "EUR",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123451"},
        "payeeNote": "n",
        "status": "FAILED",
        "reason": reason,
    }
    outcome = await plugin.parse_callback(context(), inbound("collection", body, pid))
    assert outcome.update.status == status
    assert outcome.update.failure.provider_code == code


async def test_transfer_callback_has_payee() -> None:
    pid = str(uuid.uuid4())
    body = {
        "amount": "59",
        "currency": "EUR",
        "externalId": "pay-77",
        "payee": {"partyIdType": "MSISDN", "partyId": "46701234567"},
        "status": "SUCCESSFUL",
    }
    outcome = await plugin.parse_callback(
        context(), inbound("disbursement", body, pid, method="POST")
    )
    assert outcome.update.msisdn == "+46701234567"
    assert outcome.update.status == "succeeded"


async def test_callback_pending_and_non_msisdn_party() -> None:
    pid = str(uuid.uuid4())
    body = {"status": "CREATED", "payer": {"partyIdType": "EMAIL", "partyId": "a@b.c"}}
    outcome = await plugin.parse_callback(context(), inbound("collection", body, pid))
    assert outcome.update.status == "pending"
    assert outcome.update.msisdn is None and outcome.update.amount is None


async def test_callback_with_unreadable_msisdn_keeps_none() -> None:
    pid = str(uuid.uuid4())
    body = {"status": "SUCCESSFUL", "payer": {"partyIdType": "MSISDN", "partyId": "12"}}
    outcome = await plugin.parse_callback(context(), inbound("collection", body, pid))
    assert outcome.update.msisdn is None


async def test_callback_without_ref_updates_nothing() -> None:
    outcome = await plugin.parse_callback(
        context(), inbound("collection", {"status": "SUCCESSFUL"}, None)
    )
    assert outcome.update is None


async def test_forged_wrong_kind_and_malformed_callbacks() -> None:
    pid = str(uuid.uuid4())
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(
            context(), inbound("collection", {"status": "SUCCESSFUL"}, pid, token="forged")
        )
    # a token for one payment does not vouch for another
    other = inbound("collection", {"status": "SUCCESSFUL"}, pid)
    moved = msgspec.structs.replace(other, query={**other.query, "ref": str(uuid.uuid4())})
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(context(), moved)
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(context(), inbound("widget", {"status": "SUCCESSFUL"}, pid))
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(context(), inbound("collection", b"{not json", pid))


# -- health, balance, lookup, setup ---------------------------------------------------------------


async def test_health(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    assert (await plugin.health(context())).ok
    httpx_mock.add_response(url=TOKEN_URL, status_code=500, json={"error": "login_failed"})
    report = await plugin.health(context())
    assert not report.ok and "login_failed" in report.detail


async def test_balance_of_every_configured_product(httpx_mock: HTTPXMock) -> None:
    ctx = context(remittance_api_key="")
    for product, amount in (("collection", "1000"), ("disbursement", "25.5")):
        token_ok(httpx_mock, product)
        httpx_mock.add_response(
            url=f"{BASE}/{product}/v1_0/account/balance",
            json={"availableBalance": amount, "currency": "EUR"},
        )
    report = await plugin.balance(ctx)
    assert [(b.account, b.available, b.currency) for b in report.balances] == [
        ("collection", Decimal(1000), "EUR"),
        ("disbursement", Decimal("25.5"), "EUR"),
    ]


async def test_balance_error(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{BASE}/collection/v1_0/account/balance",
        status_code=500,
        json={"code": "NOT_ALLOWED", "message": "n"},
    )
    with pytest.raises(OperatorDeclined):
        await plugin.balance(context())


HOLDER = f"{BASE}/collection/v1_0/accountholder/msisdn/46701234567"


async def test_lookup_active_holder_with_name(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    httpx_mock.add_response(url=f"{HOLDER}/active", json={"result": True})
    httpx_mock.add_response(
        url=f"{HOLDER}/basicuserinfo",
        json={"given_name": "Sand", "family_name": "Box", "locale": "sv_SE", "status": "ACTIVE"},
    )
    info = await plugin.lookup_account(context(), "+46701234567")
    assert info.active and info.name == "Sand Box"
    assert info.details == {"locale": "sv_SE", "status": "ACTIVE"}


async def test_lookup_inactive_unknown_and_no_info(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    ctx = context()
    httpx_mock.add_response(url=f"{HOLDER}/active", json={"result": False})
    assert not (await plugin.lookup_account(ctx, "+46701234567")).active
    httpx_mock.add_response(
        url=f"{HOLDER}/active", status_code=404, json={"code": "RESOURCE_NOT_FOUND", "message": "x"}
    )
    assert not (await plugin.lookup_account(ctx, "+46701234567")).active
    httpx_mock.add_response(url=f"{HOLDER}/active", json={"result": True})
    httpx_mock.add_response(
        url=f"{HOLDER}/basicuserinfo",
        status_code=500,
        json={"code": "INTERNAL_PROCESSING_ERROR", "message": "i"},
    )
    info = await plugin.lookup_account(ctx, "+46701234567")
    assert info.active and info.name is None


async def test_lookup_error(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{HOLDER}/active", status_code=500, json={"code": "NOT_ALLOWED", "message": "n"}
    )
    with pytest.raises(OperatorDeclined):
        await plugin.lookup_account(context(), "+46701234567")


async def test_setup_creates_user_and_key_per_product(httpx_mock: HTTPXMock) -> None:
    ctx = context(remittance_subscription_key="")
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/v1_0/apiuser", status_code=201, is_reusable=True
    )
    httpx_mock.add_response(
        method="POST",
        url=re.compile(rf"{BASE}/v1_0/apiuser/[0-9a-f-]+/apikey"),
        status_code=201,
        json={"apiKey": "f" * 32},
        is_reusable=True,
    )
    report = await plugin.setup(ctx)
    assert set(report.settings) >= {
        "MMO_MTN_MOMO_COLLECTION_API_USER",
        "MMO_MTN_MOMO_DISBURSEMENT_API_USER",
    }
    assert "MMO_MTN_MOMO_REMITTANCE_API_USER" not in report.settings
    creates = [r for r in httpx_mock.get_requests() if r.url.path == "/v1_0/apiuser"]
    assert json.loads(creates[0].content) == {"providerCallbackHost": "gw.example.com"}
    assert uuid.UUID(creates[0].headers["x-reference-id"]).version == 4


async def test_setup_errors_and_production() -> None:
    report = await plugin.setup(context(target_environment="mtnuganda"))
    assert "Partner Portal" in report.lines[0] and report.settings == {}


async def test_setup_refused_key_and_transport_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/v1_0/apiuser",
        status_code=401,
        json={"statusCode": 401, "message": "Access denied"},
    )
    with pytest.raises(ProviderAuthenticationError):
        await plugin.setup(context())
    httpx_mock.add_exception(httpx.ConnectError("down"), method="POST", url=f"{BASE}/v1_0/apiuser")
    with pytest.raises(ProviderUnavailable):
        await plugin.setup(context())


# -- the core's operator client, as MoMo uses it ---------------------------------------------------


async def test_health_reaches_momo_even_with_a_cached_token(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, value="tok-1")
    token_ok(httpx_mock, value="tok-2")
    assert await client.token(ctx, "collection") == "tok-1"
    report = await plugin.health(ctx)
    assert report.ok and report.latency_ms is not None
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert await client.token(ctx, "collection") == "tok-2"


async def test_rate_limit_carries_momos_retry_after(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_response(
        method="GET",
        url=f"{RTP_URL}/{p.id}",
        status_code=429,
        headers={"Retry-After": "17"},
        json={"code": "TOO_MANY_REQUESTS", "message": "slow down"},
    )
    with pytest.raises(RateLimited) as caught:
        await plugin.status(ctx, msgspec.structs.replace(p, provider_data={"accepted": True}))
    assert caught.value.retry_after == 17.0


async def test_a_lost_status_answer_is_unavailable_not_unknown(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    httpx_mock.add_exception(httpx.ReadTimeout("lost"), method="GET", url=f"{RTP_URL}/{p.id}")
    with pytest.raises(ProviderUnavailable) as caught:
        await plugin.status(ctx, p)
    assert not isinstance(caught.value, OutcomeUnknown)
