"""Two Orange accounts in one simulator, over real HTTP: each account's credentials get its
own tokens, and one account's token, merchant key, X-AUTH-TOKEN or merchant code on the
other's resources is refused with Orange's own answer for an unknown one (WebPay 403/50
and 404/60, Cameroon 403 / 400 / 404 / 417 00068, Sonatel problems 2050, 2041 and 404),
never answered with the other account's data. Every family: WebPay, Cameroon, Sonatel."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.crypto import load_public_key, rsa_encrypt_pkcs1v15
from mmo_core.errors import CallbackVerificationFailed, UnknownToOperator
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.testing.conformance import to_inbound
from mmo_core.types import Payment
from mmo_orange import plugin
from mmo_orange.settings import OrangeSettings
from test_orange_conformance import SECOND_ACCOUNT

FIRST = OrangeSettings(callback_delay=0.05)
SECOND = msgspec.structs.replace(FIRST, **SECOND_ACCOUNT)
ACCOUNTS = {"default": FIRST, "second": SECOND}
MP = "/omcoreapis/1.0.2/mp"
SN = "/api/eWallet/v1"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def served():
    app = plugin.simulator_app(settings=FIRST, accounts=ACCOUNTS)
    with serve_app(app) as simulator, httpx.Client(base_url=simulator.url) as http:
        yield http, simulator.url


@pytest.fixture
def sim(served) -> httpx.Client:
    return served[0]


def ledger(sim, account: str) -> dict[str, dict]:
    entries = sim.get("/_simulator/ledger", params={"account": account}).json()["entries"]
    return {e["id"]: e for e in entries}


# -- WebPay -----------------------------------------------------------------------------------


def webpay_bearer(sim, account: OrangeSettings) -> dict[str, str]:
    answer = sim.post(
        "/oauth/v3/token",
        headers=basic(account.client_id, account.client_secret),
        data={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def webpayment(account: OrangeSettings, currency: str = "OUV") -> dict:
    return {
        "merchant_key": account.merchant_key,
        "currency": currency,
        "order_id": "ACC-" + uuid.uuid4().hex[:10],
        "amount": 1200,
        "return_url": "https://shop.example/return",
        "cancel_url": "https://shop.example/cancel",
        "notif_url": "http://127.0.0.1:9/notify",
        "lang": "fr",
        "reference": "Shop",
    }


def test_webpay_tokens_and_orders_belong_to_their_account(sim):
    first, second = webpay_bearer(sim, FIRST), webpay_bearer(sim, SECOND)
    sim.post("/_simulator/orange/webpay", json={"autopay": False})
    try:
        body = webpayment(FIRST)
        created = sim.post("/orange-money-webpay/dev/v1/webpayment", json=body, headers=first)
        assert created.status_code == 201
        pay_token = created.json()["pay_token"]
        query = {"order_id": body["order_id"], "amount": 1200, "pay_token": pay_token}
        mine = sim.post("/orange-money-webpay/dev/v1/transactionstatus", json=query, headers=first)
        assert mine.status_code == 201 and mine.json()["status"] == "INITIATED"
        # the other application's token on this order: Orange's "not found", no status
        theirs = sim.post(
            "/orange-money-webpay/dev/v1/transactionstatus", json=query, headers=second
        )
        assert theirs.status_code == 404 and theirs.json()["code"] == 60
        assert "status" not in theirs.json()
        # the first account's merchant key with the second's token: an unknown merchant key
        stolen = sim.post(
            "/orange-money-webpay/ci/v1/webpayment",
            json=webpayment(FIRST, "XOF"),
            headers=second,
        )
        assert stolen.status_code == 403 and stolen.json()["code"] == 50
        # the second application's offer is Côte d'Ivoire only
        elsewhere = sim.post(
            "/orange-money-webpay/dev/v1/webpayment", json=webpayment(SECOND), headers=second
        )
        assert elsewhere.status_code == 403 and elsewhere.json()["code"] == 50
        own = sim.post(
            "/orange-money-webpay/ci/v1/webpayment",
            json=webpayment(SECOND, "XOF"),
            headers=second,
        )
        assert own.status_code == 201
        second_token = own.json()["pay_token"]
    finally:
        sim.post("/_simulator/orange/webpay", json={"autopay": True})
    assert pay_token in ledger(sim, "default") and pay_token not in ledger(sim, "second")
    assert second_token in ledger(sim, "second") and second_token not in ledger(sim, "default")
    assert ledger(sim, "second")[second_token]["account"] == "second"


def test_a_token_is_of_one_family(sim):
    """A WebPay token is no Cameroon or Sonatel token (three hosts, three token servers)."""
    bearer = webpay_bearer(sim, FIRST)
    cameroon = sim.post(f"{MP}/init", headers=bearer | {"X-AUTH-TOKEN": FIRST.cameroon_auth_token})
    assert cameroon.status_code == 401 and cameroon.json()["fault"]["code"] == 900901
    sonatel = sim.get(f"{SN}/transactions/MP1/status", headers=bearer)
    assert sonatel.status_code == 401 and sonatel.json()["code"] == "401"


# -- Orange Cameroon --------------------------------------------------------------------------


def cameroon_headers(sim, account: OrangeSettings) -> dict[str, str]:
    answer = sim.post(
        "/token",
        headers=basic(account.cameroon_consumer_key, account.cameroon_consumer_secret),
        data={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 200
    return {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "X-AUTH-TOKEN": account.cameroon_auth_token,
    }


def mp_pay(account: OrangeSettings, pay_token: str, subscriber: str = "699124567") -> dict:
    return {
        "notifUrl": "http://127.0.0.1:9/notify",
        "channelUserMsisdn": account.cameroon_channel_msisdn,
        "amount": "100",
        "subscriberMsisdn": subscriber,
        "pin": account.cameroon_pin,
        "orderId": "O-" + pay_token[-6:],
        "description": "Order",
        "payToken": pay_token,
    }


def test_cameroon_pay_tokens_belong_to_their_account(sim):
    first, second = cameroon_headers(sim, FIRST), cameroon_headers(sim, SECOND)
    # the second consumer's bearer with the first channel user's X-AUTH-TOKEN
    crossed = second | {"X-AUTH-TOKEN": FIRST.cameroon_auth_token}
    refused = sim.post(f"{MP}/init", headers=crossed)
    assert refused.status_code == 403 and refused.json()["message"] == "Invalid X-AUTH-TOKEN"
    pay_token = sim.post(f"{MP}/init", headers=first).json()["data"]["payToken"]
    # the other account can neither pay, read nor push the first account's payToken
    taken = sim.post(f"{MP}/pay", json=mp_pay(SECOND, pay_token), headers=second)
    assert taken.status_code == 400 and "PayToken invalide" in taken.json()["message"]
    paid = sim.post(f"{MP}/pay", json=mp_pay(FIRST, pay_token), headers=first)
    assert paid.status_code == 200 and paid.json()["data"]["status"] == "PENDING"
    read = sim.get(f"{MP}/paymentstatus/{pay_token}", headers=second)
    assert read.status_code == 404 and read.json() == {
        "message": "Transaction introuvable",
        "data": None,
    }
    assert sim.get(f"{MP}/push/{pay_token}", headers=second).status_code == 404
    assert sim.get(f"{MP}/paymentstatus/{pay_token}", headers=first).status_code == 200
    # the first account's channel user and PIN on the second account's payToken: declined
    other = sim.post(f"{MP}/init", headers=second).json()["data"]["payToken"]
    wrong = sim.post(f"{MP}/pay", json=mp_pay(FIRST, other), headers=second)
    assert wrong.status_code == 417 and wrong.json()["message"].startswith("00068 ::")
    assert ledger(sim, "default")[pay_token]["account"] == "default"
    assert pay_token not in ledger(sim, "second") and other in ledger(sim, "second")


# -- Orange Senegal (Sonatel) -----------------------------------------------------------------


def sonatel_bearer(sim, account: OrangeSettings) -> dict[str, str]:
    answer = sim.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": account.sonatel_client_id,
            "client_secret": account.sonatel_client_secret,
        },
    )
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def transaction(code: str, customer: str = "771234567", **changes) -> dict:
    return {
        "partner": {"idType": "CODE", "id": code},
        "customer": {"idType": "MSISDN", "id": customer, "walletType": "PRINCIPAL"},
        "amount": {"value": 5000, "unit": "XOF"},
        "reference": "ref-" + uuid.uuid4().hex[:8],
        "requestDate": dt.datetime.now(dt.UTC).isoformat(),
        "receiveNotification": True,
        "method": "CLASSIC",
    } | changes


def retailer(sim, bearer: dict[str, str], account: OrangeSettings) -> dict:
    key = sim.get("/api/account/v1/publicKeys", headers=bearer).json()["key"]
    pin = rsa_encrypt_pkcs1v15(load_public_key(key), account.sonatel_pin)
    return {
        "idType": "MSISDN",
        "id": account.sonatel_retailer_msisdn,
        "encryptedPinCode": pin,
        "walletType": "PRINCIPAL",
    }


def test_sonatel_transactions_merchant_codes_and_retailers_belong_to_their_account(sim):
    first, second = sonatel_bearer(sim, FIRST), sonatel_bearer(sim, SECOND)
    # the first account's merchant code with the second's token: an unknown merchant code
    stolen = sim.post(
        f"{SN}/payments", json=transaction(FIRST.sonatel_merchant_code), headers=second
    )
    assert stolen.status_code == 400 and stolen.json()["code"] == "2050"
    made = sim.post(f"{SN}/payments", json=transaction(FIRST.sonatel_merchant_code), headers=first)
    assert made.status_code == 200
    transaction_id = made.json()["transactionId"]
    theirs = sim.get(f"{SN}/transactions/{transaction_id}/status", headers=second)
    assert theirs.status_code == 404 and theirs.json()["detail"] == "Transaction not found"
    assert "status" not in theirs.json() or theirs.json()["status"] == "404"
    mine = sim.get(f"{SN}/transactions/{transaction_id}/status", headers=first)
    assert mine.status_code == 200 and mine.json()["transactionId"] == transaction_id
    # the first retailer (number and PIN) on the second account: refused, no money moves
    cashin = transaction(
        FIRST.sonatel_merchant_code, partner=retailer(sim, second, FIRST), method=None
    )
    refused = sim.post(f"{SN}/cashins", json=cashin, headers=second)
    assert refused.status_code == 400 and refused.json()["code"] == "2041"
    balance = sim.post(
        f"{SN}/account/retailer/balance", json=retailer(sim, second, FIRST), headers=second
    )
    assert balance.status_code == 400 and balance.json()["code"] == "2041"
    own = sim.post(
        f"{SN}/account/retailer/balance", json=retailer(sim, second, SECOND), headers=second
    )
    assert own.status_code == 200 and own.json()["value"] == 10_000_000
    registration = {
        "apiKey": "k",
        "code": FIRST.sonatel_merchant_code,
        "name": "Shop",
        "callbackUrl": "http://127.0.0.1:9/cb",
    }
    crossed = sim.post("/api/notification/v1/merchantcallback", json=registration, headers=second)
    assert crossed.status_code == 400 and crossed.json()["code"] == "2050"
    assert ledger(sim, "default")[transaction_id]["account"] == "default"
    assert transaction_id not in ledger(sim, "second")


async def test_sonatel_plugin_serves_two_accounts_apart():
    """Through the plugin: each account registers its own callback, is notified with its
    own apiKey at its own URL, and the other account refuses that callback and has no
    record of that transaction."""
    recorders = CallbackRecorder(), CallbackRecorder()
    app = plugin.simulator_app(settings=FIRST, accounts=ACCOUNTS)
    with (
        serve_app(app) as simulator,
        serve_app(recorders[0]) as first_receiver,
        serve_app(recorders[1]) as second_receiver,
    ):
        contexts = [
            make_context(
                plugin.DECLARATION,
                settings,
                base_url=simulator.url,
                public_url=receiver.url,
                account=name,
            )
            for name, settings, receiver in (
                ("default", FIRST, first_receiver),
                ("second", SECOND, second_receiver),
            )
        ]
        try:
            for context in contexts:
                await plugin.setup(context)
            paid = Payment(
                id=str(uuid.uuid4()),
                type="collection",
                amount=Decimal(2500),
                currency="XOF",
                msisdn="+221771234567",
                reference="ORD-SECOND",
                country="SN",
            )
            ack = await plugin.initiate(contexts[1], paid)
            [recorded] = recorders[1].wait_for(1, 10)
            callback = to_inbound("orange", recorded)
            assert b"second-sonatel-callback-key" in callback.body
            outcome = await plugin.parse_callback(contexts[1], callback)
            assert outcome.update is not None and outcome.update.status == "succeeded"
            with pytest.raises(CallbackVerificationFailed):
                await plugin.parse_callback(contexts[0], callback)
            pending = msgspec.structs.replace(
                paid,
                status="pending",
                provider_reference=ack.provider_reference,
                provider_data=ack.provider_data,
            )
            with pytest.raises(UnknownToOperator):
                await plugin.status(contexts[0], pending)
            assert (await plugin.status(contexts[1], pending)).status == "succeeded"
            assert recorders[0].requests == []
        finally:
            for context in contexts:
                await context.http.aclose()
