"""The simulator over real HTTP: message signing (v2 collection and refund, v3 disbursement),
balance v2 and the transaction summary, raw and through the plugin."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mmo_airtel import client, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.crypto import rsa_encrypt_oaep_sha256, rsa_encrypt_pkcs1v15
from mmo_core.errors import ProviderAuthenticationError
from mmo_core.testing import make_context, serve_app
from mmo_core.types import Payment

SETTINGS = AirtelSettings(
    callback_delay=0.02,
    collection_version="v2",
    disbursement_version="v3",
    balance_version="v2",
    balance_types="COLL,DISB,CASHIN",
)


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with serve_app(create_simulator(SETTINGS)) as served:
        yield served.url


@pytest.fixture
async def http(simulator: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator) as http:
        token = (
            await http.post(
                "/auth/oauth2/token",
                json={
                    "client_id": SETTINGS.client_id,
                    "client_secret": SETTINGS.client_secret,
                    "grant_type": "client_credentials",
                },
            )
        ).json()["access_token"]
        http.headers.update(
            {"Authorization": f"Bearer {token}", "X-Country": "UG", "X-Currency": "UGX"}
        )
        yield http


@pytest.fixture
async def context(simulator: str) -> AsyncIterator[Any]:
    context = make_context(
        plugin.DECLARATION, SETTINGS, base_url=simulator, public_url="http://127.0.0.1:9"
    )
    try:
        yield context
    finally:
        await context.http.aclose()


async def public_key(http: httpx.AsyncClient) -> str:
    return (await http.get("/v1/rsa/encryption-keys")).json()["data"]["key"]


def push_body(tx_id: str, msisdn: str = "752605678") -> bytes:
    body = {
        "reference": "Order1042",
        "subscriber": {"country": "UG", "currency": "UGX", "msisdn": msisdn},
        "transaction": {"amount": 5000, "country": "UG", "currency": "UGX", "id": tx_id},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def refused_code(answer: httpx.Response) -> str:
    assert answer.status_code == 200  # refused in the body, as Airtel does
    status = answer.json()["status"]
    assert status["success"] is False and status["code"] == "403"
    assert "did not match" in status["message"]
    return status["response_code"]


def payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": "collection",
        "amount": Decimal(3000),
        "currency": "UGX",
        "msisdn": "+256752605678",
        "reference": "Order1042",
        "country": "UG",
    }
    values.update(changes)
    return Payment(**values)


# -- raw HTTP ----------------------------------------------------------------------------------


async def test_v2_push_accepts_a_good_signature_and_refuses_bad_ones(
    http: httpx.AsyncClient,
) -> None:
    key = await public_key(http)
    tx_id = uuid.uuid4().hex
    raw = push_body(tx_id)
    signature, x_key = client.sign_message(key, raw)
    signed = {"x-signature": signature, "x-key": x_key, "Content-Type": "application/json"}
    # the body changed after signing (another transaction id): refused, nothing recorded
    other = uuid.uuid4().hex
    tampered = await http.post("/merchant/v2/payments/", content=push_body(other), headers=signed)
    assert refused_code(tampered) == "DP00800001026"
    # no headers at all; an x-key that is not RSA of ours; an x-key with bad key material
    bad_material = rsa_encrypt_pkcs1v15(key, "short:key")
    for headers in (
        {},
        {"x-signature": signature, "x-key": base64.b64encode(b"x" * 128).decode()},
        {"x-signature": signature, "x-key": "not base64!"},
        {"x-signature": signature, "x-key": bad_material},
    ):
        answer = await http.post("/merchant/v2/payments/", content=raw, headers=headers)
        assert refused_code(answer) == "DP00800001026"
    entries = (await http.get("/_simulator/ledger")).json()["entries"]
    assert not {tx_id, other} & {e["id"] for e in entries}
    accepted = await http.post("/merchant/v2/payments/", content=raw, headers=signed)
    assert accepted.json()["status"]["response_code"] == "DP00800001006"
    assert accepted.json()["data"]["transaction"] == {"id": tx_id, "status": "SUCCESS"}
    # v1 still takes the same body unsigned
    v1 = await http.post("/merchant/v1/payments/", content=push_body(uuid.uuid4().hex))
    assert v1.json()["status"]["success"] is True


async def test_v2_refund_and_v3_disbursement_check_signatures(http: httpx.AsyncClient) -> None:
    refund = await http.post(
        "/standard/v2/payments/refund", json={"transaction": {"airtel_money_id": "MP-x"}}
    )
    assert refused_code(refund) == "DP00800001026"
    key = await public_key(http)
    body = {
        "payee": {"msisdn": "752605678", "wallet_type": "NORMAL"},
        "reference": "Payout42",
        "pin": rsa_encrypt_oaep_sha256(key, SETTINGS.pin),
        "transaction": {"amount": 100, "id": uuid.uuid4().hex, "type": "B2C"},
    }
    raw = json.dumps(body).encode()
    unsigned = await http.post("/standard/v3/disbursements", content=raw)
    assert refused_code(unsigned) == "DP00900001016"
    # v3 takes Encryption 2.0 only: a PKCS#1 v1.5 PIN is an incorrect encrypted PIN
    v1_pin = json.dumps({**body, "pin": rsa_encrypt_pkcs1v15(key, SETTINGS.pin)}).encode()
    signature, x_key = client.sign_message(key, v1_pin)
    answer = await http.post(
        "/standard/v3/disbursements",
        content=v1_pin,
        headers={"x-signature": signature, "x-key": x_key},
    )
    assert answer.status_code == 400 and answer.json()["status_code"] == "ROUTER116"
    signature, x_key = client.sign_message(key, raw)
    answer = await http.post(
        "/standard/v3/disbursements",
        content=raw,
        headers={"x-signature": signature, "x-key": x_key},
    )
    assert answer.json()["status"]["response_code"] == "DP00900001006"
    enquiry = await http.get(f"/standard/v3/disbursements/{body['transaction']['id']}")
    assert enquiry.json()["data"]["transaction"]["status"] == "TS"


async def test_balance_v2_and_transaction_list_raw(http: httpx.AsyncClient) -> None:
    for wrong in ({}, {"type": "SAVINGS"}):
        answer = await http.get("/standard/v2/users/balance", params=wrong)
        assert answer.status_code == 200
        assert answer.json()["status"]["result_code"] == "ESB000008"
    answer = await http.get("/standard/v2/users/balance", params={"type": "CASHOUT"})
    assert answer.json()["data"] == {
        "balance": "10000000.00",
        "currency": "UGX",
        "account_status": "ACTIVE",
    }
    for wrong in ({"limit": "x"}, {"limit": "0"}, {"offset": "-1"}):
        answer = await http.get("/merchant/v1/transactions", params=wrong)
        assert answer.json()["status"]["result_code"] == "ESB000008"
    future = await http.get("/merchant/v1/transactions", params={"from": str(2**61)})
    assert future.json()["data"] == {"count": 0, "transactions": []}


# -- through the plugin ---------------------------------------------------------------------------


async def test_plugin_v2_collection_refund_and_balances(context: Any) -> None:
    before = {b.account: b.available for b in (await plugin.balance(context)).balances}
    assert list(before) == ["UG COLL", "UG DISB", "UG CASHIN"]
    collection = payment()
    assert (await plugin.initiate(context, collection)).status == "pending"
    report = await plugin.status(context, collection)
    assert report.status == "succeeded" and report.provider_transaction_id
    declined = payment(msisdn="+256752600001")
    await plugin.initiate(context, declined)
    failed = await plugin.status(context, declined)
    assert failed.status == "failed" and failed.failure
    assert failed.failure.provider_code == "DP00800001007"
    middle = {b.account: b.available for b in (await plugin.balance(context)).balances}
    assert middle["UG COLL"] == before["UG COLL"] + 3000
    paid = payment(
        **{**_fields(collection), "provider_transaction_id": report.provider_transaction_id}
    )
    assert (await plugin.reverse(context, paid, None, "refund")).status == "reversed"
    payout = payment(type="disbursement", amount=Decimal(1200), reference="Payout42")
    assert (await plugin.initiate(context, payout)).status == "pending"
    assert (await plugin.status(context, payout)).status == "succeeded"
    with pytest.raises(ProviderAuthenticationError) as caught:
        await plugin.initiate(context, payment(type="disbursement", msisdn="+256752602001"))
    assert caught.value.provider_code == "ROUTER115"
    after = {b.account: b.available for b in (await plugin.balance(context)).balances}
    assert after["UG COLL"] == before["UG COLL"]  # refunded
    assert after["UG DISB"] == before["UG DISB"] - 1200
    assert after["UG CASHIN"] == before["UG CASHIN"]


async def test_plugin_transaction_summary_pages() -> None:
    with serve_app(create_simulator(SETTINGS)) as served:  # a simulator of its own
        context = make_context(
            plugin.DECLARATION, SETTINGS, base_url=served.url, public_url="http://127.0.0.1:9"
        )
        try:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            made = [payment(amount=Decimal(1000 + n)) for n in range(3)]
            for one in made:
                await plugin.initiate(context, one)
            end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            first = await plugin.transaction_summary(context, start, end, limit=2)
            second = await plugin.transaction_summary(context, start, end, limit=2, offset=2)
            before = await plugin.transaction_summary(context, start - dt.timedelta(1), start)
        finally:
            await context.http.aclose()
    assert before.count == 0
    assert first.count == second.count == 3
    listed = [e.transaction for e in first.transactions + second.transactions]
    assert [t.id for t in listed] == [p.id for p in made]
    assert [t.amount for t in listed] == [Decimal(1000), Decimal(1001), Decimal(1002)]
    assert all(t.status == "TS" and t.reference_number == "Order1042" for t in listed)


def _fields(value: Payment) -> dict[str, Any]:
    import msgspec

    return msgspec.structs.asdict(value)
