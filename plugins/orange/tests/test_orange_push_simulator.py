"""Orange Cameroon `mp/push` (resend the USSD prompt) on the simulator over real HTTP, raw and
through the plugin's `resend_prompt` hook."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.errors import InvalidRequest, ProviderUnavailable
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment
from mmo_orange import plugin
from mmo_orange.settings import OrangeSettings
from mmo_orange.simulator import create_simulator

# long enough for a payment to stay PENDING while it is pushed again
DELAY = 0.4
SETTINGS = OrangeSettings(callback_delay=DELAY)
MP = "/omcoreapis/1.0.2/mp"


@pytest.fixture(scope="module")
def served():
    recorder = CallbackRecorder()
    with (
        serve_app(create_simulator(SETTINGS)) as simulator,
        serve_app(recorder) as receiver,
        httpx.Client(base_url=simulator.url) as http,
    ):
        yield http, simulator.url, receiver.url


@pytest.fixture
def sim(served):
    return served[0]


@pytest.fixture
async def ctx(served):
    context = make_context(plugin.DECLARATION, SETTINGS, base_url=served[1], public_url=served[2])
    yield context
    await context.http.aclose()


def headers(sim) -> dict[str, str]:
    basic = base64.b64encode(
        f"{SETTINGS.cameroon_consumer_key}:{SETTINGS.cameroon_consumer_secret}".encode()
    ).decode()
    answer = sim.post(
        "/token",
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "client_credentials"},
    )
    return {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "X-AUTH-TOKEN": SETTINGS.cameroon_auth_token,
    }


def paid_token(sim, h, subscriber: str = "690010000", kind: str = "mp") -> str:
    root = MP.replace("/mp", f"/{kind}")
    token = sim.post(f"{root}/init", headers=h).json()["data"]["payToken"]
    body = {
        "notifUrl": "http://127.0.0.1:9/notify",
        "channelUserMsisdn": SETTINGS.cameroon_channel_msisdn,
        "amount": "100",
        "subscriberMsisdn": subscriber,
        "pin": SETTINGS.cameroon_pin,
        "orderId": "O-" + token[-6:],
        "description": "Order",
        "payToken": token,
    }
    sim.post(f"{root}/pay", json=body, headers=h)
    return token


def entry(sim, pay_token: str) -> dict:
    return next(e for e in sim.get("/_simulator/ledger").json()["entries"] if e["id"] == pay_token)


def test_push_while_pending_then_refused_once_paid(sim):
    h = headers(sim)
    token = paid_token(sim, h)
    first = sim.get(f"{MP}/push/{token}", headers=h)
    assert first.status_code == 200
    assert first.json()["message"] == "Push sent to customer"
    assert first.json()["data"]["payToken"] == token
    assert first.json()["data"]["status"] == "PENDING"
    assert sim.get(f"{MP}/push/{token}", headers=h).status_code == 200
    assert entry(sim, token)["pushes"] == 2
    time.sleep(DELAY + 0.1)
    late = sim.get(f"{MP}/push/{token}", headers=h)
    assert late.status_code == 417
    assert late.json()["message"] == "60100 :: Transaction deja effectuee"
    assert late.json()["data"]["status"] == "SUCCESSFULL"
    assert entry(sim, token)["pushes"] == 2  # a refused push prompts nobody


def test_push_refused_for_expired_cancelled_and_declined(sim):
    h = headers(sim)
    expired = paid_token(sim, h, "690011037")
    cancelled = paid_token(sim, h, "690011032")
    poor = paid_token(sim, h, "690010001")  # 417 60019 at pay time: FAILED at once
    # declined at once: FAILED for the status query and for a push alike
    assert sim.get(f"{MP}/paymentstatus/{poor}", headers=h).json()["data"]["status"] == "FAILED"
    refused = sim.get(f"{MP}/push/{poor}", headers=h)
    assert refused.status_code == 417 and refused.json()["message"].startswith("60102 :: ")
    time.sleep(DELAY + 0.1)
    answer = sim.get(f"{MP}/push/{expired}", headers=h)
    assert answer.status_code == 417
    assert answer.json()["message"] == "60101 :: Transaction expiree"
    assert answer.json()["data"]["status"] == "EXPIRED"
    answer = sim.get(f"{MP}/push/{cancelled}", headers=h)
    assert answer.status_code == 417 and answer.json()["data"]["status"] == "CANCELLED"
    assert entry(sim, expired)["push_refused"] == "EXPIRED"


def test_push_of_unknown_unpaid_or_cashin_tokens(sim):
    h = headers(sim)
    assert sim.get(f"{MP}/push/MPNOPE", headers=h).status_code == 404
    unpaid = sim.post(f"{MP}/init", headers=h).json()["data"]["payToken"]
    answer = sim.get(f"{MP}/push/{unpaid}", headers=h)
    assert answer.status_code == 400 and answer.json()["data"] is None
    cashin = paid_token(sim, h, kind="cashin")
    assert sim.get(f"{MP}/push/{cashin}", headers=h).status_code == 404
    assert sim.get(f"/omcoreapis/1.0.2/cashin/push/{cashin}", headers=h).status_code == 404


def test_push_auth_and_faults(sim):
    h = headers(sim)
    token = paid_token(sim, h)
    no_bearer = sim.get(f"{MP}/push/{token}", headers={"X-AUTH-TOKEN": h["X-AUTH-TOKEN"]})
    assert no_bearer.status_code == 401 and "fault" in no_bearer.json()
    wrong = sim.get(f"{MP}/push/{token}", headers=h | {"X-AUTH-TOKEN": "bm9wZQ=="})
    assert wrong.status_code == 403
    sim.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    try:
        failed = sim.get(f"{MP}/push/{token}", headers=h)
    finally:
        sim.post("/_simulator/faults", json={})
    assert failed.status_code == 503 and failed.json()["fault"]["code"] == 101503
    assert "pushes" not in entry(sim, token)


# -- through the plugin ---------------------------------------------------------------------


def cm_payment(msisdn: str = "+237690010000") -> Payment:
    return Payment(
        id=str(uuid.uuid4()),
        type="collection",
        amount=Decimal(1500),
        currency="XAF",
        msisdn=msisdn,
        reference="ORD-CM",
        country="CM",
    )


def stored(p: Payment, ack) -> Payment:
    fields = {f: getattr(p, f) for f in p.__struct_fields__}
    return Payment(
        **fields
        | {
            "status": "pending",
            "provider_reference": ack.provider_reference,
            "provider_data": ack.provider_data,
        }
    )


async def test_plugin_resends_the_prompt_of_a_pending_payment(ctx, sim):
    p = cm_payment()
    ack = await plugin.initiate(ctx, p)
    pending = stored(p, ack)
    await plugin.resend_prompt(ctx, pending)
    assert entry(sim, ack.provider_reference)["pushes"] == 1
    await asyncio.sleep(DELAY + 0.1)
    # Orange's refusal (417) once it is paid, even if our copy still says pending
    with pytest.raises(InvalidRequest) as caught:
        await plugin.resend_prompt(ctx, pending)
    assert caught.value.code == "not_pending" and caught.value.provider_code == "60100"
    assert entry(sim, ack.provider_reference)["pushes"] == 1


async def test_plugin_resend_on_an_expired_payment_and_during_an_outage(ctx, sim):
    p = cm_payment("+237690011037")
    ack = await plugin.initiate(ctx, p)
    pending = stored(p, ack)
    sim.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    try:
        with pytest.raises(ProviderUnavailable):
            await plugin.resend_prompt(ctx, pending)
    finally:
        sim.post("/_simulator/faults", json={})
    await asyncio.sleep(DELAY + 0.1)
    with pytest.raises(InvalidRequest) as caught:
        await plugin.resend_prompt(ctx, pending)
    assert caught.value.provider_code == "60101"
    assert "expiree" in (caught.value.provider_message or "")


def test_declaration_offers_resend_prompt():
    assert "resend_prompt" in plugin.DECLARATION.operations
    assert msgspec.json.encode(plugin.DECLARATION.operations)  # plain strings
