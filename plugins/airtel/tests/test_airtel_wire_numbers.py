"""Airtel answers and callbacks that carry JSON numbers where the documentation says
strings (status codes, result codes, transaction ids, Airtel's ids, amounts, balances,
party numbers) are read, never refused as malformed (issue 13). Client unit tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mmo_airtel import client, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_core.callbacks import build_callback_url
from mmo_core.errors import OperatorDeclined
from mmo_core.testing import make_context
from mmo_core.types import InboundCallback, Payment
from pytest_httpx import HTTPXMock

BASE = "https://openapiuat.airtel.africa"
PUBLIC = "https://gateway.example"
SECRET = "numbers-secret"


def make(**changes: Any) -> Any:
    return make_context(
        plugin.DECLARATION,
        AirtelSettings(**changes),
        base_url=BASE,
        public_url=PUBLIC,
        callback_secret=SECRET,
    )


def payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal("5000"),
        "currency": "UGX",
        "msisdn": "+256752604392",
        "reference": "Order1042",
        "country": "UG",
    }
    values.update(changes)
    return Payment(**values)


def add_token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/oauth2/token",
        json={"access_token": "tok", "expires_in": 180, "token_type": "bearer"},
    )


def numeric_status(**changes: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"code": 200, "message": "SUCCESS", "result_code": 521002}
    status.update(changes)
    return status


def test_every_code_of_the_envelope_may_be_a_number() -> None:
    body = {"status": {"code": 400, "message": 7, "result_code": 521002, "success": False}}
    answer = client.interpret(httpx.Response(200, json=body), "push")
    assert (answer.kind, answer.code, answer.message) == ("failed", "521002", "7")
    router = client.interpret(
        httpx.Response(200, json={"status_code": 1234, "status_message": 99}), "push"
    )
    assert (router.code, router.message) == ("1234", "99")
    numbered = client.interpret(
        httpx.Response(200, json={"status": {"code": 200, "success": True}, "data": {}}), "x"
    )
    assert numbered.kind == "success"


async def test_push_answer_with_numeric_ids(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    pay = payment()
    httpx_mock.add_response(
        url=f"{BASE}/merchant/v1/payments/",
        json={
            "data": {"transaction": {"id": 1042, "status": "SUCCESS", "airtel_money_id": 987}},
            "status": numeric_status(response_code="DP00800001006", success=True),
        },
    )
    result = await plugin.initiate(make(), pay)
    assert result.status == "pending"
    assert result.provider_transaction_id == "987"
    assert result.provider_data["airtel_money_id"] == "987"


async def test_disbursement_answer_with_numeric_status_and_ids(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    key = _public_key()
    payout = payment(type="disbursement", reference="Payout42")
    httpx_mock.add_response(
        url=f"{BASE}/standard/v1/disbursements/",
        json={
            "data": {
                "transaction": {
                    "id": 42,
                    "status": "TS",
                    "airtel_money_id": 555001,
                    "reference_id": 7,
                }
            },
            "status": numeric_status(response_code="DP00900001001", success=True),
        },
    )
    result = await plugin.initiate(make(encryption_public_key=key), payout)
    assert (result.status, result.provider_transaction_id) == ("succeeded", "555001")


@pytest.mark.parametrize(
    ("state", "response_code", "expected"),
    [("TS", "DP00800001001", "succeeded"), ("TF", "DP00800001007", "failed")],
)
async def test_enquiry_with_numbers_in_every_field(
    httpx_mock: HTTPXMock, state: str, response_code: str, expected: str
) -> None:
    add_token(httpx_mock)
    pay = payment(status="pending", provider_reference="1042")
    httpx_mock.add_response(
        url=f"{BASE}/standard/v1/payments/1042",
        json={
            "data": {
                "transaction": {
                    "id": 1042,
                    "status": state,
                    "message": 12345,
                    "airtel_money_id": 210603123406941,
                }
            },
            "status": numeric_status(response_code=response_code, success=state == "TS", code=200),
        },
    )
    report = await plugin.status(make(), pay)
    assert report.status == expected
    assert report.provider_transaction_id == "210603123406941"
    if expected == "failed":
        assert report.failure is not None
        assert (report.failure.code, report.failure.provider_code) == (
            "insufficient_funds",
            "DP00800001007",
        )
        assert report.failure.provider_message == "12345"


async def test_refund_answer_with_numeric_ids(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    paid = payment(status="succeeded", provider_transaction_id="555")
    httpx_mock.add_response(
        url=f"{BASE}/standard/v1/payments/refund",
        json={
            "data": {"transaction": {"airtel_money_id": 555, "status": "SUCCESS"}},
            "status": numeric_status(success=True),
        },
    )
    report = await plugin.reverse(make(), paid, None, "customer asked")
    assert report.status == "reversed"


async def test_balance_as_a_number_is_read_exactly(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{BASE}/standard/v1/users/balance",
        json={
            "data": {"balance": 2900000.55, "currency": "UGX", "account_status": "ACTIVE"},
            "status": numeric_status(success=True),
        },
    )
    [balance] = (await plugin.balance(make())).balances
    assert balance.available == Decimal("2900000.55")
    assert isinstance(balance.available, Decimal)


async def test_kyc_with_numeric_msisdn(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{BASE}/standard/v1/users/752604392",
        json={
            "data": {"first_name": "JOHN", "last_name": "DOE", "msisdn": 752604392},
            "status": numeric_status(response_code="DP02200000001", success=True),
        },
    )
    info = await plugin.lookup_account(make(), "+256752604392")
    assert (info.active, info.name) == (True, "JOHN DOE")


async def test_transaction_summary_with_numbers(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        json={
            "data": {
                "count": 1,
                "transactions": [
                    {
                        "transaction": {
                            "id": 1042,
                            "airtel_money_id": 555,
                            "amount": 150.5,
                            "created_at": 1700000000000,
                            "reference_number": 42,
                            "status": 1,
                        },
                        "payer": {"msisdn": 752604392, "currency": "UGX"},
                        "charges": {"service": 0},
                    }
                ],
            },
            "status": numeric_status(success=True),
        },
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    page = await plugin.transaction_summary(make(), start, start + dt.timedelta(days=1))
    [entry] = page.transactions
    assert entry.transaction.amount == Decimal("150.5")
    assert entry.transaction.airtel_money_id == 555


def _inbound(body: bytes, ref: str | None = None) -> InboundCallback:
    url = build_callback_url(PUBLIC, "airtel-money", "airtel", "callback", SECRET, ref)
    query = dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))
    return InboundCallback(
        provider="airtel",
        kind="callback",
        method="POST",
        path="/api/v1/webhooks/airtel-money/callback",
        query=query,
        headers={},
        body=body,
    )


@pytest.mark.parametrize("auth", [False, True])
async def test_callback_with_numbers_in_every_field(auth: bool) -> None:
    transaction = {"id": 1042, "message": 5000, "status_code": "TS", "airtel_money_id": 555}
    raw = json.dumps({"transaction": transaction}, separators=(",", ":")).encode()
    if auth:
        digest = client.callback_hash("cb-key", raw)
        raw = raw[:-1] + b',"hash":"' + digest.encode() + b'"}'
    context = make(callback_auth=auth, callback_private_key="cb-key")
    outcome = await plugin.parse_callback(context, _inbound(raw, ref="1042"))
    update = outcome.update
    assert update is not None
    assert (update.status, update.payment_id, update.provider_reference) == (
        "succeeded",
        "1042",
        "1042",
    )
    assert update.provider_transaction_id == "555"
    assert outcome.authenticated is auth


async def test_failed_callback_with_numeric_fields_keeps_its_text() -> None:
    transaction = {"id": 1042, "message": 404, "status_code": "TF", "airtel_money_id": None}
    raw = json.dumps({"transaction": transaction}).encode()
    outcome = await plugin.parse_callback(make(), _inbound(raw))
    update = outcome.update
    assert update is not None and update.status == "failed"
    assert update.failure is not None and update.failure.provider_message == "404"
    assert update.provider_transaction_id is None


async def test_a_numeric_refusal_code_still_refuses(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        url=f"{BASE}/merchant/v1/payments/",
        json={
            "status": {
                "code": 200,
                "message": "Not enough balance",
                "result_code": "ESB000011",
                "response_code": "DP00800001007",
                "success": False,
            }
        },
    )
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(make(), payment())
    assert caught.value.failure_code == "insufficient_funds"


def _public_key() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()
