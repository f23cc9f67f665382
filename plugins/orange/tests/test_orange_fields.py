"""The fields Orange sees, derived from the payment and never refused (order_id, WebPay
reference, Cameroon orderId and description, Sonatel reference), and `payer_message`
checked per family: as functions, and through the simulator, which holds Orange's limits."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from mmo_core import phones
from mmo_core.errors import InvalidRequest
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment
from mmo_orange import fields, plugin
from mmo_orange.settings import OrangeSettings
from mmo_orange.simulator import create_simulator

SETTINGS = OrangeSettings(callback_delay=0.05)
ODD = "Ünïcødé\t<b>&\"'\n\x00 café 🙂 \ud800 / ?#%"
LONG = ("ORDER-" + ODD + "x" * 128)[:128]


def payment(msisdn: str = "+2250701234567", currency: str = "XOF", **changes) -> Payment:
    values = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal(1500),
        "currency": currency,
        "msisdn": msisdn,
        "reference": "ORD-1",
        "country": phones.region_of(msisdn),
    } | changes
    return Payment(**values)


# -- the derivations ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 17, 29, 30, 31, 64, 128])
def test_order_ids_fit_thirty_identifier_characters_and_are_unique(size):
    reference = ("R" * size)[:size]
    first, second = payment(reference=reference), payment(reference=reference)
    for derive in (fields.webpay_order_id, fields.cameroon_order_id):
        order_id = derive(first)
        assert len(order_id) <= 30 and order_id == derive(first)
        assert order_id != derive(second), "same reference, another payment: another order"
        assert order_id.startswith("R"), "as much of the reference as fits is kept"
        assert all(ch.isalnum() or ch in "-_." for ch in order_id)


def test_order_id_of_odd_or_empty_characters():
    odd = payment(reference=ODD)
    assert fields.webpay_order_id(odd).startswith("Unicdebcafe-")  # accents folded
    symbols = payment(reference="<>?/ \n")
    assert fields.webpay_order_id(symbols).startswith("MMO-")
    assert len(fields.webpay_order_id(symbols)) <= 30


@pytest.mark.parametrize(("size", "kept"), [(29, True), (30, True), (31, False), (128, False)])
def test_webpay_reference_keeps_what_fits(size, kept):
    reference = "A" * size
    derived = fields.webpay_reference(payment(reference=reference))
    assert len(derived) <= 30
    assert (derived == reference) is kept
    if not kept:  # as much as fits, then a hash of the whole reference
        assert derived.startswith("A" * 21 + "-")
        other = fields.webpay_reference(payment(reference=reference[:-1] + "B"))
        assert other != derived and len(other) <= 30


def test_webpay_reference_of_odd_characters_is_printable_and_stable():
    derived = fields.webpay_reference(payment(reference=ODD))
    assert derived == fields.webpay_reference(payment(reference=ODD))
    assert len(derived) <= 30 and derived.isprintable() and "\n" not in derived


@pytest.mark.parametrize(("size", "kept"), [(100, True), (101, False), (128, False)])
def test_cameroon_description_keeps_what_fits_in_ascii(size, kept):
    text = "D" * size
    derived = fields.cameroon_description(payment("+237699124567", "XAF", description=text))
    assert len(derived) <= 100 and (derived == text) is kept
    folded = fields.cameroon_description(payment("+237699124567", "XAF", description="Café é"))
    assert folded.startswith("Cafe e-") and folded.isascii()
    assert fields.cameroon_description(
        payment("+237699124567", "XAF", reference=LONG)
    ) == fields.cameroon_description(payment("+237699124567", "XAF", reference=LONG))


def test_sonatel_reference_is_the_payment_id():
    p = payment("+221771234567", reference=LONG)
    assert fields.sonatel_reference(p) == p.id and len(p.id) <= 50


# -- payer_message --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msisdn", "currency", "limit", "name"),
    [
        ("+2250701234567", "XOF", 30, "Orange WebPay"),
        ("+237699124567", "XAF", 100, "Orange Cameroon"),
        ("+221771234567", "XOF", 50, "Orange Senegal (Sonatel)"),
    ],
)
def test_payer_message_is_held_to_each_family_limit(msisdn, currency, limit, name):
    ctx = make_context(plugin.DECLARATION, SETTINGS, base_url="http://x", public_url="http://y")
    plugin.validate(ctx, payment(msisdn, currency, payer_message="M" * limit))
    with pytest.raises(InvalidRequest) as over:
        plugin.validate(ctx, payment(msisdn, currency, payer_message="M" * (limit + 1)))
    assert over.value.code == "invalid_payer_message"
    assert over.value.message == f"payer_message: at most {limit} characters for {name}"
    for bad in ("line\nbreak", "nul\x00", "   ", "lone \ud800"):
        with pytest.raises(InvalidRequest) as unreadable:
            plugin.validate(ctx, payment(msisdn, currency, payer_message=bad))
        assert unreadable.value.code == "invalid_payer_message"
        assert f"at most {limit} characters for {name}" in unreadable.value.message


def test_payer_message_is_ascii_on_the_cameroon_ussd_prompt_only():
    ctx = make_context(plugin.DECLARATION, SETTINGS, base_url="http://x", public_url="http://y")
    plugin.validate(ctx, payment(payer_message="Merci, café payé"))  # WebPay page: fine
    with pytest.raises(InvalidRequest, match="printable ASCII"):
        plugin.validate(ctx, payment("+237699124567", "XAF", payer_message="Merci, café payé"))


# -- through the simulator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served():
    recorder = CallbackRecorder()
    with serve_app(create_simulator(SETTINGS)) as simulator, serve_app(recorder) as receiver:
        yield simulator.url, receiver.url


@pytest.fixture
async def ctx(served):
    context = make_context(plugin.DECLARATION, SETTINGS, base_url=served[0], public_url=served[1])
    yield context
    await context.http.aclose()


def entry(served, key: str) -> dict:
    with httpx.Client(base_url=served[0]) as http:
        entries = http.get("/_simulator/ledger").json()["entries"]
    return next(e for e in entries if e["id"] == key)


async def test_a_128_character_odd_reference_goes_through_webpay(served, ctx):
    p = payment(reference=LONG)
    assert len(p.reference) == 128
    ack = await plugin.initiate(ctx, p)
    sent = entry(served, ack.provider_data["pay_token"])
    assert sent["order_id"] == fields.webpay_order_id(p) and len(sent["order_id"]) <= 30
    assert sent["reference"] == fields.webpay_reference(p) and len(sent["reference"]) <= 30
    assert p.reference == LONG, "the payment keeps the orchestrator's reference"
    again = await plugin.initiate(ctx, payment(reference=LONG))  # same reference, new order
    assert again.provider_data["order_id"] != ack.provider_data["order_id"]


async def test_the_payer_message_is_what_the_payer_sees(served, ctx):
    webpay = await plugin.initiate(ctx, payment(payer_message="Boutique Awa, merci !"))
    assert entry(served, webpay.provider_data["pay_token"])["reference"] == "Boutique Awa, merci !"
    cameroon = await plugin.initiate(
        ctx, payment("+237699124567", "XAF", reference=LONG, payer_message="Facture 12 Awa")
    )
    assert entry(served, cameroon.provider_reference)["description"] == "Facture 12 Awa"
    plain = await plugin.initiate(ctx, payment("+237699124567", "XAF", reference=LONG))
    sent = entry(served, plain.provider_reference)
    assert len(sent["order_id"]) <= 30 and len(sent["description"]) <= 100


@pytest.mark.parametrize(
    ("field", "size", "status"),
    [("order_id", 30, 201), ("order_id", 31, 400), ("reference", 30, 201), ("reference", 31, 400)],
)
def test_the_webpay_simulator_holds_orange_limits(served, field, size, status):
    from test_orange_simulator import basic

    with httpx.Client(base_url=served[0]) as http:
        token = http.post(
            "/oauth/v3/token",
            headers=basic(SETTINGS.client_id, SETTINGS.client_secret),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        body = {
            "merchant_key": SETTINGS.merchant_key,
            "currency": "OUV",
            "order_id": uuid.uuid4().hex[:20],
            "amount": 100,
            "return_url": "https://shop.example/r",
            "cancel_url": "https://shop.example/c",
            "notif_url": "http://127.0.0.1:9/n",
            "lang": "fr",
            "reference": "Shop",
        } | {field: uuid.uuid4().hex[:12] + "x" * (size - 12)}
        answer = http.post(
            "/orange-money-webpay/dev/v1/webpayment",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == status
    if status == 400:
        assert answer.json()["code"] == 24 and field in answer.json()["description"]


@pytest.mark.parametrize(
    ("field", "size", "status"),
    [
        ("orderId", 30, 200),
        ("orderId", 31, 400),
        ("description", 100, 200),
        ("description", 101, 400),
    ],
)
def test_the_cameroon_simulator_holds_the_derived_limits(served, field, size, status):
    from test_orange_simulator import basic

    with httpx.Client(base_url=served[0]) as http:
        token = http.post(
            "/token",
            headers=basic(SETTINGS.cameroon_consumer_key, SETTINGS.cameroon_consumer_secret),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-AUTH-TOKEN": SETTINGS.cameroon_auth_token}
        pay_token = http.post("/omcoreapis/1.0.2/mp/init", headers=headers).json()["data"][
            "payToken"
        ]
        body = {
            "notifUrl": "http://127.0.0.1:9/notify",
            "channelUserMsisdn": SETTINGS.cameroon_channel_msisdn,
            "amount": "100",
            "subscriberMsisdn": "699124567",
            "pin": SETTINGS.cameroon_pin,
            "orderId": "O-1",
            "description": "Order",
            "payToken": pay_token,
        } | {field: "y" * size}
        answer = http.post("/omcoreapis/1.0.2/mp/pay", json=body, headers=headers)
    assert answer.status_code == status
    if status == 400:
        assert field in answer.json()["message"]


async def test_a_sonatel_payer_message_at_fifty_goes_through(served, ctx):
    ack = await plugin.initiate(ctx, payment("+221771234567", payer_message="P" * 50))
    assert entry(served, ack.provider_reference)["reference"] == "P" * 50
