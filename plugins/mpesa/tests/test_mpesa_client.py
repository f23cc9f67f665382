"""Unit tests of the M-Pesa client and hooks against mocked Daraja answers (pytest-httpx)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import mmo_mpesa.plugin as plugin
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from mmo_core.errors import (
    CallbackVerificationFailed,
    ConfigurationError,
    InvalidRequest,
    NoAnswerYet,
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
from mmo_mpesa import client
from mmo_mpesa.settings import SANDBOX_PASSKEY, MpesaSettings, bundled

BASE = "https://sandbox.safaricom.co.ke"
TOKEN_URL = f"{BASE}/oauth/v1/generate?grant_type=client_credentials"


@pytest.fixture
async def context():
    ctx = make_context(
        plugin.DECLARATION,
        MpesaSettings(result_wait=0.2),
        base_url=BASE,
        public_url="https://gw.example",
    )
    yield ctx
    await ctx.http.aclose()


def _token(httpx_mock, value="tok-1", expires_in="3599"):
    httpx_mock.add_response(
        method="GET", url=TOKEN_URL, json={"access_token": value, "expires_in": expires_in}
    )


def _payment(**changes) -> Payment:
    values = dict(
        id=str(uuid.uuid4()),
        type="collection",
        amount=Decimal("150"),
        currency="KES",
        msisdn="+254712345678",
        reference="INV42",
        country="KE",
        description="Order 42",
    )
    values.update(changes)
    return Payment(**values)


def _envelope(code: str, message: str) -> dict:
    return {"requestId": "11728-2929992-1", "errorCode": code, "errorMessage": message}


def inbound(ctx, kind: str, body, payment_id: str | None = None) -> InboundCallback:
    url = ctx.callback_url(kind, payment_id)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundCallback(
        provider="mpesa",
        kind=kind,
        method="POST",
        path=urlsplit(url).path,
        query=dict(parse_qsl(urlsplit(url).query)),
        body=raw,
    )


# -- formats --------------------------------------------------------------------------------


def test_password_matches_the_official_test_vector():
    assert client.password("174379", SANDBOX_PASSKEY, "20160216165627") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQy"
        "YzkxOTIwMTYwMjE2MTY1NjI3"
    )


def test_timestamp_is_nairobi_time():
    moment = dt.datetime(2024, 7, 15, 7, 30, 45, tzinfo=dt.UTC)
    assert client.timestamp(moment) == "20240715103045"
    assert len(client.timestamp()) == 14


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("0712345678", "254712345678"),
        ("0110123456", "254110123456"),
        ("+254712345678", "254712345678"),
        ("254712345678", "254712345678"),
        (" 0712 345 678 ", "254712345678"),
    ],
)
def test_kenyan_numbers_in_every_form(typed, sent):
    assert client.msisdn(typed) == sent


@pytest.mark.parametrize("bad", ["0201234567", "+256712345678", "12"])
def test_other_numbers_are_refused(bad):
    with pytest.raises(InvalidRequest):
        client.msisdn(bad)


def test_whole_shillings_only():
    assert client.whole_shillings(Decimal("150.00")) == 150
    with pytest.raises(InvalidRequest):
        client.whole_shillings(Decimal("1.50"))


def test_security_credential_is_pkcs1v15_of_the_password():
    settings = MpesaSettings()
    key = serialization.load_pem_private_key(bundled("simulator-key.pem").encode(), None)
    one = client.security_credential(settings)
    assert key.decrypt(base64.b64decode(one), padding.PKCS1v15()) == b"Safaricom999!*!"


def test_security_credential_is_encrypted_once_per_password():
    # the credential is reusable (Daraja FAQ 21): one RSA encryption per certificate and
    # password, not one per call; another password gets its own
    key = serialization.load_pem_private_key(bundled("simulator-key.pem").encode(), None)
    first = client.security_credential(MpesaSettings())
    assert client.security_credential(MpesaSettings()) == first
    other = client.security_credential(MpesaSettings(initiator_password="Another#Pass1"))
    assert other != first
    assert key.decrypt(base64.b64decode(other), padding.PKCS1v15()) == b"Another#Pass1"


def test_certificate_from_text_and_file(tmp_path):
    pem = bundled("simulator-cert.pem")
    path = tmp_path / "cert.cer"
    path.write_text(pem)
    assert MpesaSettings(certificate=pem).certificate_pem() == pem
    assert MpesaSettings(certificate_file=str(path)).certificate_pem() == pem


# -- validate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"currency": "UGX"}, InvalidRequest),
        ({"amount": Decimal("10.5")}, InvalidRequest),
        ({"msisdn": "+256712345678"}, InvalidRequest),
        ({"type": "disbursement", "amount": Decimal(9)}, InvalidRequest),
        ({"type": "remittance"}, NotSupported),
    ],
)
def test_validate_refuses_what_daraja_refuses(context, changes, error):
    with pytest.raises(error):
        plugin.validate(context, _payment(**changes))


def test_validate_accepts_limits(context):
    plugin.validate(context, _payment(reference="ABCDEFGHIJKL", description="ABCDEFGHIJKLM"))
    plugin.validate(context, _payment(type="disbursement", amount=Decimal(10), reference="X" * 40))
    plugin.validate(context, _payment(description=None))
    # the reference (up to 128) and description are fitted, never refused (issue: one API)
    plugin.validate(context, _payment(reference="REFERENCE-13C", description="Fourteen chars"))


def test_account_reference_and_description_fit_daraja():
    long = _payment(reference="ORDER-2026-12-01-CUSTOMER-0042-BRAND-A-KE")
    derived = plugin.account_reference(long)
    assert len(derived) == 12 and derived.isalnum() and derived.startswith("ORDER2")
    assert plugin.account_reference(long) == derived  # the same every time
    other = _payment(reference="ORDER-2026-12-01-CUSTOMER-0043-BRAND-A-KE")
    assert plugin.account_reference(other) != derived
    assert plugin.account_reference(_payment(reference="INV42")) == "INV42"


# -- error envelope -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message", "error"),
    [
        (404, "404.001.03", "Invalid Access Token", ProviderAuthenticationError),
        (
            401,
            "401.002.01",
            "Error Occurred - Invalid Access Token - x",
            ProviderAuthenticationError,
        ),
        (400, "400.003.01", "Invalid Access Token", ProviderAuthenticationError),
        (400, "400.008.01", "Invalid authentication type passed", ProviderAuthenticationError),
        (400, "400.008.02", "Invalid grant type passed", ProviderAuthenticationError),
        (404, "404.001.04", "Invalid Authentication Header", ProviderAuthenticationError),
        (400, "400.002.02", "Bad Request - Invalid PhoneNumber", InvalidRequest),
        (400, "400.002.05", "Invalid Request Payload", InvalidRequest),
        (404, "404.001.01", "Resource not found", InvalidRequest),
        (405, "405.001", "Method Not Allowed", InvalidRequest),
        (500, "500.001.1001", "Wrong credentials", ProviderAuthenticationError),
        (500, "500.001.1001", "Merchant does not exist", ProviderAuthenticationError),
        (
            500,
            "500.001.1001",
            "Unable to lock subscriber, a transaction is already in process "
            "for the current subscriber",
            OperatorDeclined,
        ),
        (500, "500.001.1001", "This transaction does not exist", InvalidRequest),  # initiate
        (500, "500.002.1001", "Duplicate OriginatorConversationID.", OutcomeUnknown),
        (500, "500.003.02", "System is busy. Please try again in few minutes.", RateLimited),
        (500, "500.003.02", "Error Occurred: Spike Arrest Violation", RateLimited),
        (500, "500.003.03", "Quota Violation", RateLimited),
        (500, "500.003.1001", "Internal Server Error", OutcomeUnknown),
        (503, "503.003.1001", "Service Unavailable", ProviderUnavailable),
        (
            400,
            "400.002.02",
            "Invalid API call as no apiproduct match found",
            ProviderAuthenticationError,
        ),
    ],
)
def test_every_documented_error_code(status, code, message, error):
    response = httpx.Response(status, json=_envelope(code, message))
    with pytest.raises(error) as raised:
        client.raise_for(response, "initiate")
    assert raised.value.provider_code == code
    assert raised.value.provider_message == message
    assert raised.value.request_id == "11728-2929992-1"


def test_non_json_errors_keep_the_status():
    with pytest.raises(RateLimited) as raised:
        client.raise_for(httpx.Response(429, text="slow down"), "status")
    assert raised.value.provider_code == "429"
    client.raise_for(httpx.Response(200, json={}), "status")


def test_darajas_retry_after_beats_the_default_wait():
    slow = httpx.Response(429, headers={"Retry-After": "5"}, text="slow down")
    with pytest.raises(RateLimited) as raised:
        client.raise_for(slow, "status")
    assert raised.value.retry_after == 5.0
    spike = httpx.Response(500, json=_envelope("500.003.02", "Spike Arrest Violation"))
    with pytest.raises(RateLimited) as raised:
        client.raise_for(spike, "status")
    assert raised.value.retry_after == 60  # no header: the plugin's own wait


@pytest.mark.parametrize("code", sorted(client.RESULT_CODES))
def test_every_result_code_maps_to_a_status(code):
    state, failure = client.result_status(code)
    if code == "0":
        assert (state, failure) == ("succeeded", None)
    else:
        assert state == ("expired" if code in ("1019", "1036", "1037") else "failed")
        assert failure.provider_code == code and failure.message == client.RESULT_CODES[code]
    assert client.result_status(int(code) if code.isdigit() else code)[0] == state


def test_unknown_result_code_fails_with_its_text():
    assert client.result_status("4242", "Odd") == (
        "failed",
        client.Failure("operator_error", "Odd", provider_code="4242", provider_message="Odd"),
    )


# -- token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expires_in", ["3599", 3599])
async def test_token_is_cached_for_either_expires_in_form(context, httpx_mock, expires_in):
    _token(httpx_mock, expires_in=expires_in)
    assert await client.token(context) == "tok-1"
    assert await client.token(context) == "tok-1"
    assert context.tokens.fetches == 1
    request = httpx_mock.get_requests()[0]
    assert (
        request.headers["authorization"]
        == "Basic "
        + base64.b64encode(b"mmo-sandbox-consumer-key:mmo-sandbox-consumer-secret").decode()
    )


async def test_invalid_token_refreshes_once(context, httpx_mock):
    _token(httpx_mock, "old")
    _token(httpx_mock, "new")
    url = f"{BASE}{plugin.STK_QUERY}"
    httpx_mock.add_response(
        method="POST",
        url=url,
        status_code=404,
        json=_envelope("404.001.03", "Invalid Access Token"),
    )
    httpx_mock.add_response(
        method="POST",
        url=url,
        json={
            "ResponseCode": "0",
            "ResultCode": "0",
            "ResultDesc": "ok",
            "CheckoutRequestID": "ws_CO_1",
        },
    )
    report = await plugin.status(context, _payment(provider_reference="ws_CO_1"))
    assert report.status == "succeeded"
    posts = [r for r in httpx_mock.get_requests() if r.method == "POST"]
    assert [r.headers["authorization"] for r in posts] == ["Bearer old", "Bearer new"]


async def test_refused_credentials_fail_health(context, httpx_mock):
    httpx_mock.add_response(
        method="GET",
        url=TOKEN_URL,
        status_code=400,
        json=_envelope("400.008.01", "Invalid Authentication passed"),
    )
    report = await plugin.health(context)
    assert not report.ok and "provider_authentication_failed" in report.detail


async def test_unreadable_token_answer(context, httpx_mock):
    httpx_mock.add_response(method="GET", url=TOKEN_URL, text="<html>")
    with pytest.raises(OutcomeUnknown):
        await client.token(context)


async def test_connection_failure_is_unavailable(context, httpx_mock):
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailable):
        await client.token(context)
    _token(httpx_mock)
    httpx_mock.add_exception(httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknown):
        await plugin.initiate(context, _payment())


# -- STK push and query ---------------------------------------------------------------------


async def test_stk_push_request(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_PUSH}",
        json={
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": "ws_CO_191220191020363925",
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        },
    )
    payment = _payment(msisdn="+254110123456")
    ack = await plugin.initiate(context, payment)
    assert ack.status == "pending" and ack.provider_reference == "ws_CO_191220191020363925"
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["PartyA"] == sent["PhoneNumber"] == "254110123456"
    assert sent["Amount"] == 150 and sent["AccountReference"] == "INV42"
    assert sent["TransactionDesc"] == "Order 42" and sent["PartyB"] == "174379"
    assert (
        base64.b64decode(sent["Password"]).decode()
        == "174379" + SANDBOX_PASSKEY + sent["Timestamp"]
    )
    assert sent["CallBackURL"].startswith("https://gw.example/api/v1/webhooks/mpesa/stk-callback?")


async def test_buy_goods_sends_the_till(httpx_mock):
    settings = MpesaSettings(transaction_type="CustomerBuyGoodsOnline", till_number="5678901")
    ctx = make_context(plugin.DECLARATION, settings, base_url=BASE, public_url="https://gw")
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        json={
            "MerchantRequestID": "m",
            "CheckoutRequestID": "c",
            "ResponseCode": "1",
            "ResponseDescription": "Rejected",
        },
    )
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.initiate(ctx, _payment())
    assert declined.value.provider_code == "1"
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert (sent["TransactionType"], sent["PartyB"]) == ("CustomerBuyGoodsOnline", "5678901")
    await ctx.http.aclose()


async def test_stk_push_error_envelope(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST", status_code=400, json=_envelope("400.002.02", "Bad Request - Invalid Amount")
    )
    with pytest.raises(InvalidRequest) as raised:
        await plugin.initiate(context, _payment())
    assert raised.value.provider_code == "400.002.02"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (
            {"ResponseCode": "0", "ResultCode": "1032", "ResultDesc": "Request cancelled by user"},
            "failed",
            "1032",
        ),
        (
            {"ResponseCode": "0", "ResultCode": "1037", "ResultDesc": "DS timeout"},
            "expired",
            "1037",
        ),
        ({"ResponseCode": "0", "ResultCode": "0", "ResultDesc": "ok"}, "succeeded", None),
        ({"ResponseCode": "0"}, "pending", None),
    ],
)
async def test_stk_query_results(context, httpx_mock, answer, status, code):
    _token(httpx_mock)
    httpx_mock.add_response(method="POST", url=f"{BASE}{plugin.STK_QUERY}", json=answer)
    report = await plugin.status(context, _payment(provider_reference="ws_CO_1"))
    assert report.status == status
    assert (report.failure.provider_code if report.failure else None) == code


async def test_stk_query_being_processed_is_pending(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        status_code=500,
        json=_envelope("500.001.1001", "The transaction is being processed"),
    )
    report = await plugin.status(context, _payment(provider_reference="ws_CO_1"))
    assert report.status == "pending"


async def test_stk_query_without_reference_cannot_ask(context):
    # no CheckoutRequestID (the push's answer was lost): Daraja cannot be asked, said so
    with pytest.raises(NotSupported) as caught:
        await plugin.status(context, _payment())
    assert caught.value.code == "cannot_ask"


# -- B2C and the Result-based operations ----------------------------------------------------


async def test_b2c_request_and_duplicate(context, httpx_mock):
    _token(httpx_mock)
    url = f"{BASE}{plugin.B2C}"
    httpx_mock.add_response(
        method="POST",
        url=url,
        json={
            "ConversationID": "AG_20240706_1",
            "OriginatorConversationID": "x",
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )
    httpx_mock.add_response(
        method="POST",
        url=url,
        status_code=500,
        json=_envelope("500.002.1001", "Duplicate OriginatorConversationID."),
    )
    payment = _payment(type="disbursement", metadata={"command_id": "SalaryPayment"})
    ack = await plugin.initiate(context, payment)
    assert ack.provider_reference == "AG_20240706_1"
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["OriginatorConversationID"] == payment.id
    assert sent["CommandID"] == "SalaryPayment" and sent["PartyB"] == "254712345678"
    assert sent["InitiatorName"] == "testapi" and sent["Occassion"] == "INV42"
    again = await plugin.initiate(context, payment)
    assert (
        again.status == "pending" and again.provider_data["OriginatorConversationID"] == payment.id
    )
    with pytest.raises(InvalidRequest):
        await plugin.initiate(context, _payment(type="disbursement", metadata={"command_id": "X"}))


async def test_unreadable_ack(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(method="POST", json={"unexpected": True})
    with pytest.raises(OutcomeUnknown):
        await plugin.initiate(context, _payment(type="disbursement"))


async def test_transaction_status_reads_an_earlier_querys_late_result(context, httpx_mock):
    """A Result that came after its query stopped waiting is M-Pesa's latest word on the
    payment: the next query, whose own Result has not come, reads it (the chaos test saw a
    B2C payment polled 13 times, each Result arriving after its 4 s wait)."""
    _token(httpx_mock)
    for conversation in ("AG_1", "AG_2"):
        httpx_mock.add_response(
            method="POST",
            json={
                "ConversationID": conversation,
                "OriginatorConversationID": "o",
                "ResponseCode": "0",
            },
        )
    payment = _payment(type="disbursement")
    with pytest.raises(NoAnswerYet):
        await plugin.status(context, payment)
    late = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "ok",
            "OriginatorConversationID": "o",
            "ConversationID": "AG_1",
            "TransactionID": "T1",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "TransactionStatus", "Value": "Completed"},
                    {"Key": "Amount", "Value": 150.0},
                    {"Key": "ReceiptNo", "Value": "R1"},
                ]
            },
        }
    }
    await plugin.parse_callback(context, inbound(context, "status-result", late, payment.id))
    report = await plugin.status(context, payment)  # AG_2's Result never comes
    assert report.status == "succeeded" and report.provider_transaction_id == "R1"
    other = _payment(type="disbursement")  # another payment's query does not read it
    with pytest.raises(NoAnswerYet):
        httpx_mock.add_response(
            method="POST",
            json={"ConversationID": "AG_3", "OriginatorConversationID": "p", "ResponseCode": "0"},
        )
        await plugin.status(context, other)


async def test_transaction_status_waits_for_its_result(context, httpx_mock):
    _token(httpx_mock)
    for _ in range(2):
        httpx_mock.add_response(
            method="POST",
            json={"ConversationID": "AG_1", "OriginatorConversationID": "o", "ResponseCode": "0"},
        )
    payment = _payment(type="disbursement")
    with pytest.raises(NoAnswerYet):  # no Result arrives: M-Pesa told nothing (not pending)
        await plugin.status(context, payment)
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "ok",
            "OriginatorConversationID": "o",
            "ConversationID": "AG_1",
            "TransactionID": "T1",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "TransactionStatus", "Value": "Failed"},
                    {"Key": "ReasonType", "Value": "2001"},
                    {"Key": "TransactionReason"},
                    {"Key": "Amount", "Value": 150.0},
                    {"Key": "ReceiptNo", "Value": "R1"},
                ]
            },
        }
    }
    outcome = await plugin.parse_callback(
        context, inbound(context, "status-result", body, payment.id)
    )
    assert outcome.update is None and outcome.reply.body == {
        "ResultCode": 0,
        "ResultDesc": "Accepted",
    }
    report = await plugin.status(context, payment)
    assert report.status == "failed" and report.failure.provider_code == "2001"
    assert report.amount == Decimal("150.0") and report.provider_transaction_id == "R1"


async def test_reversal_results(context, httpx_mock):
    paid = _payment(provider_transaction_id="SGF5A1B2C3")
    _token(httpx_mock)
    for conversation in ("AG_R1", "AG_R2", "AG_R3"):
        httpx_mock.add_response(
            method="POST",
            json={
                "ConversationID": conversation,
                "OriginatorConversationID": "o",
                "ResponseCode": "0",
            },
        )
    await context.results.put(
        "mpesa:result:AG_R1",
        json.dumps({"ResultCode": 0, "ConversationID": "AG_R1", "TransactionID": "REV1"}).encode(),
    )
    await context.results.put(
        "mpesa:result:AG_R2",
        json.dumps(
            {"ResultCode": "R000002", "ResultDesc": "The OriginalTransactionID is invalid."}
        ).encode(),
    )
    report = await plugin.reverse(context, paid, None, "Duplicate")
    assert report.status == "reversed" and report.provider_data["ReversalTransactionID"] == "REV1"
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["RecieverIdentifierType"] == "11" and sent["TransactionID"] == "SGF5A1B2C3"
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.reverse(context, paid, Decimal(50), None)
    assert declined.value.provider_code == "R000002"
    assert (await plugin.reverse(context, paid, None, None)).status == "pending"
    with pytest.raises(NotSupported):
        await plugin.reverse(context, _payment(type="disbursement"), None, None)
    with pytest.raises(InvalidRequest):
        await plugin.reverse(context, _payment(), None, None)


async def test_balance(context, httpx_mock):
    _token(httpx_mock)
    for conversation in ("AG_B1", "AG_B2", "AG_B3"):
        httpx_mock.add_response(
            method="POST",
            json={
                "ConversationID": conversation,
                "OriginatorConversationID": "o",
                "ResponseCode": "0",
            },
        )
    ok = {
        "Result": {
            "ResultType": "0",
            "ResultCode": "0",
            "ConversationID": "AG_B1",
            "ResultParameters": {
                "ResultParameter": {
                    "Key": "AccountBalance",
                    "Value": "Working Account|KES|0.00|0.00|0.00|0.00&Utility Account|KES|"
                    "98500.00|98400.00|0.00|0.00&bad",
                }
            },
        }
    }
    await plugin.parse_callback(context, inbound(context, "balance-result", ok))
    report = await plugin.balance(context)
    utility = next(b for b in report.balances if b.account == "Utility Account")
    assert utility.available == Decimal("98500.00") and utility.current == Decimal("98400.00")
    assert len(report.balances) == 2
    refused = {
        "Result": {
            "ResultCode": 2001,
            "ResultDesc": "The initiator information is invalid.",
            "ConversationID": "AG_B2",
        }
    }
    await plugin.parse_callback(context, inbound(context, "timeout", refused))
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.balance(context)
    assert declined.value.provider_code == "2001"
    with pytest.raises(ProviderUnavailable):
        await plugin.balance(context)


def test_parse_balances_short_form():
    (only,) = plugin.parse_balances("Utility Account|KES|10.00")
    assert only.available == Decimal("10.00") and only.current is None


# -- callbacks ------------------------------------------------------------------------------

SUCCESS = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "m1",
            "CheckoutRequestID": "ws_CO_1",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 150.00},
                    {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20191219102115},
                    {"Name": "PhoneNumber", "Value": 254712345678},
                ]
            },
        }
    }
}


async def test_stk_success_callback(context):
    payment_id = str(uuid.uuid4())
    outcome = await plugin.parse_callback(
        context, inbound(context, "stk-callback", SUCCESS, payment_id)
    )
    update = outcome.update
    assert (update.status, update.payment_id, update.provider_reference) == (
        "succeeded",
        payment_id,
        "ws_CO_1",
    )
    assert update.amount == Decimal("150") and update.msisdn == "+254712345678"
    assert update.provider_transaction_id == "NLJ7RT61SV"
    assert update.provider_data["TransactionDate"] == "20191219102115"
    assert outcome.authenticated is False
    assert outcome.reply.body == {"ResultCode": 0, "ResultDesc": "Accepted"}


@pytest.mark.parametrize(("code", "status"), [(1032, "failed"), ("1037", "expired"), (1, "failed")])
async def test_stk_failure_callback_has_no_metadata(context, code, status):
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m",
                "CheckoutRequestID": "ws_CO_2",
                "ResultCode": code,
                "ResultDesc": "Request cancelled by user",
            }
        }
    }
    update = (await plugin.parse_callback(context, inbound(context, "stk-callback", body))).update
    assert update.status == status and update.failure.provider_code == str(code)
    assert update.failure.message == "Request cancelled by user"
    assert (
        update.amount is None and update.msisdn is None and update.provider_transaction_id is None
    )


async def test_callbacks_are_verified_then_decoded(context):
    forged = inbound(context, "stk-callback", SUCCESS)
    forged = InboundCallback(
        provider="mpesa",
        kind="stk-callback",
        method="POST",
        path=forged.path,
        query={"token": "nope"},
        body=forged.body,
    )
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(context, forged)
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(context, inbound(context, "stk-callback", b"{not json"))
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(context, inbound(context, "b2c-result", {"Body": {}}))


B2C_RESULT = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "PID",
        "ConversationID": "AG_20240715_1",
        "TransactionID": "SGF7Z9Y8X1",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": 500},
                {"Key": "TransactionReceipt", "Value": "SGF7Z9Y8X1"},
                {"Key": "ReceiverPartyPublicName", "Value": "254712345678 - JANE DOE"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 98500.00},
            ]
        },
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x"}},
    }
}


async def test_b2c_results(context):
    payment_id = str(uuid.uuid4())
    body = json.loads(json.dumps(B2C_RESULT).replace("PID", payment_id))
    update = (
        await plugin.parse_callback(context, inbound(context, "b2c-result", body, payment_id))
    ).update
    assert (update.status, update.payment_id, update.provider_reference) == (
        "succeeded",
        payment_id,
        "AG_20240715_1",
    )
    assert update.amount == Decimal(500) and update.msisdn == "+254712345678"
    assert update.provider_transaction_id == "SGF7Z9Y8X1"
    failed = {
        "Result": {
            "ResultType": "0",
            "ResultCode": "2001",
            "OriginatorConversationID": payment_id,
            "ResultDesc": "The initiator information is invalid.",
            "TransactionID": "T9",
            "ConversationID": "AG_2",
            "ResultParameters": {
                "ResultParameter": {"Key": "BOCompletedTime", "Value": 20200120164825}
            },
        }
    }
    update = (
        await plugin.parse_callback(context, inbound(context, "b2c-result", failed, payment_id))
    ).update
    assert (
        update.status == "failed"
        and update.failure.provider_code == "2001"
        and update.amount is None
    )
    timeout = {
        "Result": {
            "ResultType": 1,
            "ResultCode": 1,
            "ResultDesc": "The service request has timed out.",
            "OriginatorConversationID": payment_id,
            "ConversationID": "AG_3",
        }
    }
    update = (
        await plugin.parse_callback(context, inbound(context, "timeout", timeout, payment_id))
    ).update
    assert update.status == "expired" and update.failure.provider_code == "QueueTimeOut"
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(
            context, inbound(context, "b2c-result", body, str(uuid.uuid4()))
        )


async def test_masked_numbers_are_not_compared():
    assert plugin._e164("2547 ***** 126") is None
    assert plugin._e164("25412") is None
    assert plugin._e164(None) is None


C2B = {
    "TransactionType": "Pay Bill",
    "TransID": "SGF5A1B2C3",
    "TransTime": "20240715110402",
    "TransAmount": "250.00",
    "BusinessShortCode": "600984",
    "BillRefNumber": "ACC-7781",
    "InvoiceNumber": "",
    "OrgAccountBalance": "",
    "ThirdPartyTransID": "",
    "MSISDN": "2547 ***** 678",
    "FirstName": "JANE",
    "MiddleName": "",
    "LastName": "",
}


async def test_c2b_validation_and_confirmation_replies(context):
    validation = await plugin.parse_callback(context, inbound(context, "c2b-validation", C2B))
    assert validation.reply.body == {"ResultCode": "0", "ResultDesc": "Accepted"}
    confirmation = await plugin.parse_callback(context, inbound(context, "c2b-confirmation", C2B))
    assert confirmation.reply.body == {"ResultCode": 0, "ResultDesc": "Success"}
    assert confirmation.update is None
    payment = confirmation.inbound
    assert payment is not None
    assert (payment.provider_transaction_id, payment.amount, payment.currency) == (
        "SGF5A1B2C3",
        Decimal("250.00"),
        "KES",
    )
    assert payment.account_reference == "ACC-7781"
    assert payment.msisdn is None  # masked by Daraja: never guessed
    assert payment.payer_name == "JANE"
    assert payment.origin == "c2b"
    assert payment.provider_data["BusinessShortCode"] == "600984"


async def test_c2b_confirmation_with_a_plain_number_and_no_amount(context):
    plain = dict(C2B, MSISDN="254708374149", ThirdPartyTransID="ord-42")
    outcome = await plugin.parse_callback(context, inbound(context, "c2b-confirmation", plain))
    assert outcome.inbound.msisdn == "+254708374149"
    assert outcome.inbound.provider_data["ThirdPartyTransID"] == "ord-42"
    for amount in ("", "abc", "-5.00", "0", "10.001"):
        broken = dict(C2B, TransAmount=amount)
        with pytest.raises(InvalidRequest, match="TransAmount"):
            await plugin.parse_callback(context, inbound(context, "c2b-confirmation", broken))


ORCHESTRATOR = "https://shop.example/mpesa/validate"


def _validating(**settings) -> Any:
    values = dict(c2b_validation_url=ORCHESTRATOR, c2b_validation_secret="whsec_v")
    values.update(settings)
    return make_context(
        plugin.DECLARATION, MpesaSettings(**values), base_url=BASE, public_url="https://gw.example"
    )


@pytest.mark.parametrize(
    ("answer", "reply"),
    [
        ({"accept": True}, {"ResultCode": "0", "ResultDesc": "Accepted"}),
        (
            {"accept": True, "third_party_id": "order-0042"},
            {"ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": "order-0042"},
        ),
        (
            {"accept": False, "result_code": "C2B00012"},
            {"ResultCode": "C2B00012", "ResultDesc": "Rejected"},
        ),
        (
            {"accept": False, "result_code": "C2B00013"},
            {"ResultCode": "C2B00013", "ResultDesc": "Rejected"},
        ),
        # an undocumented code becomes "Other Error"
        (
            {"accept": False, "result_code": "NOPE"},
            {"ResultCode": "C2B00016", "ResultDesc": "Rejected"},
        ),
        ({"accept": False}, {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}),
    ],
)
async def test_c2b_validation_asks_the_orchestrator(httpx_mock, answer, reply):
    ctx = _validating()
    httpx_mock.add_response(method="POST", url=ORCHESTRATOR, json=answer)
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "c2b-validation", C2B))
    assert outcome.reply.body == reply
    asked = httpx_mock.get_requests()[-1]
    question = json.loads(asked.content)
    assert question["account_reference"] == "ACC-7781"
    assert question["amount"] == "250.00"
    assert question["transaction_id"] == "SGF5A1B2C3"
    from mmo_core.crypto import verify_payload

    assert verify_payload(asked.content, asked.headers["Mmo-Signature"], "whsec_v")
    await ctx.http.aclose()


@pytest.mark.parametrize("policy", ["accept", "reject"])
@pytest.mark.parametrize("failure", ["timeout", "500", "garbage"])
async def test_c2b_validation_when_the_orchestrator_fails(httpx_mock, policy, failure):
    ctx = _validating(c2b_validation_on_timeout=policy, c2b_validation_secret="")
    if failure == "timeout":
        httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=ORCHESTRATOR)
    elif failure == "500":
        httpx_mock.add_response(url=ORCHESTRATOR, status_code=500, json={"accept": True})
    else:
        httpx_mock.add_response(url=ORCHESTRATOR, text="<html>")
    outcome = await plugin.parse_callback(ctx, inbound(ctx, "c2b-validation", C2B))
    expected = "0" if policy == "accept" else "C2B00016"
    assert outcome.reply.body["ResultCode"] == expected
    assert "Mmo-Signature" not in httpx_mock.get_requests()[-1].headers
    await ctx.http.aclose()


# -- setup ----------------------------------------------------------------------------------


async def test_setup_refuses_urls_daraja_would_refuse():
    ctx = make_context(
        plugin.DECLARATION, MpesaSettings(), base_url=BASE, public_url="https://safaricom.example"
    )
    with pytest.raises(ConfigurationError, match=r"'safaricom' \(the URL has it"):
        await plugin.setup(ctx)
    await ctx.http.aclose()
    # the account's name is in its callback URLs (`account=`): Daraja reads it too
    named = make_context(
        plugin.DECLARATION,
        MpesaSettings(),
        base_url=BASE,
        public_url="https://gw.example",
        account="sqlshop",
    )
    with pytest.raises(ConfigurationError, match=r"'sql' \(the account's name has it"):
        await plugin.setup(named)
    await named.http.aclose()


async def test_setup_registers_the_daraja_alias_by_default(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/mpesa/c2b/v2/registerurl",
        json={"OriginatorCoversationID": "x", "ResponseCode": "0", "ResponseDescription": "ok"},
    )
    await plugin.setup(context)
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["ValidationURL"].startswith(
        "https://gw.example/api/v1/webhooks/daraja/c2b-validation?"
    )
    assert "mpesa" not in sent["ConfirmationURL"].lower()
    with pytest.raises(ValueError, match="not a webhook alias"):
        context.callback_url("c2b-validation", segment="elsewhere")


async def test_setup_registers_through_the_alias(httpx_mock):
    settings = MpesaSettings(c2b_url_prefix="https://gw.example/hooks/dj/")
    ctx = make_context(plugin.DECLARATION, settings, base_url=BASE, public_url="https://gw.example")
    _token(httpx_mock)
    url = f"{BASE}/mpesa/c2b/v2/registerurl"
    httpx_mock.add_response(
        method="POST",
        url=url,
        json={
            "OriginatorCoversationID": "x",
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        },
    )
    httpx_mock.add_response(
        method="POST",
        url=url,
        status_code=500,
        json=_envelope("500.003.1001", "Urls are already registered"),
    )
    report = await plugin.setup(ctx)
    assert "registered for shortcode 600984" in report.lines[0]
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["ConfirmationURL"].startswith("https://gw.example/hooks/dj/c2b-confirmation?token=")
    assert sent["ResponseType"] == "Completed"
    again = await plugin.setup(ctx)
    assert "already registered" in again.lines[0]
    await ctx.http.aclose()


# -- reversal_status: a reversal whose Result came after `reverse` returned -------------------


def _ack_response(httpx_mock, conversation: str) -> None:
    httpx_mock.add_response(
        method="POST",
        json={"ConversationID": conversation, "OriginatorConversationID": "o", "ResponseCode": "0"},
    )


async def test_late_reversal_result_is_found_by_reversal_status(context, httpx_mock):
    from mmo_core.types import Reversal

    paid = _payment(provider_transaction_id="SGF5A1B2C3")
    _token(httpx_mock)
    _ack_response(httpx_mock, "AG_LATE")
    pending = await plugin.reverse(context, paid, None, "Duplicate")
    assert pending.status == "pending"
    assert pending.provider_data == {"ReversalConversationID": "AG_LATE"}
    reversal = Reversal(
        id=str(uuid.uuid4()),
        amount=Decimal(150),
        currency="KES",
        status="pending",
        provider_data=pending.provider_data,
    )
    # the Result comes to reversal-result later, in whichever process
    late = {"Result": {"ResultCode": 0, "ConversationID": "AG_LATE", "TransactionID": "REV9"}}
    await plugin.parse_callback(
        context, inbound(context, "reversal-result", late, payment_id=paid.id)
    )
    done = await plugin.reversal_status(context, paid, reversal)
    assert done.status == "reversed" and done.provider_data["ReversalTransactionID"] == "REV9"

    refused = {
        "Result": {
            "ResultCode": "R000001",
            "ResultDesc": "already reversed",
            "ConversationID": "AG_NO",
        }
    }
    await plugin.parse_callback(
        context, inbound(context, "reversal-result", refused, payment_id=paid.id)
    )
    no = msgspec.structs.replace(reversal, provider_data={"ReversalConversationID": "AG_NO"})
    report = await plugin.reversal_status(context, paid, no)
    assert (report.status, report.failure.provider_code) == ("failed", "R000001")


@pytest.mark.parametrize(("held", "status"), [("Reversed", "reversed"), ("Completed", "pending")])
async def test_reversal_status_without_its_result_asks_transaction_status(
    context, httpx_mock, held, status
):
    from mmo_core.types import Reversal

    paid = _payment(provider_transaction_id="SGF5A1B2C3")
    reversal = Reversal(id=str(uuid.uuid4()), amount=Decimal(150), currency="KES", status="unknown")
    _token(httpx_mock)
    _ack_response(httpx_mock, "AG_TS1")
    result = {
        "ResultCode": 0,
        "ConversationID": "AG_TS1",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionStatus", "Value": held}]},
    }
    await context.results.put("mpesa:result:AG_TS1", json.dumps(result).encode())
    report = await plugin.reversal_status(context, paid, reversal)
    assert report.status == status
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["CommandID"] == "TransactionStatusQuery" and sent["TransactionID"] == "SGF5A1B2C3"
    with pytest.raises(InvalidRequest):
        await plugin.reversal_status(context, _payment(), reversal)


# -- numbers where Daraja documents text (issue 13) ----------------------------------------


async def test_answers_with_numbers_for_text_are_read(context, httpx_mock):
    """STK push and query, the B2C ack and the error envelope: ids, codes as numbers."""
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_PUSH}",
        json={"MerchantRequestID": 291153462, "CheckoutRequestID": 1912, "ResponseCode": 0},
    )
    ack = await plugin.initiate(context, _payment())
    assert ack.provider_reference == "1912"
    assert ack.provider_data["MerchantRequestID"] == "291153462"
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_QUERY}",
        json={"ResponseCode": 0, "CheckoutRequestID": 1912, "ResultCode": 1032, "ResultDesc": "x"},
    )
    report = await plugin.status(context, _payment(provider_reference="1912"))
    assert report.status == "failed" and report.failure.provider_code == "1032"
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.B2C}",
        json={"ConversationID": 2024, "OriginatorConversationID": 7, "ResponseCode": 0},
    )
    ack = await plugin.initiate(context, _payment(type="disbursement"))
    assert ack.provider_reference == "2024"
    response = httpx.Response(
        500, json={"requestId": 117282929992, "errorCode": "500.003.02", "errorMessage": "busy"}
    )
    with pytest.raises(RateLimited) as raised:
        client.raise_for(response, "initiate")
    assert raised.value.request_id == "117282929992"


async def test_callbacks_with_numbers_for_text_are_read(context):
    """STK callback ids, Result ids and codes, C2B's all-string body as numbers."""
    body = json.loads(json.dumps(SUCCESS))
    body["Body"]["stkCallback"].update(MerchantRequestID=29115, CheckoutRequestID=191220)
    update = (await plugin.parse_callback(context, inbound(context, "stk-callback", body))).update
    assert update.status == "succeeded" and update.provider_reference == "191220"
    assert update.provider_data["MerchantRequestID"] == "29115"

    payment_id = str(uuid.uuid4())
    result = json.loads(json.dumps(B2C_RESULT).replace("PID", payment_id))
    result["Result"].update(TransactionID=1234567890, ConversationID=2024, ResultCode="0")
    update = (
        await plugin.parse_callback(context, inbound(context, "b2c-result", result, payment_id))
    ).update
    assert update.status == "succeeded" and update.provider_transaction_id == "1234567890"
    assert update.provider_reference == "2024" and update.amount == Decimal("500")

    numeric = dict(
        C2B,
        TransID=5551234567,
        TransTime=20240715110402,
        TransAmount=250.00,
        BusinessShortCode=600984,
        BillRefNumber=7781,
        OrgAccountBalance=10250.00,
        MSISDN=254708374149,
    )
    payment = (
        await plugin.parse_callback(context, inbound(context, "c2b-confirmation", numeric))
    ).inbound
    assert (payment.provider_transaction_id, payment.amount) == ("5551234567", Decimal("250.00"))
    assert payment.account_reference == "7781" and payment.msisdn == "+254708374149"
    assert payment.provider_data["BusinessShortCode"] == "600984"
    assert payment.provider_data["TransTime"] == "20240715110402"
    # still refused: a list or an object where text is wanted
    for broken in (dict(C2B, TransID=[1]), dict(C2B, BusinessShortCode={"a": 1})):
        with pytest.raises(InvalidRequest):
            await plugin.parse_callback(context, inbound(context, "c2b-confirmation", broken))


async def test_status_result_with_numbers_for_text_is_read(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        json={"ConversationID": "AG_9", "OriginatorConversationID": "o", "ResponseCode": "0"},
    )
    payment = _payment(type="disbursement")
    body = {
        "Result": {
            "ResultType": "0",
            "ResultCode": 0,
            "OriginatorConversationID": 88,
            "ConversationID": "AG_9",
            "TransactionID": 1000000,
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "TransactionStatus", "Value": "Completed"},
                    {"Key": "Amount", "Value": 150},
                    {"Key": "ReceiptNo", "Value": 9876543210},
                ]
            },
        }
    }
    await plugin.parse_callback(context, inbound(context, "status-result", body, payment.id))
    report = await plugin.status(context, payment)
    assert report.status == "succeeded" and report.provider_transaction_id == "9876543210"
    assert report.amount == Decimal("150")


# -- unknown to the operator, timed-out prompts --------------------------------------------


async def test_stk_query_of_a_transaction_daraja_never_heard_of(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_QUERY}",
        status_code=500,
        json=_envelope("500.001.1001", "This transaction does not exist"),
    )
    with pytest.raises(UnknownToOperator) as raised:
        await plugin.status(context, _payment(provider_reference="ws_CO_unknown"))
    assert raised.value.provider_code == "500.001.1001"


async def test_transaction_status_of_a_transaction_daraja_never_heard_of(context, httpx_mock):
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        json={"ConversationID": "AG_7", "OriginatorConversationID": "o", "ResponseCode": "0"},
    )
    payment = _payment(type="disbursement")
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": "R000002",
            "ResultDesc": "The OriginalTransactionID is invalid.",
            "OriginatorConversationID": "o",
            "ConversationID": "AG_7",
        }
    }
    await plugin.parse_callback(context, inbound(context, "status-result", body, payment.id))
    with pytest.raises(UnknownToOperator) as raised:
        await plugin.status(context, payment)
    assert raised.value.provider_code == "R000002"


@pytest.mark.parametrize("code", ["1037", "1036", "1019", 1036])
async def test_timed_out_prompts_end_expired(context, httpx_mock, code):
    body = {
        "Body": {
            "stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "c", "ResultCode": code}
        }
    }
    update = (await plugin.parse_callback(context, inbound(context, "stk-callback", body))).update
    assert update.status == "expired" and update.failure.code == "prompt_expired"
    _token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_QUERY}",
        json={"ResponseCode": "0", "ResultCode": str(code), "ResultDesc": "timed out"},
    )
    report = await plugin.status(context, _payment(provider_reference="c"))
    assert report.status == "expired" and report.failure.code == "prompt_expired"


# -- payer_message and derived fields on the wire ------------------------------------------


@pytest.mark.parametrize(
    ("changes", "limit"),
    [
        ({"payer_message": "ABCDEFGHIJKLM"}, "at most 12 letters and digits"),
        ({"payer_message": "INV-42"}, "at most 12 letters and digits"),
        ({"payer_message": "Café"}, "at most 12 letters and digits"),
        ({"payer_message": "X", "type": "disbursement"}, "2 to 100"),
        ({"payer_message": "X" * 101, "type": "disbursement"}, "2 to 100"),
        ({"payer_message": "line\nbreak", "type": "disbursement"}, "2 to 100"),
    ],
)
def test_payer_message_over_the_limit_is_refused(context, changes, limit):
    with pytest.raises(InvalidRequest, match=limit) as raised:
        plugin.validate(context, _payment(**changes))
    assert raised.value.code == "invalid_payer_message"
    assert "payer_message" in raised.value.message and "M-Pesa" in raised.value.message


async def test_payer_message_takes_the_payer_facing_field(context, httpx_mock):
    _token(httpx_mock)
    plugin.validate(context, _payment(payer_message="ABCDEFGHIJKL"))
    plugin.validate(context, _payment(payer_message="X" * 100, type="disbursement"))
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.STK_PUSH}",
        json={"MerchantRequestID": "m", "CheckoutRequestID": "c", "ResponseCode": "0"},
    )
    await plugin.initiate(context, _payment(reference="ORDER-" + "9" * 60, payer_message="Shop42"))
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["AccountReference"] == "Shop42"
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}{plugin.B2C}",
        json={"ConversationID": "AG_1", "OriginatorConversationID": "o", "ResponseCode": "0"},
    )
    payment = _payment(type="disbursement", payer_message="Your refund for order 42")
    await plugin.initiate(context, payment)
    sent = json.loads(httpx_mock.get_requests()[-1].content)
    assert sent["Remarks"] == "Your refund for order 42" and sent["Occassion"] == "INV42"
    assert payment.reference == "INV42"  # the payment keeps the orchestrator's reference


async def test_long_reference_fields_on_the_wire(context, httpx_mock):
    _token(httpx_mock)
    reference = "ORDER/2026-12-01 ü#" + "x" * 109
    assert len(reference) == 128
    for _ in range(2):
        httpx_mock.add_response(
            method="POST",
            url=f"{BASE}{plugin.B2C}",
            json={"ConversationID": "AG_1", "OriginatorConversationID": "o", "ResponseCode": "0"},
        )
    payment = _payment(type="disbursement", reference=reference, description=None)
    await plugin.initiate(context, payment)
    await plugin.initiate(context, payment)
    first, second = (json.loads(r.content) for r in httpx_mock.get_requests()[-2:])
    assert len(first["Remarks"]) == len(first["Occassion"]) == 100
    assert first["Occassion"].startswith(reference[:93])
    assert (first["Remarks"], first["Occassion"]) == (second["Remarks"], second["Occassion"])
