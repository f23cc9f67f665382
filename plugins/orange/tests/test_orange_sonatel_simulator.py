"""The Senegal (Sonatel) part of the Orange simulator over real HTTP, and the plugin on it."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from mmo_core.crypto import load_public_key, rsa_encrypt_pkcs1v15
from mmo_core.errors import InvalidRequest, OperatorDeclined, UnknownToOperator
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import InboundCallback, Payment
from mmo_orange import plugin
from mmo_orange.settings import OrangeSettings
from mmo_orange.simulator import create_simulator

SETTINGS = OrangeSettings(callback_delay=0.05)
API = "/api/eWallet/v1"


@pytest.fixture(scope="module")
def served():
    recorder = CallbackRecorder()
    with (
        serve_app(create_simulator(SETTINGS)) as simulator,
        serve_app(recorder) as receiver,
        httpx.Client(base_url=simulator.url) as http,
    ):
        yield http, simulator.url, receiver.url, recorder


@pytest.fixture
def sim(served):
    return served[0]


@pytest.fixture
async def ctx(served):
    context = make_context(plugin.DECLARATION, SETTINGS, base_url=served[1], public_url=served[2])
    yield context
    await context.http.aclose()


def bearer(sim) -> dict[str, str]:
    answer = sim.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SETTINGS.sonatel_client_id,
            "client_secret": SETTINGS.sonatel_client_secret,
        },
    )
    assert answer.status_code == 200 and answer.json()["expires_in"] == 3600
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def transaction(customer: str = "771234567", **changes) -> dict:
    return {
        "partner": {"idType": "CODE", "id": SETTINGS.sonatel_merchant_code},
        "customer": {"idType": "MSISDN", "id": customer, "walletType": "PRINCIPAL"},
        "amount": {"value": 5000, "unit": "XOF"},
        "reference": "ref-" + uuid.uuid4().hex[:8],
        "requestDate": dt.datetime.now(dt.UTC).isoformat(),
        "receiveNotification": True,
        "method": "CLASSIC",
    } | changes


def payment(msisdn: str = "+221771234567", **changes) -> Payment:
    values = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal(2500),
        "currency": "XOF",
        "msisdn": msisdn,
        "reference": "ORD-SN",
        "country": "SN",
    } | changes
    return Payment(**values)


def test_token_endpoint(sim):
    assert sim.post("/oauth/v1/token", data={"grant_type": "client_credentials",
        "client_id": SETTINGS.sonatel_client_id,
        "client_secret": SETTINGS.sonatel_client_secret}).status_code == 200  # fmt: skip
    wrong = sim.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = sim.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_bearer_is_required_everywhere(sim):
    for method, path in (
        ("GET", "/api/account/v1/publicKeys"),
        ("POST", f"{API}/payments"),
        ("GET", f"{API}/transactions/MP1/status"),
        ("POST", f"{API}/account/retailer/balance"),
        ("POST", "/api/notification/v1/merchantcallback"),
    ):
        answer = sim.request(method, path, headers={"Authorization": "Bearer nope"}, json={})
        assert answer.status_code == 401, path
        assert answer.json()["code"] == "401" and answer.json()["detail"]
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_payment_problems(sim):
    h = bearer(sim)
    bad = sim.post(f"{API}/payments", json={"partner": {}}, headers=h)
    assert bad.status_code == 400 and bad.json()["violations"]
    cases = [
        (transaction(amount={"value": 10, "unit": "EUR"}), "400"),
        (transaction(reference="r" * 51), "400"),
        (transaction(customer="761234567"), "2000"),
        (transaction(partner={"idType": "CODE", "id": "000000"}), "2050"),
        (transaction(customer="770010001"), "2011"),
    ]
    for body, code in cases:
        answer = sim.post(f"{API}/payments", json=body, headers=h)
        assert answer.status_code == 400 and answer.json()["code"] == code, body
        assert answer.json()["instance"] == f"{API}/payments"
    for otp, customer in (("000000", "771234567"), ("123456", "770012001")):
        one = transaction(customer=customer, method=None)
        one["customer"]["otp"] = otp
        answer = sim.post(f"{API}/payments/onestep", json=one, headers=h)
        assert answer.json()["code"] == "2040"


def test_cashin_checks_the_encrypted_pin_and_balance_moves(sim):
    h = bearer(sim)
    key = sim.get("/api/account/v1/publicKeys", headers=h).json()
    assert key["keyType"] == "RSA" and key["keySize"] == 2048
    public = load_public_key(key["key"])
    partner = {"idType": "MSISDN", "id": SETTINGS.sonatel_retailer_msisdn}
    wrong = dict(partner, encryptedPinCode=rsa_encrypt_pkcs1v15(public, "9999"))
    right = dict(partner, encryptedPinCode=rsa_encrypt_pkcs1v15(public, SETTINGS.sonatel_pin))
    garbage = dict(partner, encryptedPinCode="!!!")
    for party in (wrong, garbage, partner):
        refused = sim.post(f"{API}/cashins", json=transaction(partner=party), headers=h)
        assert refused.status_code == 400 and refused.json()["code"] == "2041"
    balance_url = f"{API}/account/retailer/balance"
    assert sim.post(balance_url, json=wrong, headers=h).json()["code"] == "2041"
    assert sim.post(balance_url, json={"x": 1}, headers=h).status_code == 400
    before = sim.post(balance_url, json=right, headers=h).json()
    sent = sim.post(f"{API}/cashins", json=transaction(partner=right), headers=h).json()
    assert sent["status"] == "PENDING" and sent["transactionId"].startswith("CI")
    after = sim.post(balance_url, json=right, headers=h).json()
    assert after == {"value": before["value"] - 5000, "unit": "XOF"}
    time.sleep(0.2)
    final = sim.get(f"{API}/transactions/{sent['transactionId']}/status", headers=h).json()
    assert final["status"] == "SUCCESS"


def test_status_of_an_unknown_transaction_and_faults(sim):
    h = bearer(sim)
    missing = sim.get(f"{API}/transactions/MP0/status", headers=h)
    assert missing.status_code == 404 and missing.json()["detail"] == "Transaction not found"
    sim.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    try:
        pay = sim.post(f"{API}/payments", json=transaction(), headers=h)
        status = sim.get(f"{API}/transactions/MP0/status", headers=h)
    finally:
        sim.post("/_simulator/faults", json={})
    assert pay.status_code == 503 and pay.json()["code"] == "503"
    assert status.status_code == 503


def test_merchant_callback_registration_validates(sim):
    h = bearer(sim)
    url = "/api/notification/v1/merchantcallback"
    assert sim.post(url, json={"code": "1"}, headers=h).status_code == 400
    body = {"apiKey": "k", "code": "000000", "name": "n", "callbackUrl": "http://x"}
    assert sim.post(url, json=body, headers=h).json()["code"] == "2050"


# -- the plugin on the simulator ------------------------------------------------------------


def to_inbound(recorded) -> InboundCallback:
    return InboundCallback(
        provider="orange",
        kind="callback",
        method=recorded.method,
        path=recorded.path,
        query=recorded.query,
        headers=recorded.headers,
        body=recorded.body,
    )


def notes_for(recorder, transaction_id: str) -> list:
    return [r for r in recorder.requests if transaction_id.encode() in r.body]


async def test_plugin_flows_and_callbacks(ctx, served):
    recorder: CallbackRecorder = served[3]
    report = await plugin.setup(ctx)
    assert "registered" in report.lines[0]

    # CLASSIC payment: INITIATED, then SUCCESS with one callback carrying the apiKey
    p = payment()
    ack = await plugin.initiate(ctx, p)
    assert ack.status == "pending" and ack.provider_reference.startswith("MP")
    stored = Payment(**{**_fields(p), "provider_reference": ack.provider_reference,
                        "provider_data": ack.provider_data})  # fmt: skip
    assert (await plugin.status(ctx, stored)).status == "pending"
    (first,) = await _wait(recorder, ack.provider_reference, 1)
    outcome = await plugin.parse_callback(ctx, to_inbound(first))
    assert outcome.update.status == "succeeded" and outcome.update.payment_id == p.id
    assert outcome.update.amount == Decimal(2500)
    assert json.loads(first.body)["apiKey"] == SETTINGS.sonatel_api_key
    assert (await plugin.status(ctx, stored)).status == "succeeded"

    # one-step with the OTP: succeeded at once
    quick = await plugin.initiate(ctx, payment(metadata={"otp": SETTINGS.sim_otp}))
    assert quick.status == "succeeded"

    # cash-in with the encrypted PIN, and the balance
    balance = (await plugin.balance(ctx)).balances[0]
    cashin = await plugin.initiate(ctx, payment(msisdn="+221781230000", type="disbursement"))
    assert cashin.status == "pending" and cashin.provider_reference.startswith("CI")
    after = (await plugin.balance(ctx)).balances[0]
    assert after.available == balance.available - 2500

    # test numbers
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, payment(msisdn="+221770010001"))
    assert caught.value.provider_code == "2011"
    with pytest.raises(OperatorDeclined):
        await plugin.initiate(ctx, payment(msisdn="+221770012001", metadata={"otp": "123456"}))
    cancelled = await plugin.initiate(ctx, payment(msisdn="+221770011032"))
    silent = await plugin.initiate(ctx, payment(msisdn="+221770019990"))
    twice = await plugin.initiate(ctx, payment(msisdn="+221770019991"))
    (note,) = await _wait(recorder, cancelled.provider_reference, 1)
    update = (await plugin.parse_callback(ctx, to_inbound(note))).update
    assert update.status == "failed" and update.failure.provider_code == "CANCELLED"
    assert len(await _wait(recorder, twice.provider_reference, 2)) == 2
    assert notes_for(recorder, silent.provider_reference) == []

    with pytest.raises(UnknownToOperator):
        await plugin.status(ctx, payment(provider_data={"family": "sonatel",
                                                        "transaction_id": "MP0"}))  # fmt: skip
    health = await plugin.health(ctx)
    assert health.ok and "sonatel" in health.detail


async def test_plugin_refuses_a_non_orange_number_before_sending(ctx):
    with pytest.raises(InvalidRequest):
        await plugin.initiate(ctx, payment(msisdn="+221761234567"))


def _fields(p: Payment) -> dict:
    return {f: getattr(p, f) for f in p.__struct_fields__}


async def _wait(recorder, transaction_id: str, count: int, timeout: float = 5.0) -> list:
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = notes_for(recorder, transaction_id)
        if len(found) >= count:
            await asyncio.sleep(0.05)
            return notes_for(recorder, transaction_id)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {count} callbacks for {transaction_id}")
