"""Unit tests of the Senegal (Sonatel) family with pytest-httpx: bodies, PIN, errors."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mmo_core.errors import (
    CallbackVerificationFailed,
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
from mmo_orange import client, plugin
from mmo_orange.settings import OrangeSettings

BASE = "http://orange.test"
PUBLIC = "http://gw.test"
TOKEN = f"{BASE}/oauth/token"
API = f"{BASE}/api/eWallet/v1"
KEYS = f"{BASE}/api/account/v1/publicKeys"

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_DER = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def context(**settings):
    return make_context(
        plugin.DECLARATION, OrangeSettings(**settings), base_url=BASE, public_url=PUBLIC
    )


def payment(msisdn="+221771234567", **changes) -> Payment:
    values = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal(5000),
        "currency": "XOF",
        "msisdn": msisdn,
        "reference": "ORD-SN",
        "country": "SN",
    } | changes
    return Payment(**values)


def token_ok(httpx_mock, url=TOKEN, value="sn-tok"):
    httpx_mock.add_response(
        url=url,
        method="POST",
        json={"access_token": value, "token_type": "bearer", "expires_in": 3600},
    )


def keys_ok(httpx_mock):
    httpx_mock.add_response(
        url=KEYS,
        method="GET",
        json={"keyId": "k1", "keyType": "RSA", "keySize": 2048, "key": PUBLIC_DER},
    )


def problem(status: int, code: str, detail: str, **extra):
    return {
        "type": "about:blank",
        "title": "Bad Request",
        "instance": "/api/eWallet/v1/payments",
        "status": str(status),
        "code": code,
        "detail": detail,
        **extra,
    }


def decrypt(value: str) -> str:
    return PRIVATE.decrypt(base64.b64decode(value), padding.PKCS1v15()).decode()


# -- tokens ---------------------------------------------------------------------------------


async def test_token_is_a_form_with_client_credentials_and_path_is_configurable(httpx_mock):
    httpx_mock.add_response(
        url=f"{BASE}/oauth/v1/token", method="POST", json={"access_token": "t", "expires_in": 60}
    )
    ctx = context(sonatel_token_path="/oauth/v1/token")
    assert await client.token(ctx, "sonatel") == "t"
    sent = httpx_mock.get_requests()[0]
    assert "authorization" not in sent.headers
    form = dict(x.split("=") for x in sent.content.decode().split("&"))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "sandbox-sonatel-client",
        "client_secret": "sandbox-sonatel-secret",
    }


async def test_a_401_gets_one_new_token_and_one_retry(httpx_mock):
    token_ok(httpx_mock, value="old")
    token_ok(httpx_mock, value="new")
    status_url = f"{API}/transactions/MP1/status"
    httpx_mock.add_response(url=status_url, status_code=401, json=problem(401, "401", "expired"))
    httpx_mock.add_response(url=status_url, json={"transactionId": "MP1", "status": "SUCCESS"})
    ctx = context()
    report = await plugin.status(ctx, payment(provider_data={"family": "sonatel"}, **_ref("MP1")))
    assert report.status == "succeeded"
    auth = [r.headers["authorization"] for r in httpx_mock.get_requests(url=status_url)]
    assert auth == ["Bearer old", "Bearer new"]


def _ref(transaction_id: str) -> dict:
    return {"provider_reference": transaction_id}


# -- merchant payment -----------------------------------------------------------------------


async def test_classic_merchant_payment_body_and_pending(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{API}/payments",
        method="POST",
        json={"transactionId": "MP250101.1200.A1", "status": "INITIATED", "reference": "r"},
    )
    p = payment()
    ack = await plugin.initiate(context(), p)
    sent = json.loads(httpx_mock.get_requests(url=f"{API}/payments")[0].content)
    assert sent["partner"] == {"idType": "CODE", "id": "599488"}
    assert sent["customer"] == {"idType": "MSISDN", "id": "771234567", "walletType": "PRINCIPAL"}
    assert sent["amount"] == {"value": 5000, "unit": "XOF"}
    assert sent["method"] == "CLASSIC" and sent["reference"] == p.id
    assert sent["receiveNotification"] is True and sent["requestDate"].endswith("+00:00")
    assert ack.status == "pending" and ack.provider_reference == "MP250101.1200.A1"
    assert ack.provider_data == {
        "family": "sonatel",
        "kind": "payment",
        "transaction_id": "MP250101.1200.A1",
    }


async def test_one_step_payment_sends_the_otp_and_can_succeed_at_once(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{API}/payments/onestep", json={"transactionId": "MP2", "status": "SUCCESS"}
    )
    ack = await plugin.initiate(context(), payment(metadata={"otp": "123456"}))
    sent = json.loads(httpx_mock.get_requests(url=f"{API}/payments/onestep")[0].content)
    assert sent["customer"]["otp"] == "123456" and "method" not in sent
    assert ack.status == "succeeded" and ack.provider_data["kind"] == "onestep"


async def test_initiate_answered_failed_is_a_decline(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{API}/payments",
        json={"transactionId": "MP3", "status": "REJECTED", "description": "Refus"},
    )
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(context(), payment())
    assert caught.value.provider_code == "REJECTED" and caught.value.provider_message == "Refus"


async def test_unreadable_initiate_answer_is_outcome_unknown(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(url=f"{API}/payments", text="<html>")
    with pytest.raises(OutcomeUnknown):
        await plugin.initiate(context(), payment())


# -- cash-in --------------------------------------------------------------------------------


async def test_cashin_encrypts_the_pin_with_the_public_key(httpx_mock):
    token_ok(httpx_mock)
    keys_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{API}/cashins", json={"transactionId": "CI1", "status": "SUCCESS"}
    )
    ack = await plugin.initiate(context(sonatel_pin="4321"), payment(type="disbursement"))
    sent = json.loads(httpx_mock.get_requests(url=f"{API}/cashins")[0].content)
    partner = sent["partner"]
    assert partner["idType"] == "MSISDN" and partner["id"] == "771112233"
    assert decrypt(partner["encryptedPinCode"]) == "4321"
    assert "4321" not in httpx_mock.get_requests(url=f"{API}/cashins")[0].content.decode()
    assert ack.status == "succeeded" and ack.provider_data["kind"] == "cashin"


async def test_unreadable_public_key_answer(httpx_mock):
    token_ok(httpx_mock)
    httpx_mock.add_response(url=KEYS, json={"nothing": 1})
    with pytest.raises(ProviderUnavailable):
        await plugin.initiate(context(), payment(type="disbursement"))


# -- the one translation: RFC-7807 problems -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "text"),
    [
        (400, problem(400, "2000", "Customer account does not exist"), OperatorDeclined,
         "2000", "Customer account does not exist"),
        (400, problem(400, "2011", "Solde insuffisant"), OperatorDeclined, "2011",
         "Solde insuffisant"),
        (400, problem(400, "2040", "OTP invalide ou expire"), OperatorDeclined, "2040",
         "OTP invalide ou expire"),
        (400, problem(400, "400", "Invalid", violations=[{"field": "amount"}]), InvalidRequest,
         "400", "Invalid ({'field': 'amount'})"),
        (400, problem(400, "2041", "Invalid partner PIN code"), InvalidRequest, "2041",
         "Invalid partner PIN code"),
        (400, problem(400, "2050", "Unknown merchant code"), InvalidRequest, "2050",
         "Unknown merchant code"),
        (409, problem(409, "2011", "Solde insuffisant"), OperatorDeclined, "2011",
         "Solde insuffisant"),
        (422, problem(422, "2000", "Customer account does not exist"), OperatorDeclined,
         "2000", "Customer account does not exist"),
        (504, problem(504, "504", "Gateway timeout"), ProviderUnavailable, "504",
         "Gateway timeout"),
        (401, problem(401, "401", "Invalid token"), ProviderAuthenticationError, "401",
         "Invalid token"),
        (403, {"type": "t", "title": "Forbidden", "status": 403}, ProviderAuthenticationError,
         "403", "Forbidden"),
        (429, problem(429, "429", "Too many"), RateLimited, "429", "Too many"),
        (503, problem(503, "503", "Down"), ProviderUnavailable, "503", "Down"),
        (500, problem(500, "500", "Boom"), OutcomeUnknown, "500", "Boom"),
        (401, {"error": "invalid_client", "error_description": "Bad client credentials"},
         ProviderAuthenticationError, "invalid_client", "Bad client credentials"),
    ],
)  # fmt: skip
def test_problem_mapping(status, body, error, code, text):
    with pytest.raises(error) as caught:
        client.raise_for(httpx.Response(status, json=body), "initiate")
    assert caught.value.provider_code == code
    assert caught.value.provider_message == text


def test_a_problem_404_on_status_is_unknown_to_operator_but_a_gateway_404_is_not():
    with pytest.raises(UnknownToOperator) as caught:
        client.raise_for(httpx.Response(404, json=problem(404, "404", "Not found")), "status")
    assert caught.value.provider_code == "404"
    gateway = {"code": 60, "message": "Resource not found", "description": "x"}
    with pytest.raises(InvalidRequest):
        client.raise_for(httpx.Response(404, json=gateway), "status")


# -- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sonatel", "ours"),
    [
        ("PRE_INITIATED", "pending"),
        ("INITIATED", "pending"),
        ("PENDING", "pending"),
        ("ACCEPTED", "pending"),
        ("SUCCESS", "succeeded"),
        ("FAILED", "failed"),
        ("REJECTED", "failed"),
        ("CANCELLED", "failed"),
        ("SOMETHING_NEW", "pending"),
    ],
)
async def test_status_mapping(httpx_mock, sonatel, ours):
    token_ok(httpx_mock)
    httpx_mock.add_response(
        url=f"{API}/transactions/MP9/status",
        json={"transactionId": "MP9", "status": sonatel, "description": "why"},
    )
    p = payment(provider_data={"family": "sonatel", "transaction_id": "MP9"})
    report = await plugin.status(context(), p)
    assert report.status == ours and report.provider_transaction_id == "MP9"
    if ours == "failed":
        assert report.failure.provider_code == sonatel and report.failure.message == "why"
    else:
        assert report.failure is None


async def test_status_without_transaction_id():
    with pytest.raises(NotSupported) as caught:
        await plugin.status(context(), payment(provider_data={"family": "sonatel"}))
    assert caught.value.code == "cannot_ask"


# -- callback -------------------------------------------------------------------------------


def inbound(ctx, body: dict, headers: dict | None = None) -> InboundCallback:
    url = httpx.URL(ctx.callback_url("callback"))
    return InboundCallback(
        provider="orange",
        kind="callback",
        method="POST",
        path=url.path,
        query=dict(url.params),
        headers=headers or {},
        body=json.dumps(body).encode(),
    )


def note(pid: str, **changes) -> dict:
    return {
        "apiKey": "sandbox-sonatel-callback-key",
        "transactionId": "MP7",
        "status": "SUCCESS",
        "reference": pid,
        "amount": {"unit": "XOF", "value": 5000},
        "partner": {"idType": "CODE", "id": "599488"},
        "customer": {"idType": "MSISDN", "id": "771234567"},
        "type": "MERCHANT_PAYMENT",
        "metadata": {},
    } | changes


async def test_callback_with_the_right_api_key():
    ctx = context()
    pid = str(uuid.uuid4())
    outcome = await plugin.parse_callback(ctx, inbound(ctx, note(pid)))
    update = outcome.update
    assert update.status == "succeeded" and update.payment_id == pid
    assert update.provider_reference == "MP7" and update.amount == Decimal(5000)
    assert outcome.authenticated is False and outcome.reply.status_code == 200


async def test_callback_failed_keeps_the_status_and_takes_the_key_from_a_header():
    ctx = context()
    body = note("not-a-uuid", status="CANCELLED", amount={"unit": "XOF", "value": "x"})
    del body["apiKey"]
    outcome = await plugin.parse_callback(
        ctx, inbound(ctx, body, headers={"apikey": "sandbox-sonatel-callback-key"})
    )
    assert outcome.update.status == "failed" and outcome.update.failure.provider_code == "CANCELLED"
    assert outcome.update.payment_id is None and outcome.update.amount is None


@pytest.mark.parametrize("api_key", ["wrong", "", None])
async def test_callback_with_a_wrong_or_missing_api_key_is_refused(api_key):
    ctx = context()
    body = note(str(uuid.uuid4()), apiKey=api_key)
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(ctx, inbound(ctx, body))


async def test_callback_with_a_wrong_url_token_is_refused():
    ctx = context()
    callback = inbound(ctx, note(str(uuid.uuid4())))
    forged = InboundCallback(
        provider="orange",
        kind="callback",
        method="POST",
        path=callback.path,
        query={"token": "x" + callback.query["token"]},
        body=callback.body,
    )
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(ctx, forged)


# -- validation, balance, setup -------------------------------------------------------------


def test_validation_of_senegal_numbers_and_types():
    ctx = context()
    plugin.validate(ctx, payment())
    plugin.validate(ctx, payment(msisdn="+221781234567", type="disbursement"))
    with pytest.raises(InvalidRequest) as caught:
        plugin.validate(ctx, payment(msisdn="+221761234567"))  # Free, not Orange
    assert caught.value.code == "invalid_msisdn"
    with pytest.raises(NotSupported):
        plugin.validate(ctx, payment(type="remittance"))


async def test_balance_sends_the_encrypted_pin_and_reads_money(httpx_mock):
    token_ok(httpx_mock)
    keys_ok(httpx_mock)
    url = f"{API}/account/retailer/balance"
    httpx_mock.add_response(url=url, method="POST", json={"value": 125000.5, "unit": "XOF"})
    report = await plugin.balance(context())
    sent = json.loads(httpx_mock.get_requests(url=url)[0].content)
    assert sent["id"] == "771112233" and decrypt(sent["encryptedPinCode"]) == "1234"
    (only,) = report.balances
    assert only.available == Decimal("125000.5") and only.currency == "XOF"
    assert "771112233" not in only.account


async def test_balance_unreadable_answer(httpx_mock):
    token_ok(httpx_mock)
    keys_ok(httpx_mock)
    httpx_mock.add_response(url=f"{API}/account/retailer/balance", json={"value": "lots"})
    with pytest.raises(ProviderUnavailable):
        await plugin.balance(context())


async def test_balance_is_not_supported_without_sonatel():
    with pytest.raises(NotSupported) as caught:
        await plugin.balance(context(families="CM:cameroon"))
    assert "Sonatel" in caught.value.message


async def test_setup_registers_the_merchant_callback(httpx_mock):
    token_ok(httpx_mock)
    url = f"{BASE}/api/notification/v1/merchantcallback"
    httpx_mock.add_response(url=url, method="POST", json={"code": "599488"})
    ctx = context()
    report = await plugin.setup(ctx)
    sent = json.loads(httpx_mock.get_requests(url=url)[0].content)
    assert sent["apiKey"] == "sandbox-sonatel-callback-key" and sent["code"] == "599488"
    assert sent["callbackUrl"] == ctx.callback_url("callback")
    assert "599488" in report.lines[0] and "sandbox-sonatel" not in report.lines[0]


async def test_setup_without_sonatel_does_nothing():
    report = await plugin.setup(context(families="CM:cameroon"))
    assert "nothing to do" in report.lines[0]
