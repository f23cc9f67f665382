"""The Daraja simulator over real HTTP: auth, envelopes, test numbers, faults, C2B."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid

import httpx
import pytest
from litestar import Litestar, Request, post
from litestar.params import FromPath
from mmo_core.testing import CallbackRecorder, serve_app
from mmo_mpesa import client
from mmo_mpesa.settings import SANDBOX_PASSKEY, MpesaSettings
from mmo_mpesa.simulator import create_simulator

KEY, SECRET = "mmo-sandbox-consumer-key", "mmo-sandbox-consumer-secret"


@pytest.fixture
def recorder():
    recorder = CallbackRecorder()
    with serve_app(recorder) as served:
        yield recorder, served.url


@pytest.fixture
async def daraja():
    with serve_app(create_simulator(MpesaSettings(callback_delay=0.05))) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            yield http


async def _bearer(http) -> dict[str, str]:
    answer = await http.get("/oauth/v1/generate?grant_type=client_credentials", auth=(KEY, SECRET))
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == "3599" and len(body["access_token"]) == 28
    return {"Authorization": f"Bearer {body['access_token']}"}


def _stk(phone="254712345678", callback="http://127.0.0.1:9/cb", **changes):
    stamp = client.timestamp()
    body = {
        "BusinessShortCode": "174379",
        "Password": client.password("174379", SANDBOX_PASSKEY, stamp),
        "Timestamp": stamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": "150",
        "PartyA": phone,
        "PartyB": "174379",
        "PhoneNumber": phone,
        "CallBackURL": callback,
        "AccountReference": "INV42",
        "TransactionDesc": "Order 42",
    }
    body.update(changes)
    return body


def _assert_envelope(answer, status, code, message=None):
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["errorCode"] == code and body["requestId"]
    if message is not None:
        assert body["errorMessage"] == message


async def test_oauth_errors(daraja):
    _assert_envelope(
        await daraja.get("/oauth/v1/generate?grant_type=password", auth=(KEY, SECRET)),
        400,
        "400.008.02",
        "Invalid grant type passed",
    )
    _assert_envelope(
        await daraja.get("/oauth/v1/generate?grant_type=client_credentials", auth=(KEY, "wrong")),
        400,
        "400.008.01",
    )
    _assert_envelope(
        await daraja.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            headers={"Authorization": "Bearer x"},
        ),
        400,
        "400.008.01",
        "Invalid authentication type passed",
    )
    _assert_envelope(
        await daraja.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            headers={"Authorization": "Basic !!"},
        ),
        400,
        "400.008.01",
    )


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/mpesa/stkpush/v1/processrequest", 404, "404.001.03"),
        ("/mpesa/stkpushquery/v1/query", 404, "404.001.03"),
        ("/mpesa/b2c/v3/paymentrequest", 401, "401.002.01"),
        ("/mpesa/accountbalance/v1/query", 401, "401.002.01"),
        ("/mpesa/transactionstatus/v1/query", 400, "400.003.01"),
        ("/mpesa/reversal/v1/request", 400, "400.003.01"),
        ("/mpesa/c2b/v2/registerurl", 400, "400.003.01"),
    ],
)
async def test_each_product_has_its_invalid_token_code(daraja, path, status, code):
    _assert_envelope(
        await daraja.post(path, json={}, headers={"Authorization": "Bearer nope"}), status, code
    )


async def test_wrong_method_is_405(daraja):
    _assert_envelope(await daraja.get("/mpesa/stkpush/v1/processrequest"), 405, "405.001")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"Timestamp": "2024"}, "Timestamp"),
        ({"Timestamp": "20241345103045"}, "Timestamp"),
        ({"Amount": 1.5}, "Amount"),
        ({"Amount": 0}, "Amount"),
        ({"Amount": True}, "Amount"),
        ({"PhoneNumber": "0712345678"}, "PhoneNumber"),
        ({"PartyA": "25471234"}, "PartyA"),
        ({"CallBackURL": "https://x.example/a b"}, "CallBackURL"),
        ({"TransactionType": "PayBill"}, "TransactionType"),
        ({"AccountReference": "THIRTEEN-CHAR"}, "AccountReference"),
        ({"BusinessShortCode": "12"}, "BusinessShortCode"),
    ],
)
async def test_invalid_fields(daraja, changes, field):
    answer = await daraja.post(
        "/mpesa/stkpush/v1/processrequest", json=_stk(**changes), headers=await _bearer(daraja)
    )
    _assert_envelope(answer, 400, "400.002.02", f"Bad Request - Invalid {field}")


async def test_credentials_and_payload(daraja):
    headers = await _bearer(daraja)
    path = "/mpesa/stkpush/v1/processrequest"
    _assert_envelope(
        await daraja.post(path, json=_stk(Password="d3Jvbmc="), headers=headers),
        500,
        "500.001.1001",
        "Wrong credentials",
    )
    stamp = client.timestamp()
    other = _stk(
        BusinessShortCode="600100",
        Timestamp=stamp,
        Password=client.password("600100", SANDBOX_PASSKEY, stamp),
    )
    _assert_envelope(
        await daraja.post(path, json=other, headers=headers),
        500,
        "500.001.1001",
        "Merchant does not exist",
    )
    as_json = {**headers, "Content-Type": "application/json"}
    _assert_envelope(await daraja.post(path, content=b"[1]", headers=as_json), 400, "400.002.05")
    _assert_envelope(await daraja.post(path, content=b"{", headers=as_json), 400, "400.002.05")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_declared_json_is_refused(daraja, content_type):
    """Daraja's documented answer to a wrong Content-Type, even for a valid JSON body."""
    headers = await _bearer(daraja)
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = json.dumps(_stk()).encode()
    answer = await daraja.post("/mpesa/stkpush/v1/processrequest", content=body, headers=headers)
    _assert_envelope(answer, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")
    entries = (await daraja.get("/_simulator/ledger")).json()["entries"]
    assert entries == []


async def test_a_json_content_type_with_parameters_and_numbers_for_strings(daraja):
    """`application/json; charset=utf-8`, and the numbers SDKs send for codes and phones."""
    headers = await _bearer(daraja)
    headers["Content-Type"] = "application/json; charset=UTF-8"
    stamp = client.timestamp()
    body = _stk(BusinessShortCode=174379, PartyB=174379, Amount=1, Timestamp=int(stamp))
    body.update(Password=client.password("174379", SANDBOX_PASSKEY, stamp))
    body.update(PartyA=254712345678, PhoneNumber=254712345678)
    answer = await daraja.post(
        "/mpesa/stkpush/v1/processrequest", content=json.dumps(body).encode(), headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ResponseCode"] == "0"


async def test_unknown_paths_and_methods_answer_with_darajas_envelope(daraja):
    """Not Litestar's `{"status_code", "detail"}`: SDKs read `errorCode`/`errorMessage`."""
    headers = await _bearer(daraja)
    _assert_envelope(
        await daraja.post("/mpesa/stkpush/v9/processrequest", json={}, headers=headers),
        404,
        "404.001.01",
        "Resource not found",
    )
    _assert_envelope(await daraja.get("/nothing/here"), 404, "404.001.01", "Resource not found")
    _assert_envelope(
        await daraja.post("/oauth/v1/generate?grant_type=client_credentials", auth=(KEY, SECRET)),
        405,
        "405.001",
        "Method Not Allowed",
    )


@pytest.fixture
async def slow_daraja():
    with serve_app(create_simulator(MpesaSettings(callback_delay=0.4))) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            yield http


async def test_stk_push_query_callback_and_lock(slow_daraja, recorder):
    daraja = slow_daraja
    rec, url = recorder
    headers = await _bearer(daraja)
    answer = await daraja.post(
        "/mpesa/stkpush/v1/processrequest", json=_stk(callback=f"{url}/cb?token=t"), headers=headers
    )
    assert answer.status_code == 200
    ack = answer.json()
    assert ack["ResponseCode"] == "0" and ack["CheckoutRequestID"].startswith("ws_CO_")
    assert ack["CustomerMessage"] == "Success. Request accepted for processing"
    locked = await daraja.post("/mpesa/stkpush/v1/processrequest", json=_stk(), headers=headers)
    _assert_envelope(locked, 500, "500.001.1001")
    assert "Unable to lock subscriber" in locked.json()["errorMessage"]
    stamp = client.timestamp()
    query = {
        "BusinessShortCode": "174379",
        "Timestamp": stamp,
        "Password": client.password("174379", SANDBOX_PASSKEY, stamp),
        "CheckoutRequestID": ack["CheckoutRequestID"],
    }
    _assert_envelope(
        await daraja.post("/mpesa/stkpushquery/v1/query", json=query, headers=headers),
        500,
        "500.001.1001",
        "The transaction is being processed",
    )
    (callback,) = await asyncio.to_thread(rec.wait_for, 1)
    body = json.loads(callback.body)["Body"]["stkCallback"]
    assert body["ResultCode"] == 0 and body["CheckoutRequestID"] == ack["CheckoutRequestID"]
    items = {i["Name"]: i.get("Value") for i in body["CallbackMetadata"]["Item"]}
    assert b'"Value":150.00' in callback.body
    assert items["PhoneNumber"] == 254712345678 and len(items["MpesaReceiptNumber"]) == 10
    final = await daraja.post("/mpesa/stkpushquery/v1/query", json=query, headers=headers)
    assert final.status_code == 200
    assert (
        final.json()["ResultCode"] == "0" and "successsfully" in final.json()["ResponseDescription"]
    )
    unknown = dict(query, CheckoutRequestID="ws_CO_none")
    _assert_envelope(
        await daraja.post("/mpesa/stkpushquery/v1/query", json=unknown, headers=headers),
        500,
        "500.001.1001",
        "This transaction does not exist",
    )


async def test_declined_number_has_no_metadata(daraja, recorder):
    rec, url = recorder
    headers = await _bearer(daraja)
    answer = await daraja.post(
        "/mpesa/stkpush/v1/processrequest",
        json=_stk("254712341032", callback=f"{url}/cb"),
        headers=headers,
    )
    assert answer.status_code == 200
    (callback,) = await asyncio.to_thread(rec.wait_for, 1)
    body = json.loads(callback.body)["Body"]["stkCallback"]
    assert body["ResultCode"] == 1032 and "CallbackMetadata" not in body
    assert body["ResultDesc"] == "Request cancelled by user"


async def test_faults_and_ledger(daraja):
    headers = await _bearer(daraja)
    faults = await daraja.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    assert faults.status_code == 200
    answer = await daraja.post("/mpesa/stkpush/v1/processrequest", json=_stk(), headers=headers)
    _assert_envelope(answer, 503, "503.003.1001")
    await daraja.post("/_simulator/faults", json={})
    assert (
        await daraja.post("/mpesa/stkpush/v1/processrequest", json=_stk(), headers=headers)
    ).status_code == 200
    entries = (await daraja.get("/_simulator/ledger")).json()["entries"]
    assert [e["msisdn"] for e in entries] == ["254712345678"]


def _b2c(url, **changes):
    body = {
        "OriginatorConversationID": str(uuid.uuid4()),
        "InitiatorName": "testapi",
        "SecurityCredential": client.security_credential(MpesaSettings()),
        "CommandID": "BusinessPayment",
        "Amount": 500,
        "PartyA": "600996",
        "PartyB": "254712345678",
        "Remarks": "Refund",
        "QueueTimeOutURL": f"{url}/timeout",
        "ResultURL": f"{url}/result",
        "Occassion": "x",
    }
    body.update(changes)
    return body


async def test_b2c(daraja, recorder):
    rec, url = recorder
    headers = await _bearer(daraja)
    path = "/mpesa/b2c/v3/paymentrequest"
    body = _b2c(url)
    ack = (await daraja.post(path, json=body, headers=headers)).json()
    assert ack["ResponseCode"] == "0" and ack["ConversationID"].startswith("AG_")
    _assert_envelope(await daraja.post(path, json=body, headers=headers), 500, "500.002.1001")
    _assert_envelope(
        await daraja.post(path, json=_b2c(url, CommandID="Pay"), headers=headers),
        400,
        "400.002.02",
        "Bad Request - Invalid CommandID",
    )
    wrong = _b2c(url, SecurityCredential=base64.b64encode(b"garbage").decode())
    assert (await daraja.post(path, json=wrong, headers=headers)).status_code == 200
    small = _b2c(url, Amount=5)
    assert (await daraja.post(path, json=small, headers=headers)).status_code == 200
    results = [json.loads(r.body)["Result"] for r in await asyncio.to_thread(rec.wait_for, 3)]
    by_id = {r["OriginatorConversationID"]: r for r in results}
    assert by_id[body["OriginatorConversationID"]]["ResultCode"] == 0
    assert by_id[wrong["OriginatorConversationID"]]["ResultCode"] == 2001
    assert "ResultParameters" not in by_id[wrong["OriginatorConversationID"]]
    assert by_id[small["OriginatorConversationID"]]["ResultCode"] == 2


async def test_initiator_products_refuse_bad_credentials(daraja, recorder):
    rec, url = recorder
    headers = await _bearer(daraja)
    common = {
        "Initiator": "someone",
        "SecurityCredential": "eA==",
        "ResultURL": f"{url}/r",
        "QueueTimeOutURL": f"{url}/t",
        "Remarks": "check",
    }
    await daraja.post(
        "/mpesa/transactionstatus/v1/query",
        headers=headers,
        json={
            **common,
            "CommandID": "TransactionStatusQuery",
            "TransactionID": "X",
            "PartyA": "600996",
            "IdentifierType": "4",
        },
    )
    await daraja.post(
        "/mpesa/reversal/v1/request",
        headers=headers,
        json={
            **common,
            "CommandID": "TransactionReversal",
            "TransactionID": "X",
            "Amount": 1,
            "ReceiverParty": "174379",
            "RecieverIdentifierType": "11",
        },
    )
    await daraja.post(
        "/mpesa/accountbalance/v1/query",
        headers=headers,
        json={**common, "CommandID": "AccountBalance", "PartyA": "600996", "IdentifierType": "4"},
    )
    results = [json.loads(r.body)["Result"] for r in await asyncio.to_thread(rec.wait_for, 3)]
    assert [r["ResultCode"] for r in results] == [2001, 2001, 2001]
    bad = await daraja.post(
        "/mpesa/reversal/v1/request",
        headers=headers,
        json={
            **common,
            "CommandID": "TransactionReversal",
            "TransactionID": "X",
            "Amount": 1,
            "ReceiverParty": "174379",
            "RecieverIdentifierType": "4",
        },
    )
    _assert_envelope(bad, 400, "400.002.02", "Bad Request - Invalid RecieverIdentifierType")
    none = await daraja.post(
        "/mpesa/transactionstatus/v1/query",
        headers=headers,
        json={
            **common,
            "CommandID": "TransactionStatusQuery",
            "PartyA": "600996",
            "IdentifierType": "4",
        },
    )
    _assert_envelope(none, 400, "400.002.02", "Bad Request - Invalid TransactionID")


def _validation_app(answer: dict):
    seen: list[tuple[str, dict]] = []

    @post("/{kind:str}", status_code=200)
    async def receive(request: Request, kind: FromPath[str]) -> dict:
        seen.append((kind, json.loads(await request.body())))
        return answer

    return Litestar([receive]), seen


@pytest.mark.parametrize(
    ("answer", "kinds"),
    [
        ({"ResultCode": "0", "ResultDesc": "Accepted"}, ["validate", "confirm"]),
        ({"ResultCode": "C2B00012", "ResultDesc": "Rejected"}, ["validate"]),
    ],
)
async def test_c2b_register_and_simulate(daraja, answer, kinds):
    headers = await _bearer(daraja)
    app, seen = _validation_app(answer)
    with serve_app(app) as receiver:
        register = {
            "ShortCode": "600984",
            "ResponseType": "Completed",
            "ConfirmationURL": f"{receiver.url}/confirm",
            "ValidationURL": f"{receiver.url}/validate",
        }
        banned = dict(register, ConfirmationURL="https://shop.example/mpesa/confirm")
        _assert_envelope(
            await daraja.post("/mpesa/c2b/v1/registerurl", json=banned, headers=headers),
            400,
            "400.002.02",
            "Bad Request - Invalid ConfirmationURL - URL has the word MPESA",
        )
        _assert_envelope(
            await daraja.post(
                "/mpesa/c2b/v1/registerurl",
                headers=headers,
                json=dict(register, ResponseType="completed"),
            ),
            400,
            "400.002.02",
        )
        ok = await daraja.post("/mpesa/c2b/v1/registerurl", json=register, headers=headers)
        assert (
            ok.json()["ResponseDescription"] == "Success" and "OriginatorCoversationID" in ok.json()
        )
        simulate = {
            "ShortCode": 600984,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 250,
            "Msisdn": 254708374149,
            "BillRefNumber": "ACC-7781",
        }
        done = await daraja.post("/mpesa/c2b/v1/simulate", json=simulate, headers=headers)
        assert done.json()["ResponseCode"] == "0"
        unregistered = await daraja.post(
            "/mpesa/c2b/v2/simulate", headers=headers, json=dict(simulate, ShortCode="600111")
        )
        _assert_envelope(unregistered, 500, "500.003.1001")
        for _ in range(100):
            if len(seen) == len(kinds):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    assert [kind for kind, _ in seen] == kinds
    body = seen[0][1]
    assert body["TransactionType"] == "Pay Bill" and body["TransAmount"] == "250.00"
    assert len(body["MSISDN"]) == 64 and body["BillRefNumber"] == "ACC-7781"
    assert all(isinstance(v, str) for v in body.values())


def test_checkout_ids_look_like_darajas():
    assert client.timestamp(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) == "20240101030000"
