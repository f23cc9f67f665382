"""The four end-to-end corridors of issue 13, through the public API only.

Each corridor collects money from one wallet and pays it out to another, converted at a
fixed rate stated here. Both legs go through `POST /api/v1/payments` without `provider`
(the gateway chooses it from the number, and `POST /api/v1/providers/predict` must say the
same first), then `GET /api/v1/payments/{id}` until final. A corridor passes when both legs
are `succeeded`, each on the provider its number's network is served by, and both ledgers
agree: what the gateway holds of each leg (amount, currency, number, status, the operator's
references) is what the operator's simulator holds in its ledger
(`GET /_sim/<provider>/_simulator/ledger`).

Every disagreement of a corridor is gathered before the one assertion, so a failure names
them all at once. Nothing is patched: a leg the plugins cannot do fails here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest
from mmo_core.money import exponent
from mmo_core.phones import mask

from tests.conftest import Host, wait_for_status
from tests.providers.test_orange_host import sonatel_setup

# every wait is bounded; a whole corridor (two legs, four or five waits) gets this much
LEG_TIMEOUT = 15.0
CORRIDOR_TIMEOUT = 60.0


@dataclass(frozen=True)
class Leg:
    msisdn: str
    currency: str
    provider: str  # the provider the number's network must route to
    network: str  # the network phonenumbers' carrier data gives the number


@dataclass(frozen=True)
class Corridor:
    name: str
    collection: Leg
    payout: Leg
    amount: str  # collected, in the collection's currency
    # units of the payout currency per unit of the collection currency: a fixed rate, the
    # payout is the collected amount times the rate, rounded down to the payout currency's
    # exponent (a payout never gives more than the rate does)
    rate: Decimal


CORRIDORS = [
    Corridor(
        "KE-UG",
        collection=Leg("+254712345678", "KES", "mpesa", "safaricom"),
        payout=Leg("+256772345678", "UGX", "mtn_momo", "mtn"),
        amount="1500",
        rate=Decimal("28.75"),  # 1,500 KES -> 43,125 UGX
    ),
    Corridor(
        "NG-GH",
        collection=Leg("+2348031345678", "NGN", "mtn_momo", "mtn"),  # 0803: MTN Nigeria
        payout=Leg("+233244345678", "GHS", "mtn_momo", "mtn"),
        amount="25000.50",
        rate=Decimal("0.0071"),  # 25,000.50 NGN -> 177.503555 -> 177.50 GHS
    ),
    Corridor(
        "KE-KE",
        collection=Leg("+254733345678", "KES", "airtel", "airtel"),
        payout=Leg("+254753345678", "KES", "airtel", "airtel"),
        amount="2500.00",
        rate=Decimal("1"),
    ),
    Corridor(
        "CI-SN",
        collection=Leg("+2250707345678", "XOF", "orange", "orange"),
        payout=Leg("+221771345678", "XOF", "orange", "orange"),
        amount="5000",
        rate=Decimal("1"),  # one currency, the BCEAO franc, in both countries
    ),
]


def convert(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The payout amount: `amount` times `rate`, rounded down to `currency`'s exponent."""
    return (amount * rate).quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_DOWN)


def test_the_stated_rates_convert_as_written() -> None:
    """The conversion the corridors rely on, checked by hand (no float anywhere)."""
    assert convert(Decimal("1500"), Decimal("28.75"), "UGX") == Decimal("43125")
    assert convert(Decimal("25000.50"), Decimal("0.0071"), "GHS") == Decimal("177.50")
    assert convert(Decimal("2500.00"), Decimal("1"), "KES") == Decimal("2500.00")
    assert str(convert(Decimal("5000"), Decimal("1"), "XOF")) == "5000"


# -- the operators' ledgers ------------------------------------------------------------------

# The word each simulator's ledger uses for money that moved.
SUCCEEDED = {"mpesa": "completed", "mtn_momo": "SUCCESSFUL", "airtel": "TS", "orange": "SUCCESS"}
# The ledger field holding the operator's transaction id (the gateway's
# `provider_transaction_id`), where the simulator records one: M-Pesa's receipt, Airtel's
# airtel_money_id, WebPay's txnid; a Sonatel entry is keyed by its transactionId. The MTN
# simulator keeps financialTransactionId in its status answer only, not in the ledger.
TRANSACTION_ID: dict[str, Callable[[dict[str, Any]], Any]] = {
    "mpesa": lambda e: e.get("receipt"),
    "airtel": lambda e: e.get("airtel_money_id"),
    "orange": lambda e: e.get("txnid") if e.get("family") == "webpay" else e["id"],
}
# Daraja carries no currency: M-Pesa holds Kenyan shillings only.
ONLY_CURRENCY = {"mpesa": "KES"}
# Orange's WebPay sandbox offer ("dev", the default sandbox's) books every payment in its
# test currency OUV where the CI offer books XOF: the one translation this test makes.
SANDBOX_CURRENCY: dict[tuple[str, str], str] = {("orange", "OUV"): "XOF"}


async def ledger_of(host: Host, provider: str) -> list[dict[str, Any]]:
    """The simulator's ledger, its numbers read as Decimal (a float never appears)."""
    response = await host.client.get(f"{host.url}/_sim/{provider}/_simulator/ledger")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = json.loads(response.text, parse_float=Decimal)["entries"]
    return entries


def ledger_key(payment: dict[str, Any]) -> str:
    """The ledger id of a payment: the operator's reference the gateway keeps, except for
    Orange WebPay, whose ledger is keyed by the pay_token of the page the payer was sent to
    (the gateway's reference there is a digest of the notif_token, which WebPay never
    echoes)."""
    action = payment.get("next_action") or {}
    if payment["provider"] == "orange" and action.get("type") == "redirect":
        return str(action["url"]).rsplit("/", 1)[-1]
    return str(payment["provider_reference"])


def disagreements(payment: dict[str, Any], entry: dict[str, Any] | None) -> list[str]:
    """Where the gateway's record of a leg and the operator's ledger entry differ."""
    provider = payment["provider"]
    if entry is None:
        return [f"no ledger entry under {ledger_key(payment)!r}"]
    found: list[str] = []

    amount = entry.get("amount")
    if amount is None or Decimal(str(amount)) != Decimal(payment["amount"]):
        found.append(f"amount: gateway {payment['amount']}, ledger {amount!r}")

    booked = str(entry.get("currency") or ONLY_CURRENCY.get(provider))
    currency = SANDBOX_CURRENCY.get((provider, booked), booked)
    if currency != payment["currency"]:
        found.append(f"currency: gateway {payment['currency']}, ledger {currency!r}")

    digits = payment["msisdn"].lstrip("+")
    if entry.get("family") == "webpay":  # the payer types the number on Orange's page
        if entry.get("payer_last4") != digits[-4:]:
            found.append(f"number: ledger's payer_last4 {entry.get('payer_last4')!r}")
    elif entry.get("msisdn") is None:
        found.append(f"number: gateway {mask(payment['msisdn'])}, the ledger entry records none")
    elif str(entry["msisdn"]).lstrip("+") != digits:
        found.append(f"number: gateway {mask(payment['msisdn'])}, ledger another")

    if payment["status"] != "succeeded" or entry.get("status") != SUCCEEDED[provider]:
        found.append(f"status: gateway {payment['status']}, ledger {entry.get('status')!r}")

    if entry.get("family") != "webpay" and entry["id"] != payment["provider_reference"]:
        found.append(f"provider_reference: gateway {payment['provider_reference']!r}")
    if provider in TRANSACTION_ID:
        recorded = TRANSACTION_ID[provider](entry)
        if recorded is None or recorded != payment["provider_transaction_id"]:
            found.append(
                f"provider_transaction_id: gateway {payment['provider_transaction_id']!r}, "
                f"ledger {recorded!r}"
            )
    return found


def test_the_ledger_comparison_catches_each_field() -> None:
    """`disagreements` is not vacuous: each field that differs is named."""
    payment: dict[str, Any] = {
        "provider": "mpesa",
        "amount": "1500.00",
        "currency": "KES",
        "msisdn": "+254712345678",
        "status": "succeeded",
        "provider_reference": "ws_CO_1",
        "provider_transaction_id": "S0ABCDEF",
        "next_action": None,
    }
    entry: dict[str, Any] = {
        "id": "ws_CO_1",
        "amount": 1500,
        "msisdn": "254712345678",
        "receipt": "S0ABCDEF",
        "status": "completed",
    }
    assert disagreements(payment, entry) == []
    changes: dict[str, dict[str, Any]] = {
        "amount": {"amount": 1501},
        "number": {"msisdn": "254712340000"},
        "status": {"status": "failed"},
        "provider_transaction_id": {"receipt": "S0OTHER"},
        "currency": {"currency": "UGX"},
    }
    for field, change in changes.items():
        found = disagreements(payment, entry | change)
        assert [f.split(":")[0] for f in found] == [field], (field, found)
    assert disagreements(payment, None) == ["no ledger entry under 'ws_CO_1'"]
    webpay = payment | {"provider": "orange", "currency": "XOF", "provider_reference": "wp-1"}
    webpay |= {"next_action": {"type": "redirect", "url": "http://sim/payment/pay_token/abc"}}
    page: dict[str, Any] = {"id": "abc", "family": "webpay", "amount": 1500, "currency": "OUV"}
    page |= {"status": "SUCCESS", "txnid": "S0ABCDEF", "payer_last4": "5678"}
    assert ledger_key(webpay) == "abc" and disagreements(webpay, page) == []
    assert disagreements(webpay, page | {"currency": "XAF"})[0].startswith("currency")


# -- the legs --------------------------------------------------------------------------------


async def run_leg(
    api: httpx.AsyncClient, leg: Leg, operation: str, amount: str, reference: str
) -> dict[str, Any]:
    """Predict, pay without `provider`, and wait until the payment is final."""
    predicted = await api.post("/api/v1/providers/predict", json={"msisdn": leg.msisdn})
    assert predicted.status_code == 200, predicted.text
    answer = predicted.json()
    offered = (answer.get("providers") or {}).get(operation)
    assert (answer["network"], offered, answer.get("currency")) == (
        leg.network,
        leg.provider,
        leg.currency,
    ), f"predict for {mask(leg.msisdn)} ({operation}): {answer}"

    response = await api.post(
        "/api/v1/payments",
        json={
            "type": operation,
            "amount": amount,
            "currency": leg.currency,
            "msisdn": leg.msisdn,
            "reference": reference,
            "description": f"corridor {operation}",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, (
        f"{operation} of {amount} {leg.currency} to {mask(leg.msisdn)}: {response.text}"
    )
    created = response.json()
    assert created["routing"] == {
        "network": leg.network,
        "provider": leg.provider,
        "account": "default",
        "reason": "network",
    }, created["routing"]
    done = await wait_for_status(
        api, created["id"], {"succeeded", "failed", "expired", "reversed"}, timeout=LEG_TIMEOUT
    )
    assert done["status"] == "succeeded", (operation, leg.provider, done["failure"])
    assert done["routing"]["provider"] == leg.provider
    # the pay_token of WebPay's page is only on the answer to the POST
    done["next_action"] = created["next_action"]
    return done


@pytest.mark.parametrize("corridor", CORRIDORS, ids=[c.name for c in CORRIDORS])
async def test_corridor_collects_pays_out_and_both_ledgers_agree(
    api: httpx.AsyncClient, host: Host, corridor: Corridor
) -> None:
    if "orange" in (corridor.collection.provider, corridor.payout.provider):
        # `mmo setup orange`, the deployment's one-time step: Sonatel notifies only a
        # merchant that registered its callback URL
        await sonatel_setup(host)
    reference = f"COR-{corridor.name}-{uuid.uuid4().hex[:8]}"
    async with asyncio.timeout(CORRIDOR_TIMEOUT):
        collected = await run_leg(
            api, corridor.collection, "collection", corridor.amount, reference
        )
        assert Decimal(collected["amount"]) == Decimal(corridor.amount)
        payout_amount = convert(
            Decimal(collected["amount"]), corridor.rate, corridor.payout.currency
        )
        paid = await run_leg(api, corridor.payout, "disbursement", str(payout_amount), reference)
        assert Decimal(paid["amount"]) == payout_amount
        assert paid["type"] == "disbursement" and collected["type"] == "collection"

        found: dict[str, list[str]] = {}
        for name, payment in (("collection", collected), ("payout", paid)):
            entries = await ledger_of(host, payment["provider"])
            key = ledger_key(payment)
            entry = next((e for e in entries if e["id"] == key), None)
            if problems := disagreements(payment, entry):
                found[f"{name} ({payment['provider']})"] = problems
    assert found == {}, f"{corridor.name}: the gateway and the operators' ledgers disagree"
