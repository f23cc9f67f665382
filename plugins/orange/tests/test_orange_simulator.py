"""The Orange simulator over real HTTP: auth, gateway errors, test numbers, pages, faults."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from mmo_core.testing import serve_app
from mmo_orange.settings import OrangeSettings
from mmo_orange.simulator import create_simulator

SETTINGS = OrangeSettings(callback_delay=0.05)
WP = "/orange-money-webpay/dev/v1"
MP = "/omcoreapis/1.0.2/mp"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def sim():
    with serve_app(create_simulator(SETTINGS)) as served, httpx.Client(base_url=served.url) as http:
        yield http


def webpay_token(sim) -> dict[str, str]:
    answer = sim.post(
        "/oauth/v3/token",
        headers=basic(SETTINGS.client_id, SETTINGS.client_secret),
        data={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 200 and answer.json()["expires_in"] == 7776000
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def cm_headers(sim) -> dict[str, str]:
    answer = sim.post(
        "/token",
        headers=basic(SETTINGS.cameroon_consumer_key, SETTINGS.cameroon_consumer_secret),
        data={"grant_type": "client_credentials"},
    )
    assert answer.json()["expires_in"] == 3600
    return {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "X-AUTH-TOKEN": SETTINGS.cameroon_auth_token,
    }


def webpayment(order_id: str, **changes):
    return {
        "merchant_key": SETTINGS.merchant_key,
        "currency": "OUV",
        "order_id": order_id,
        "amount": 1200,
        "return_url": "https://shop.example/return",
        "cancel_url": "https://shop.example/cancel",
        "notif_url": "http://127.0.0.1:9/notify",
        "lang": "fr",
        "reference": "Shop",
    } | changes


def test_oauth_errors(sim):
    assert (
        sim.post("/oauth/v3/token", data={"grant_type": "client_credentials"}).json()["code"] == 40
    )
    wrong = sim.post(
        "/oauth/v3/token", headers=basic("x", "y"), data={"grant_type": "client_credentials"}
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == 41
    as_json = sim.post(
        "/oauth/v3/token",
        headers=basic(SETTINGS.client_id, SETTINGS.client_secret),
        json={"grant_type": "client_credentials"},
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "unsupported_grant_type"


def test_bearer_errors_and_expiry(sim):
    assert sim.post(f"{WP}/webpayment", json=webpayment("B1")).json()["code"] == 40
    bad = sim.post(
        f"{WP}/webpayment", json=webpayment("B1"), headers={"Authorization": "Bearer no"}
    )
    assert bad.status_code == 401 and bad.json()["code"] == 41
    headers = webpay_token(sim)
    assert sim.post("/_simulator/orange/expire-tokens").json()["expired"] >= 1
    expired = sim.post(f"{WP}/webpayment", json=webpayment("B1"), headers=headers)
    assert expired.status_code == 401 and expired.json()["code"] == 42


def test_webpayment_validation(sim):
    h = webpay_token(sim)
    cases = [
        (webpayment("V1", currency="XOF"), 400, 24),
        (webpayment("V" * 31), 400, 24),
        (webpayment("V3", notif_url="https://x.example/" + "a" * 120), 400, 24),
        (webpayment("V4", merchant_key="nope"), 403, 50),
        (webpayment("V5", amount=0), 400, 24),
        ({"currency": "OUV"}, 400, 23),
    ]
    for body, status, code in cases:
        answer = sim.post(f"{WP}/webpayment", json=body, headers=h)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
    ci = sim.post("/orange-money-webpay/ci/v1/webpayment", json=webpayment("V6"), headers=h)
    assert ci.status_code == 400  # OUV only on dev
    unknown = sim.post("/orange-money-webpay/zz/v1/webpayment", json=webpayment("V7"), headers=h)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 60)
    assert sim.get("/no/such/path").json()["code"] == 60
    first = sim.post(f"{WP}/webpayment", json=webpayment("DUP"), headers=h)
    assert first.status_code == 201 and first.json()["status"] == 201
    again = sim.post(f"{WP}/webpayment", json=webpayment("DUP"), headers=h)
    assert again.status_code == 400 and again.json()["code"] == 25


def test_page_flow_and_transaction_status(sim):
    h = webpay_token(sim)
    sim.post("/_simulator/orange/webpay", json={"autopay": False})
    try:
        created = sim.post(f"{WP}/webpayment", json=webpayment("PG1"), headers=h).json()
        cancelled = sim.post(f"{WP}/webpayment", json=webpayment("PG2"), headers=h).json()
    finally:
        sim.post("/_simulator/orange/webpay", json={"autopay": True})
    query = {"order_id": "PG1", "amount": 1200, "pay_token": created["pay_token"]}
    missing = sim.post(
        f"{WP}/transactionstatus", json={"order_id": "PG1", "amount": 1200}, headers=h
    )
    assert missing.status_code == 400 and missing.json()["code"] == 23
    assert "PayToken" in missing.json()["description"]
    other = sim.post(f"{WP}/transactionstatus", json=query | {"amount": 1}, headers=h)
    assert other.status_code == 404
    fresh = sim.post(f"{WP}/transactionstatus", json=query, headers=h)
    assert fresh.status_code == 201 and fresh.json()["status"] == "INITIATED"
    page = httpx.URL(created["payment_url"]).path
    assert sim.get(page).status_code == 200
    assert sim.get("/payment/pay_token/nope").status_code == 404
    assert sim.post("/payment/pay_token/nope", data={}).status_code == 404
    assert sim.post(page, data={"msisdn": "12", "otp": SETTINGS.sim_otp}).status_code == 400
    done = sim.post(page, data={"msisdn": "0701230001", "otp": SETTINGS.sim_otp})
    assert done.status_code == 303
    assert sim.post(f"{WP}/transactionstatus", json=query, headers=h).json()["status"] == "PENDING"
    assert sim.post(page, data={"msisdn": "0701230001", "otp": SETTINGS.sim_otp}).status_code == 409
    assert "PENDING" in sim.get(page).text
    time.sleep(0.1)
    final = sim.post(f"{WP}/transactionstatus", json=query, headers=h).json()
    assert final["status"] == "FAILED" and "txnid" not in final
    cpage = httpx.URL(cancelled["payment_url"]).path
    back = sim.post(cpage, data={"action": "cancel"})
    assert back.status_code == 303 and back.headers["location"] == "https://shop.example/cancel"
    cq = {"order_id": "PG2", "amount": 1200, "pay_token": cancelled["pay_token"]}
    assert sim.post(f"{WP}/transactionstatus", json=cq, headers=h).json()["status"] == "INITIATED"


@pytest.mark.parametrize(
    ("last4", "final"),
    [
        ("4567", "SUCCESS"),
        ("2001", "FAILED"),
        ("1037", "EXPIRED"),
        ("1032", "INITIATED"),
        ("9990", "SUCCESS"),
    ],
)
def test_autopay_test_numbers(sim, last4, final):
    h = webpay_token(sim) | {"X-Mmo-Simulator-Payer": last4}
    order = "AP" + last4
    created = sim.post(f"{WP}/webpayment", json=webpayment(order), headers=h).json()
    time.sleep(0.2)
    query = {"order_id": order, "amount": 1200, "pay_token": created["pay_token"]}
    answer = sim.post(f"{WP}/transactionstatus", json=query, headers=h).json()
    assert answer["status"] == final
    assert ("txnid" in answer) == (final == "SUCCESS")


def test_faults_give_gateway_errors(sim):
    h = webpay_token(sim)
    sim.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    try:
        answer = sim.post(f"{WP}/webpayment", json=webpayment("F1"), headers=h)
        status = sim.post(f"{WP}/transactionstatus", json={}, headers=h)
        cm = sim.post(f"{MP}/init", headers=cm_headers(sim))
    finally:
        sim.post("/_simulator/faults", json={})
    assert answer.status_code == 503 and answer.json()["code"] == 1
    assert status.status_code == 503
    assert cm.status_code == 503 and "fault" in cm.json()


def test_cameroon_auth(sim):
    h = cm_headers(sim)
    assert (
        sim.post(f"{MP}/init", headers={"X-AUTH-TOKEN": SETTINGS.cameroon_auth_token}).status_code
        == 401
    )
    no_auth_token = sim.post(f"{MP}/init", headers={"Authorization": h["Authorization"]})
    assert no_auth_token.status_code == 403
    wrong = sim.post("/token", headers=basic("a", "b"), data={"grant_type": "client_credentials"})
    assert wrong.status_code == 401


def pay_body(pay_token: str, subscriber: str, **changes):
    return {
        "notifUrl": "http://127.0.0.1:9/notify",
        "channelUserMsisdn": SETTINGS.cameroon_channel_msisdn,
        "amount": "100",
        "subscriberMsisdn": subscriber,
        "pin": SETTINGS.cameroon_pin,
        "orderId": "O-" + pay_token[-6:],
        "description": "Order",
        "payToken": pay_token,
    } | changes


def test_cameroon_merchant_payment(sim):
    h = cm_headers(sim)
    token = sim.post(f"{MP}/init", headers=h).json()["data"]["payToken"]
    assert token.startswith("MP")
    assert sim.get(f"{MP}/paymentstatus/{token}", headers=h).json()["data"]["status"] == "INITIATED"
    bad = sim.post(f"{MP}/pay", json=pay_body(token, "237690010000"), headers=h)
    assert bad.status_code == 400
    paid = sim.post(f"{MP}/pay", json=pay_body(token, "690010000"), headers=h)
    assert paid.status_code == 200
    data = paid.json()["data"]
    assert data["status"] == "PENDING" and data["inittxnstatus"] == "200"
    assert sim.post(f"{MP}/pay", json=pay_body(token, "690010000"), headers=h).status_code == 400
    # mp/push: test_orange_push_simulator.py (with a delay long enough to push while pending)
    time.sleep(0.1)
    final = sim.get(f"{MP}/paymentstatus/{token}", headers=h).json()["data"]
    assert final["status"] == "SUCCESSFULL" and final["confirmtxnstatus"] == "200"
    assert sim.get(f"{MP}/paymentstatus/nope", headers=h).status_code == 404
    assert sim.post(f"{MP}/pay", json={"x": 1}, headers=h).status_code == 400


def test_cameroon_declines(sim):
    h = cm_headers(sim)
    token = sim.post(f"{MP}/init", headers=h).json()["data"]["payToken"]
    poor = sim.post(f"{MP}/pay", json=pay_body(token, "690010001"), headers=h)
    assert poor.status_code == 417 and poor.json()["message"].startswith("60019 :: ")
    assert poor.json()["data"]["status"] == "FAILED"
    token = sim.post(f"{MP}/init", headers=h).json()["data"]["payToken"]
    pin = sim.post(f"{MP}/pay", json=pay_body(token, "690010000", pin="0000"), headers=h)
    assert pin.status_code == 417
    token = sim.post(f"{MP}/init", headers=h).json()["data"]["payToken"]
    sim.post(f"{MP}/pay", json=pay_body(token, "655012001"), headers=h)
    time.sleep(0.1)
    final = sim.get(f"{MP}/paymentstatus/{token}", headers=h).json()["data"]
    assert final["status"] == "FAILED" and final["confirmtxnstatus"] == "60011"
    ledger = sim.get("/_simulator/ledger").json()["entries"]
    assert any(e.get("code") == "60019" for e in ledger)
