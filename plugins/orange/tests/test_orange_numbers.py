"""Numbers where Orange documents strings (amounts, transaction ids, party ids, status codes)
are read, not refused as malformed, in every decode of an answer and of a callback; and
every status and failure of the notes maps to the gateway's vocabulary."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from mmo_core import failures
from mmo_core.errors import InvalidRequest, OperatorDeclined
from mmo_orange import client, plugin
from test_orange_client import CM_TOKEN, INIT, MP, STATUS, WEBPAY_TOKEN, context, inbound, payment
from test_orange_sonatel_client import API, KEYS, PUBLIC_DER
from test_orange_sonatel_client import TOKEN as SN_TOKEN
from test_orange_sonatel_client import context as sn_context
from test_orange_sonatel_client import inbound as sn_inbound
from test_orange_sonatel_client import note as sn_note
from test_orange_sonatel_client import payment as sn_payment


def token_as_numbers(httpx_mock, url: str) -> None:
    httpx_mock.add_response(
        url=url,
        method="POST",
        json={"token_type": "Bearer", "access_token": 4242, "expires_in": "3600"},
    )


# -- WebPay ---------------------------------------------------------------------------------


async def test_webpay_answers_with_numbers(httpx_mock):
    token_as_numbers(httpx_mock, WEBPAY_TOKEN)
    httpx_mock.add_response(
        url=INIT,
        method="POST",
        status_code=201,
        json={
            "status": "201",
            "message": "OK",
            "pay_token": 123456789,
            "payment_url": "https://pay.example/payment/pay_token/123456789",
            "notif_token": 987654321,
        },
    )
    ctx = context()
    ack = await plugin.initiate(ctx, payment())
    assert ack.provider_data["pay_token"] == "123456789"
    assert ack.provider_data["notif_token"] == "987654321"
    assert ack.provider_reference == client.notif_reference("987654321")
    sent = httpx_mock.get_requests(url=INIT)[0]
    assert sent.headers["authorization"] == "Bearer 4242"
    httpx_mock.add_response(
        url=STATUS,
        method="POST",
        status_code=201,
        json={"status": "SUCCESS", "order_id": 77, "txnid": 150709},
    )
    pending = payment(status="pending", provider_data=ack.provider_data)
    report = await plugin.status(ctx, pending)
    assert report.status == "succeeded" and report.provider_transaction_id == "150709"
    await ctx.http.aclose()


async def test_webpay_notification_with_numbers():
    ctx = context()
    body = json.dumps({"status": "SUCCESS", "notif_token": 987654321, "txnid": 150709}).encode()
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "callback", body))
    assert outcome.update is not None and outcome.update.status == "succeeded"
    assert outcome.update.provider_transaction_id == "150709"
    assert outcome.update.provider_reference == client.notif_reference("987654321")
    for bad in (
        b'{"status": "SUCCESS", "notif_token": 1.5}',
        b'{"status": true, "notif_token": "x"}',
    ):
        with pytest.raises(InvalidRequest):
            await plugin.parse_callback(ctx, inbound(ctx, "callback", bad))


# -- Orange Cameroon ------------------------------------------------------------------------


async def test_cameroon_answers_with_numbers(httpx_mock):
    token_as_numbers(httpx_mock, CM_TOKEN)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": 221207}}
    )
    httpx_mock.add_response(
        url=f"{MP}/pay",
        method="POST",
        json={
            "message": "Merchant payment successfully initiated",
            "data": {
                "id": 48463325,
                "payToken": 221207,
                "txnid": 2212072051,
                "status": "PENDING",
                "inittxnstatus": 200,
                "amount": 100,
                "subscriberMsisdn": 699124567,
            },
        },
    )
    ctx = context()
    p = payment("+237699124567", "XAF", amount=Decimal(100))
    ack = await plugin.initiate(ctx, p)
    assert ack.provider_reference == "221207" and ack.provider_transaction_id == "2212072051"
    assert json.loads(httpx_mock.get_requests(url=f"{MP}/pay")[0].content)["payToken"] == "221207"
    httpx_mock.add_response(
        url=f"{MP}/paymentstatus/221207",
        method="GET",
        json={
            "message": "Transaction retrieved successfully",
            "data": {
                "payToken": 221207,
                "txnid": 2212072051,
                "status": "FAILED",
                "confirmtxnstatus": 60011,
                "confirmtxnmessage": "Le code PIN saisi est incorrect",
                "amount": "100",
            },
        },
    )
    pending = payment("+237699124567", "XAF", status="pending", provider_data=ack.provider_data)
    report = await plugin.status(ctx, pending)
    assert report.status == "failed" and report.failure is not None
    assert report.failure.code == failures.WRONG_PIN and report.failure.provider_code == "60011"
    await ctx.http.aclose()


async def test_cameroon_notification_with_numbers():
    ctx = context()
    body = json.dumps({"payToken": 221207, "status": "SUCCESSFULL", "message": "ok"}).encode()
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "status", body, "pid-1"))
    assert outcome.update is not None and outcome.update.status == "succeeded"
    assert outcome.update.provider_reference == "221207"


# -- Sonatel --------------------------------------------------------------------------------


async def test_sonatel_answers_with_numbers(httpx_mock):
    token_as_numbers(httpx_mock, SN_TOKEN)
    httpx_mock.add_response(
        url=f"{API}/payments",
        method="POST",
        json={
            "transactionId": 230101120001,
            "status": "INITIATED",
            "requestId": 99,
            "reference": 5,
        },
    )
    ctx = sn_context()
    ack = await plugin.initiate(ctx, sn_payment())
    assert ack.provider_reference == "230101120001"
    httpx_mock.add_response(
        url=f"{API}/transactions/230101120001/status",
        method="GET",
        json={"transactionId": 230101120001, "status": "SUCCESS"},
    )
    pending = sn_payment(status="pending", provider_data=ack.provider_data)
    assert (await plugin.status(ctx, pending)).status == "succeeded"
    httpx_mock.add_response(
        url=KEYS,
        method="GET",
        json={"keyId": 1, "keyType": "RSA", "keySize": "2048", "key": PUBLIC_DER},
    )
    httpx_mock.add_response(
        url=f"{API}/account/retailer/balance",
        method="POST",
        json={"value": "12345.50", "unit": "XOF"},
    )
    report = await plugin.balance(ctx)
    assert report.balances[0].available == Decimal("12345.50")
    await ctx.http.aclose()


@pytest.mark.parametrize("value", ["2500", 2500])
async def test_sonatel_notification_with_numbers(value):
    ctx = sn_context()
    pid = "8f0b8a4e-6d5e-4f3c-9a43-1f2b3c4d5e6f"
    body = sn_note(pid, transactionId=230101120001, amount={"unit": "XOF", "value": value})
    outcome = await plugin.parse_callback(ctx, sn_inbound(ctx, body))
    assert outcome.update is not None and outcome.update.status == "succeeded"
    assert outcome.update.provider_transaction_id == "230101120001"
    assert outcome.update.amount == Decimal(2500) and outcome.update.payment_id == pid


# -- the vocabulary -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "status", "expected"),
    [
        (None, None, "FAILED", failures.OPERATOR_ERROR),  # WebPay's bare refusal
        (None, None, "EXPIRED", failures.PROMPT_EXPIRED),
        (None, None, "CANCELLED", failures.PAYER_DECLINED),
        (None, None, "REJECTED", failures.OPERATOR_ERROR),
        (
            "60019",
            "Le solde du compte du payeur est insuffisant",
            "FAILED",
            failures.INSUFFICIENT_FUNDS,
        ),
        ("60011", None, "FAILED", failures.WRONG_PIN),
        ("2000", "Customer account does not exist", "FAILED", failures.PAYER_NOT_FOUND),
        ("2011", None, "FAILED", failures.INSUFFICIENT_FUNDS),
        ("2040", None, "FAILED", failures.WRONG_PIN),
        (None, "Beneficiaire introuvable", "FAILED", failures.PAYER_NOT_FOUND),
        (None, "Utilisateur bloqué", "FAILED", failures.PAYER_NOT_ALLOWED),
        (
            None,
            "Vous avez saisi un montant superieur au montant maximum autorise",
            "FAILED",
            failures.AMOUNT_OUT_OF_BOUNDS,
        ),
        (
            None,
            "Le solde du compte du payeur est insuffisant",
            "FAILED",
            failures.INSUFFICIENT_FUNDS,
        ),
    ],
)
def test_every_status_and_failure_of_the_notes_has_a_gateway_code(code, text, status, expected):
    failure = client.failure_of(code, text, status)
    assert failure.code == expected
    assert failure.provider_code == (code or status)


async def test_a_cameroon_refusal_told_in_words_keeps_its_meaning(httpx_mock):
    token_as_numbers(httpx_mock, CM_TOKEN)
    httpx_mock.add_response(
        url=f"{MP}/init", method="POST", json={"message": "ok", "data": {"payToken": "MP1"}}
    )
    httpx_mock.add_response(
        url=f"{MP}/pay",
        method="POST",
        status_code=417,
        json={"message": "Utilisateur bloque", "data": {"status": "FAILED", "payToken": "MP1"}},
    )
    ctx = context()
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.initiate(ctx, payment("+237699124567", "XAF"))
    assert declined.value.failure_code == failures.PAYER_NOT_ALLOWED
    await ctx.http.aclose()
