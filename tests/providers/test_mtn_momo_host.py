"""MTN MoMo through the real host: payments reach their final status by real callbacks."""

from __future__ import annotations

import random
import uuid

import pytest

from tests.conftest import wait_for_status

SIM = "/_sim/mtn_momo"


async def _create(api, msisdn: str, *, kind: str = "collection", amount: str = "150") -> dict:
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": kind,
            "amount": amount,
            "currency": "EUR",
            "msisdn": msisdn,
            "provider": "mtn_momo",
            "reference": "ORD-" + uuid.uuid4().hex[:8],
        },
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def _ledger(host, reference_id: str) -> dict | None:
    entries = (await host.client.get(f"{host.url}{SIM}/_simulator/ledger")).json()["entries"]
    return next((e for e in entries if e["id"] == reference_id), None)


@pytest.mark.parametrize("kind", ["collection", "disbursement", "remittance"])
async def test_payment_succeeds_through_callback(api, host, kind) -> None:
    created = await _create(api, "+46701234567", kind=kind)
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    # X-Reference-Id is our payment id
    assert done["provider_reference"] == created["id"]
    assert done["provider_transaction_id"]
    entry = await _ledger(host, created["id"])
    assert entry is not None
    assert entry["status"] == "SUCCESSFUL"
    assert entry["product"] == kind
    assert entry["amount"] == "150"
    assert entry["msisdn"] == "46701234567"  # never a "+"


@pytest.mark.parametrize(
    ("msisdn", "status", "code"),
    [
        ("+46733123450", "failed", "INTERNAL_PROCESSING_ERROR"),
        ("+46733123451", "failed", "APPROVAL_REJECTED"),
        ("+46733123452", "expired", "EXPIRED"),
        ("+46733123455", "failed", "PAYER_NOT_FOUND"),
        ("+46733123463", "expired", "COULD_NOT_PERFORM_TRANSACTION"),
        ("+46701230001", "failed", "NOT_ENOUGH_FUNDS"),
        ("+46701231032", "failed", "APPROVAL_REJECTED"),
    ],
)
async def test_declined_numbers_keep_momo_reason(api, host, msisdn, status, code) -> None:
    created = await _create(api, msisdn)
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == status
    assert done["failure"]["provider_code"] == code
    entry = await _ledger(host, created["id"])
    assert entry is not None and entry["status"] == "FAILED" and entry["reason"] == code


async def test_sandbox_success_number_and_duplicate_callback(api, host) -> None:
    created = await _create(api, "+56733123453", amount="1500")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    twice = await _create(api, "+46701239991")
    assert (await wait_for_status(api, twice["id"], {"succeeded", "failed"}))["status"] == (
        "succeeded"
    )


async def test_transfer_number_not_enough_funds(api, host) -> None:
    created = await _create(api, "+46733123455", kind="disbursement")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "failed"
    assert done["failure"]["provider_code"] == "NOT_ENOUGH_FUNDS"


async def test_create_lost_before_momo_is_resent_with_same_reference(api, host) -> None:
    faults = f"{host.url}{SIM}/_simulator/faults"
    await host.client.post(faults, json={"error_rate": 1.0, "error_status": 500})
    try:
        # every attempt fails: the payment is not lost, it is unknown (never sent twice)
        created = await _create(api, "+46701234567")
        assert created["status"] in ("unknown", "failed")
        assert await _ledger(host, created["id"]) is None
    finally:
        await host.client.post(faults, json={})
    # a fault on the first attempt only (seeded): the resend carries the same X-Reference-Id
    rng = random.Random(3)
    assert rng.random() < 0.5 <= rng.random()
    await host.client.post(faults, json={"error_rate": 0.5, "error_status": 500, "seed": 3})
    try:
        created = await _create(api, "+46701234567")
    finally:
        await host.client.post(faults, json={})
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "unknown"})
    assert done["status"] == "succeeded"
    entries = (await host.client.get(f"{host.url}{SIM}/_simulator/ledger")).json()["entries"]
    assert [e["id"] for e in entries].count(created["id"]) == 1


async def test_wrong_currency_is_refused_before_momo(api, host) -> None:
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "amount": "1000",
            # MTN Uganda's wallets hold UGX (the default sandbox sends a Ugandan number to
            # the simulator's mtnuganda, issue 13): GHS is the wrong currency for it
            "currency": "GHS",
            "msisdn": "+256772123456",
            "provider": "mtn_momo",
            "reference": "ORD-UGX",
        },
    )
    assert response.status_code == 422, response.text
