"""Daraja's limited fields, derived from the payment (issue 13): the derivation itself,
the simulator enforcing Daraja's limits, and long or odd references going through it."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import httpx
import mmo_mpesa.plugin as plugin
import msgspec
import pytest
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.testing.conformance import to_inbound
from mmo_core.types import Payment
from mmo_mpesa import client, fields
from mmo_mpesa.settings import SANDBOX_PASSKEY, MpesaSettings
from mmo_mpesa.simulator import create_simulator

REFERENCE_128 = "Commande n°42 / client «Zoë» — " + "x" * 97


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


# -- the derivation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("ABCDEFGHIJK", "ABCDEFGHIJK"),  # 11
        ("ABCDEFGHIJKL", "ABCDEFGHIJKL"),  # 12: at the limit, untouched
        ("INV-42/a b", "INV42ab"),  # odd characters dropped, the rest kept
        ("Zoë-12345678", "Zo12345678"),  # a non-ASCII letter is not Daraja's alphanumeric
    ],
)
def test_account_reference_keeps_what_fits(reference, expected):
    assert fields.account_reference(_payment(reference=reference)) == expected


@pytest.mark.parametrize(
    "reference", ["ABCDEFGHIJKLM", "ORDER-2026-12-01-0042", REFERENCE_128, "—/—", "订单"]
)
def test_account_reference_over_the_limit_is_a_prefix_and_a_hash(reference):
    derived = fields.account_reference(_payment(reference=reference))
    assert len(derived) == 12 and derived.isascii() and derived.isalnum()
    kept = "".join(ch for ch in reference if ch.isascii() and ch.isalnum())
    assert derived.startswith(kept[:6])
    assert fields.account_reference(_payment(reference=reference)) == derived  # stable
    assert fields.account_reference(_payment(reference=reference + "1")) != derived


def test_text_fields_fit_their_limits():
    assert fields.transaction_desc(_payment(description="ABCDEFGHIJKLM"), "P") == "ABCDEFGHIJKLM"
    cut = fields.transaction_desc(_payment(description="ABCDEFGHIJKLMN"), "P")
    assert len(cut) == 13 and cut.startswith("ABCDEF-")
    assert fields.transaction_desc(_payment(description="\n\t"), "Payment") == "Payment"
    assert fields.remarks("R" * 100) == "R" * 100
    assert len(fields.remarks("R" * 101)) == 100 and fields.remarks("R" * 101) != "R" * 100
    assert fields.remarks("x") == "Payment" and fields.remarks(None, "Reversal") == "Reversal"
    assert fields.remarks("two\nlines") == "two lines"
    occasion = fields.occasion(_payment(reference=REFERENCE_128))
    assert len(occasion) == 100 and occasion.startswith(REFERENCE_128[:93])
    assert fields.occasion(_payment(reference="O" * 100)) == "O" * 100


# -- the simulator enforces Daraja's limits ---------------------------------------------------


@pytest.fixture
def served():
    settings = MpesaSettings(callback_delay=0.05, result_wait=0.3)
    recorder = CallbackRecorder()
    with serve_app(create_simulator(settings)) as simulator, serve_app(recorder) as receiver:
        yield settings, simulator.url, receiver.url, recorder


async def _headers(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.get(
        "/oauth/v1/generate?grant_type=client_credentials",
        auth=("mmo-sandbox-consumer-key", "mmo-sandbox-consumer-secret"),
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _stk_body(**changes) -> dict:
    stamp = client.timestamp()
    body = {
        "BusinessShortCode": "174379",
        "Password": client.password("174379", SANDBOX_PASSKEY, stamp),
        "Timestamp": stamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 150,
        "PartyA": "254712345678",
        "PartyB": "174379",
        "PhoneNumber": "254712345678",
        "CallBackURL": "http://127.0.0.1:9/cb",
        "AccountReference": "INV42",
        "TransactionDesc": "Order 42",
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("AccountReference", "ABCDEFGHIJKLM"),
        ("AccountReference", "INV-42"),
        ("AccountReference", ""),
        ("TransactionDesc", "ABCDEFGHIJKLMN"),
    ],
)
async def test_simulator_refuses_stk_fields_over_darajas_limits(served, field, value):
    _, url, _, _ = served
    async with httpx.AsyncClient(base_url=url) as http:
        headers = await _headers(http)
        # at the limit: accepted (each on its own phone: a pending push locks its subscriber)
        fine = _stk_body(AccountReference="ABCDEFGHIJKL", TransactionDesc="ABCDEFGHIJKLM")
        answer = await http.post("/mpesa/stkpush/v1/processrequest", json=fine, headers=headers)
        assert answer.status_code == 200, answer.text
        over = _stk_body(PartyA="254712340000", PhoneNumber="254712340000", **{field: value})
        answer = await http.post("/mpesa/stkpush/v1/processrequest", json=over, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "400.002.02"
    assert answer.json()["errorMessage"] == f"Bad Request - Invalid {field}"


@pytest.mark.parametrize(
    ("field", "value"), [("Remarks", "R" * 101), ("Remarks", "R"), ("Occassion", "O" * 101)]
)
async def test_simulator_refuses_b2c_fields_over_darajas_limits(served, field, value):
    settings, url, _, _ = served
    body = {
        "OriginatorConversationID": str(uuid.uuid4()),
        "InitiatorName": "testapi",
        "SecurityCredential": client.security_credential(settings),
        "CommandID": "BusinessPayment",
        "Amount": 500,
        "PartyA": "600996",
        "PartyB": "254712345678",
        "Remarks": "R" * 100,
        "QueueTimeOutURL": "http://127.0.0.1:9/t",
        "ResultURL": "http://127.0.0.1:9/r",
        "Occassion": "O" * 100,
    }
    async with httpx.AsyncClient(base_url=url) as http:
        headers = await _headers(http)
        answer = await http.post("/mpesa/b2c/v3/paymentrequest", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        over = dict(body, OriginatorConversationID=str(uuid.uuid4()), **{field: value})
        answer = await http.post("/mpesa/b2c/v3/paymentrequest", json=over, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["errorMessage"] == f"Bad Request - Invalid {field}"


# -- long and odd references go through the simulator ----------------------------------------


async def test_a_128_character_reference_goes_through_every_product(served):
    """STK push, B2C and a reversal with a long, odd reference (and reason): the
    simulator, which enforces Daraja's limits, takes every derived field."""
    settings, url, public, recorder = served
    context = make_context(plugin.DECLARATION, settings, base_url=url, public_url=public)
    try:
        payment = _payment(reference=REFERENCE_128, description="Zoë's «big» order — #42")
        plugin.validate(context, payment)
        ack = await plugin.initiate(context, payment)
        recorded = await asyncio.to_thread(recorder.wait_for, 1, 10.0)
        update = (await plugin.parse_callback(context, to_inbound("mpesa", recorded[0]))).update
        assert update is not None and update.status == "succeeded"
        async with httpx.AsyncClient(base_url=url) as http:
            ledger = (await http.get("/_simulator/ledger")).json()["entries"]
        entry = next(e for e in ledger if e["id"] == ack.provider_reference)
        assert entry["reference"] == fields.account_reference(payment)
        assert payment.reference == REFERENCE_128  # untouched

        paid = msgspec.structs.replace(
            payment, status="succeeded", provider_transaction_id=update.provider_transaction_id
        )
        report = await plugin.reverse(context, paid, None, "A reason far too long. " * 10)
        assert report.status in ("pending", "reversed")
        for _ in range(50):
            async with httpx.AsyncClient(base_url=url) as http:
                ledger = (await http.get("/_simulator/ledger")).json()["entries"]
            if next(e for e in ledger if e["id"] == ack.provider_reference)["status"] == "reversed":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the reversal was not taken")

        payout = _payment(type="disbursement", reference=REFERENCE_128, description=None)
        plugin.validate(context, payout)
        await plugin.initiate(context, payout)
        async with httpx.AsyncClient(base_url=url) as http:
            ledger = (await http.get("/_simulator/ledger")).json()["entries"]
        assert next(e for e in ledger if e["id"] == payout.id)["status"] == "completed"
    finally:
        await context.http.aclose()


async def test_payer_message_reaches_the_prompt(served):
    settings, url, public, _ = served
    context = make_context(plugin.DECLARATION, settings, base_url=url, public_url=public)
    try:
        payment = _payment(reference="ORDER-" + "1" * 80, payer_message="ShopKE42")
        plugin.validate(context, payment)
        ack = await plugin.initiate(context, payment)
        async with httpx.AsyncClient(base_url=url) as http:
            ledger = (await http.get("/_simulator/ledger")).json()["entries"]
        assert next(e for e in ledger if e["id"] == ack.provider_reference)["reference"] == (
            "ShopKE42"
        )
    finally:
        await context.http.aclose()
