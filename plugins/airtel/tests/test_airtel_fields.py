"""Airtel's `reference` and `transaction.id` derived from the payment (issue 13): never a
refusal for an Airtel field limit, the same fields for the same payment, and the payer's
own `payer_message` checked against Airtel's rule. Through the simulator, which holds
v2/v3 disbursement references to Airtel's 4 to 64 letters or digits."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mmo_airtel import fields, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.errors import InvalidRequest
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment

ODD = 'Ünïcode "quotes" <tags> & emoji 🎉 — tab\tend'
LONG = "INV-2026/12/01 " + "x" * 108 + " #42!"  # 128 characters
assert len(LONG) == 128
DISBURSEMENT = re.compile(r"[A-Za-z0-9]{4,64}")
COLLECTION = re.compile(r"[A-Za-z0-9 _./-]{1,64}")


def payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal("5000"),
        "currency": "UGX",
        "msisdn": "+256752605678",
        "reference": "Order 1042",
        "country": "UG",
    }
    values.update(changes)
    return Payment(**values)


# -- the derivation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    ["A", "abc", "abcd", "a" * 63, "a" * 64, "a" * 65, "a" * 128, LONG, ODD, "   ", "-_-", "é"],
)
def test_derived_references_always_fit_and_are_stable(reference: str) -> None:
    for derive, rule in (
        (fields.disbursement_reference, DISBURSEMENT),
        (fields.collection_reference, COLLECTION),
    ):
        derived = derive(reference)
        assert rule.fullmatch(derived), (derive.__name__, reference, derived)
        assert derived.strip()
        assert derive(reference) == derived  # same reference, same field


def test_a_reference_that_fits_is_kept_whole() -> None:
    assert fields.disbursement_reference("Payout42") == "Payout42"
    assert fields.disbursement_reference("abcd") == "abcd"  # at the minimum
    assert fields.disbursement_reference("a" * 64) == "a" * 64  # at the maximum
    assert fields.collection_reference("Order 1042") == "Order 1042"
    assert fields.collection_reference("a" * 64) == "a" * 64
    assert fields.collection_reference("A") == "A"


def test_a_reference_that_does_not_fit_keeps_its_start_and_a_hash() -> None:
    over = "a" * 65
    derived = fields.disbursement_reference(over)
    assert len(derived) == 64 and derived.startswith("a" * 56)
    assert derived[56:] == fields.short_hash(over)
    assert fields.disbursement_reference("abc") == "abc" + fields.short_hash("abc")  # below 4
    # what is cut still tells references apart
    assert fields.disbursement_reference("pay-42") != fields.disbursement_reference("pay42x")
    assert fields.disbursement_reference("A-1") != fields.disbursement_reference("A1-")
    collection = fields.collection_reference(LONG)
    assert len(collection) == 64
    assert collection.startswith("INV-2026/12/01 xxx")
    assert collection.endswith("-" + fields.short_hash(LONG))
    assert fields.collection_reference(ODD).startswith("n code quotes tags emoji tab end-")
    assert fields.collection_reference("a" * 65) != fields.collection_reference("a" * 66)


def test_transaction_id_is_the_payment_id_or_a_stable_derivation() -> None:
    uid = str(uuid.uuid4())
    assert fields.transaction_id(uid) == uid
    assert fields.transaction_id("a" * 64) == "a" * 64
    over = fields.transaction_id("a" * 65)
    assert over.startswith("mmo-") and len(over) == 36 and over == fields.transaction_id("a" * 65)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", fields.transaction_id("id with spaces/é"))
    assert fields.transaction_id("x y") != fields.transaction_id("x_y")


# -- payer_message -------------------------------------------------------------------------


def _context() -> Any:
    return make_context(
        plugin.DECLARATION,
        AirtelSettings(),
        base_url="http://127.0.0.1:9",
        public_url="http://127.0.0.1:9",
    )


@pytest.mark.parametrize("message", ["Thanks for shopping", "a" * 64, "Order 1042/B_2.x"])
def test_a_valid_collection_payer_message_passes(message: str) -> None:
    plugin.validate(_context(), payment(payer_message=message))


@pytest.mark.parametrize("message", ["a" * 65, "a" * 255, "Café", "50% off!", " ", ""])
def test_a_collection_payer_message_outside_the_rule_is_refused(message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plugin.validate(_context(), payment(payer_message=message))
    assert caught.value.code == "invalid_payer_message"
    assert "at most 64 characters" in caught.value.message
    assert caught.value.message.startswith("payer_message:")


@pytest.mark.parametrize("message", ["abc", "a" * 65, "Payout 42", "pay-42"])
def test_a_disbursement_payer_message_outside_the_rule_is_refused(message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plugin.validate(_context(), payment(type="disbursement", payer_message=message))
    assert caught.value.code == "invalid_payer_message"
    assert "4 to 64 letters or digits" in caught.value.message


def test_a_long_odd_reference_is_never_refused() -> None:
    for kind in ("collection", "disbursement"):
        plugin.validate(_context(), payment(type=kind, reference=LONG))
        plugin.validate(_context(), payment(type=kind, reference=ODD))


# -- through the simulator -------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[str, str]]:
    recorder = CallbackRecorder()
    settings = AirtelSettings(callback_delay=0.01, disbursement_version="v2")
    with serve_app(recorder) as receiver, serve_app(create_simulator(settings)) as served:
        yield served.url, receiver.url


@pytest.fixture
async def context(simulator: tuple[str, str]) -> AsyncIterator[Any]:
    context = make_context(
        plugin.DECLARATION,
        AirtelSettings(disbursement_version="v2"),
        base_url=simulator[0],
        public_url=simulator[1],
    )
    try:
        yield context
    finally:
        await context.http.aclose()


async def ledger_entry(url: str, transaction_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        entries = (await http.get("/_simulator/ledger")).json()["entries"]
    return next(e for e in entries if e["id"] == transaction_id)


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("collection", LONG),
        ("collection", ODD),
        ("collection", "a" * 64),
        ("collection", "a" * 65),
        ("disbursement", LONG),
        ("disbursement", ODD),
        ("disbursement", "abc"),
        ("disbursement", "a" * 64),
        ("disbursement", "a" * 65),
        ("disbursement", "pay-42"),
    ],
)
async def test_any_reference_goes_through_the_simulator(
    simulator: tuple[str, str], context: Any, kind: str, reference: str
) -> None:
    pay = payment(type=kind, reference=reference)
    plugin.validate(context, pay)
    result = await plugin.initiate(context, pay)
    assert result.provider_reference == pay.id  # a UUID is Airtel's transaction id as it is
    entry = await ledger_entry(simulator[0], pay.id)
    assert entry["status"] == "TS"
    expected = (
        fields.disbursement_reference(reference)
        if kind == "disbursement"
        else fields.collection_reference(reference)
    )
    assert entry["reference"] == expected
    assert pay.reference == reference  # the payment keeps the orchestrator's reference


async def test_a_valid_payer_message_is_what_the_payer_sees(
    simulator: tuple[str, str], context: Any
) -> None:
    pay = payment(reference=LONG, payer_message="Thanks from SHOP LTD")
    plugin.validate(context, pay)
    await plugin.initiate(context, pay)
    assert (await ledger_entry(simulator[0], pay.id))["reference"] == "Thanks from SHOP LTD"
    payout = payment(type="disbursement", reference=LONG, payer_message="Salary2026")
    plugin.validate(context, payout)
    await plugin.initiate(context, payout)
    assert (await ledger_entry(simulator[0], payout.id))["reference"] == "Salary2026"


async def test_a_payment_id_that_does_not_fit_gets_its_derived_transaction_id(
    simulator: tuple[str, str], context: Any
) -> None:
    odd_id = "order 1042/" + "z" * 70
    pay = payment(id=odd_id)
    result = await plugin.initiate(context, pay)
    derived = fields.transaction_id(odd_id)
    assert result.provider_reference == derived
    assert (await ledger_entry(simulator[0], derived))["kind"] == "collection"
    pending = Payment(**{**_fields(pay), "status": "pending", "provider_reference": derived})
    assert (await plugin.status(context, pending)).status == "succeeded"


def _fields(pay: Payment) -> dict[str, Any]:
    return {name: getattr(pay, name) for name in pay.__struct_fields__}


@pytest.mark.parametrize(
    ("reference", "accepted"),
    [
        ("abc", False),  # under 4
        ("abcd", True),  # at 4
        ("a" * 64, True),  # at 64
        ("a" * 65, False),  # over 64
        ("pay-42", False),  # not alphanumeric
        ("Pay 42", False),
    ],
)
@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_the_simulator_holds_v2_disbursement_references_to_airtels_rule(
    context: Any, simulator: tuple[str, str], reference: str, accepted: bool, version: str
) -> None:
    from mmo_airtel import client

    body = {
        "payee": {"msisdn": "752605678", "wallet_type": "NORMAL"},
        "reference": reference,
        "pin": await client.encrypted_pin(context, "UG", "UGX"),
        "transaction": {"amount": 100, "id": uuid.uuid4().hex, "type": "B2C"},
    }
    async with httpx.AsyncClient(base_url=simulator[0]) as http:
        token = await client.token(context, "UG")
        answer = (
            await http.post(
                f"/standard/{version}/disbursements/",
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Country": "UG",
                    "X-Currency": "UGX",
                },
            )
        ).json()
    # v1 documents no reference rule: only v2 (and v3) refuse
    if accepted or version == "v1":
        assert answer["status"]["success"] is True, answer
    else:
        assert answer["status"]["success"] is False
        assert answer["status"]["result_code"] == "ESB000008"
        assert "4 to 64" in answer["status"]["message"]
