"""MoMo bodies that carry JSON numbers where MTN documents strings (amounts, transaction
ids, party ids, codes) are read, not refused: every decode of an answer and of a callback
(pytest-httpx: the simulator always answers strings)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import msgspec
import pytest
from mmo_core import failures
from mmo_core.callbacks import callback_token
from mmo_core.errors import OperatorDeclined, OutcomeUnknown, ProviderAuthenticationError
from mmo_core.testing import make_context
from mmo_core.types import InboundCallback, Payment, Reversal
from mmo_mtn_momo import client, plugin
from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.wire import Transaction, decode
from pytest_httpx import HTTPXMock

BASE = "https://momo.test"
PUBLIC = "https://gw.example.com"
SECRET = "numbers-secret"


def context(**settings):
    return make_context(
        plugin.DECLARATION,
        msgspec.convert(settings, MtnMomoSettings, strict=False),
        base_url=BASE,
        public_url=PUBLIC,
        callback_secret=SECRET,
    )


def payment(kind: str = "collection", **changes) -> Payment:
    pid = str(uuid.uuid4())
    values = {
        "id": pid,
        "type": kind,
        "amount": Decimal("1500"),
        "currency": "EUR",
        "msisdn": "+46733123451",
        "reference": "ord-1001",
        "country": "SE",
        "status": "pending",
        "provider_reference": pid,
        "provider_data": {"product": kind, "accepted": True},
    }
    values.update(changes)
    return Payment(**values)


def token_ok(httpx_mock: HTTPXMock, product: str = "collection", **body) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/{product}/token/",
        json={"access_token": f"tok-{product}", "token_type": "access_token", **body},
        is_reusable=True,
    )


# A status body with a number in every field MTN documents as a string.
NUMERIC_SUCCESS = {
    "amount": 1500,
    "currency": "EUR",
    "financialTransactionId": 600198217,
    "externalId": 1001,
    "payer": {"partyIdType": "MSISDN", "partyId": 46733123451},
    "payerMessage": 42,
    "payeeNote": 7,
    "status": "SUCCESSFUL",
}


def test_decode_reads_every_number_as_its_exact_text() -> None:
    tx = decode(
        json.dumps({**NUMERIC_SUCCESS, "amount": 12.50}).encode().replace(b"12.5", b"12.50"),
        Transaction,
    )
    assert tx.amount == "12.50"  # exactly as sent, never through a float
    assert tx.financial_transaction_id == "600198217"
    assert tx.external_id == "1001"
    assert tx.payer is not None and tx.payer.party_id == "46733123451"
    assert (tx.payer_message, tx.payee_note) == ("42", "7")
    # a huge or exponent amount keeps its value
    assert decode(b'{"status":"PENDING","amount":1e3}', Transaction).amount == "1000"
    assert decode(b'{"status":"PENDING","amount":0.1}', Transaction).amount == "0.1"
    # booleans and strings are left as they are; a wrong shape is still refused
    assert decode(b'{"status":"SUCCESSFUL","amount":"1500"}', Transaction).amount == "1500"
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"amount":"1500"}', Transaction)  # no status


async def test_status_with_numbers_is_read(httpx_mock: HTTPXMock) -> None:
    p = payment()
    token_ok(httpx_mock, expires_in=3600)
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/collection/v1_0/requesttopay/{p.id}", json=NUMERIC_SUCCESS
    )
    report = await plugin.status(context(), p)
    assert report.status == "succeeded"
    assert report.amount == Decimal(1500)
    assert report.provider_transaction_id == "600198217"


async def test_failed_status_with_numeric_reason_codes(httpx_mock: HTTPXMock) -> None:
    p, q = payment(), payment()
    token_ok(httpx_mock)
    failed = {**NUMERIC_SUCCESS, "status": "FAILED"}
    failed.pop("financialTransactionId")
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{p.id}",
        json={**failed, "reason": {"code": 515, "message": 12}},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{q.id}",
        json={**failed, "reason": 516},
    )
    first = await plugin.status(context(), p)
    assert first.status == "failed" and first.failure is not None
    assert first.failure.code == failures.OPERATOR_ERROR
    assert (first.failure.provider_code, first.failure.provider_message) == ("515", "12")
    second = await plugin.status(context(), q)
    assert second.failure is not None and second.failure.provider_code == "516"


async def test_token_with_text_or_fractional_expiry(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock, expires_in=3600.0)
    assert await client.token(context(), "collection") == "tok-collection"
    httpx_mock.reset()
    token_ok(httpx_mock, product="disbursement", expires_in="3600")
    assert await client.token(context(), "disbursement") == "tok-disbursement"


async def test_error_bodies_with_numeric_codes(httpx_mock: HTTPXMock) -> None:
    ctx = context(resend_attempts=0)
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/collection/v1_0/requesttopay",
        status_code=500,
        json={"code": 9001, "message": 500},
    )
    with pytest.raises(OutcomeUnknown) as unknown:
        await plugin.initiate(ctx, payment(status="new", provider_reference=None))
    assert (unknown.value.provider_code, unknown.value.provider_message) == ("9001", "500")
    # the gateway's {statusCode, message} with the status as text is still read
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/account/balance",
        status_code=403,
        json={"statusCode": "403", "message": "Forbidden IP"},
    )
    with pytest.raises(ProviderAuthenticationError) as denied:
        await plugin.balance(ctx)
    assert (denied.value.provider_code, denied.value.provider_message) == (
        "FORBIDDEN_IP",
        "Forbidden IP",
    )
    assert denied.value.failure_code == failures.ACCOUNT_ERROR


async def test_balance_with_a_numeric_amount(httpx_mock: HTTPXMock) -> None:
    ctx = context(
        disbursement_subscription_key="",
        remittance_subscription_key="",
    )
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/account/balance",
        content=b'{"availableBalance": 1000.10, "currency": "EUR"}',
    )
    report = await plugin.balance(ctx)
    assert [(b.account, b.available) for b in report.balances] == [
        ("collection", Decimal("1000.10"))
    ]


async def test_refund_read_with_numbers(httpx_mock: HTTPXMock) -> None:
    p = payment(status="succeeded")
    token_ok(httpx_mock, product="disbursement")
    rid = str(uuid.uuid4())
    refund_id = client.refund_reference(p.id, rid)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/disbursement/v1_0/refund/{refund_id}",
        json={
            "amount": 1500,
            "currency": "EUR",
            "financialTransactionId": 700000001,
            "externalId": 1001,
            "payee": {"partyIdType": "MSISDN", "partyId": 46733123451},
            "status": "SUCCESSFUL",
        },
    )
    reversal = Reversal(id=rid, amount=Decimal(1500), currency="EUR", status="pending")
    report = await plugin.reversal_status(context(), p, reversal)
    assert report.status == "reversed"
    assert report.provider_data["refund_transaction_id"] == "700000001"
    assert report.provider_data["refund_amount"] == "1500"


async def test_declined_create_with_a_numeric_message(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/collection/v1_0/requesttopay",
        status_code=500,
        json={"code": "NOT_ENOUGH_FUNDS", "message": 0},
    )
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.initiate(context(), payment(status="new", provider_reference=None))
    assert declined.value.failure_code == failures.INSUFFICIENT_FUNDS
    assert declined.value.provider_message == "0"


def inbound(kind: str, body: bytes, payment_id: str) -> InboundCallback:
    return InboundCallback(
        provider="mtn_momo",
        kind=kind,
        method="PUT",
        path=f"/api/v1/webhooks/mtn-momo/{kind}",
        query={"ref": payment_id, "token": callback_token(SECRET, "mtn_momo", kind, payment_id)},
        body=body,
    )


async def test_callback_with_numbers_is_read() -> None:
    pid = str(uuid.uuid4())
    body = json.dumps(NUMERIC_SUCCESS).encode()
    outcome = await plugin.parse_callback(context(), inbound("collection", body, pid))
    update = outcome.update
    assert update is not None and update.status == "succeeded"
    assert update.amount == Decimal(1500)
    assert update.provider_transaction_id == "600198217"
    assert update.msisdn == "+46733123451"
    # a fractional amount as a JSON number is exact money, not a float
    raw = (
        json.dumps({**NUMERIC_SUCCESS, "amount": 0})
        .encode()
        .replace(b'"amount": 0', b'"amount": 12.25')
    )
    fractional = await plugin.parse_callback(context(), inbound("collection", raw, pid))
    assert fractional.update is not None and fractional.update.amount == Decimal("12.25")


async def test_failed_callback_with_a_numeric_reason() -> None:
    pid = str(uuid.uuid4())
    body = json.dumps({"status": "FAILED", "reason": 7, "amount": 1500, "currency": "EUR"})
    outcome = await plugin.parse_callback(context(), inbound("disbursement", body.encode(), pid))
    assert outcome.update is not None and outcome.update.status == "failed"
    assert outcome.update.failure is not None
    assert outcome.update.failure.provider_code == "7"
