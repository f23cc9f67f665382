"""MTN MoMo refunds, requests to withdraw and deposits through the real host.

Refunds go through the host's reversal route (`POST /api/v1/payments/{id}/reversal`,
which hands `reverse` its `reversal_id`), and, in the older test, through `reverse` called
on the host's own provider context without a reversal id (its HTTP client points at the
simulator mounted under /_sim/mtn_momo, its callback URLs at the host), whose refund's real
callback then moves the payment to `reversed`.
"""

from __future__ import annotations

import uuid

import msgspec
from mmo_host import payments
from mmo_mtn_momo import client, plugin

from tests.conftest import wait_for_status

SIM = "/_sim/mtn_momo"


async def _create(api, msisdn: str, *, kind: str = "collection", metadata=None) -> dict:
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": kind,
            "amount": "150",
            "currency": "EUR",
            "msisdn": msisdn,
            "provider": "mtn_momo",
            "reference": "ORD-" + uuid.uuid4().hex[:8],
            "metadata": metadata or {},
        },
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def _ledger(host) -> dict[str, dict]:
    entries = (await host.client.get(f"{host.url}{SIM}/_simulator/ledger")).json()["entries"]
    return {e["id"]: e for e in entries}


async def test_refund_reverses_a_collection_through_its_callback(api, host) -> None:
    created = await _create(api, "+46701234567")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    ctx = host.gateway.context("mtn_momo")
    payment = payments.to_core(await payments.get(created["id"]))
    report = await plugin.reverse(ctx, payment, None, "Returned goods", None)
    assert report.status == "reversed"
    # the refund's callback (PUT to /api/v1/webhooks/mtn-momo/refund), confirmed by `status`
    reversed_ = await wait_for_status(api, created["id"], {"reversed"})
    assert reversed_["provider_transaction_id"] == done["provider_transaction_id"]
    entry = (await _ledger(host))[client.refund_reference(created["id"])]
    assert entry["kind"] == "refund" and entry["refund_of"] == created["id"]
    assert entry["status"] == "SUCCESSFUL" and entry["amount"] == "150"
    # a second refund call is the same refund (409), not a second one
    again = await plugin.reverse(ctx, payment, None, "Returned goods", None)
    assert again.status == "reversed"
    refunds = [e for e in (await _ledger(host)).values() if e.get("refund_of") == created["id"]]
    assert len(refunds) == 1


async def test_request_to_withdraw_chosen_by_metadata(api, host) -> None:
    metadata = {"mtn_momo_collection": "requesttowithdraw"}
    created = await _create(api, "+46701234567", metadata=metadata)
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    declined = await _create(api, "+46733123451", metadata=metadata)
    failed = await wait_for_status(api, declined["id"], {"succeeded", "failed"})
    assert (
        failed["status"] == "failed" and failed["failure"]["provider_code"] == "APPROVAL_REJECTED"
    )
    ledger = await _ledger(host)
    assert ledger[created["id"]]["kind"] == "requesttowithdraw"
    assert ledger[declined["id"]]["reason"] == "APPROVAL_REJECTED"


async def test_unknown_collection_mode_is_refused_before_momo(api, host) -> None:
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "amount": "150",
            "currency": "EUR",
            "msisdn": "+46701234567",
            "provider": "mtn_momo",
            "reference": "ORD-MODE",
            "metadata": {"mtn_momo_collection": "preapproval"},
        },
    )
    assert response.status_code == 422, response.text


async def test_deposit_chosen_by_setting(api, host, monkeypatch) -> None:
    ctx = host.gateway.context("mtn_momo")
    monkeypatch.setattr(
        ctx, "settings", msgspec.structs.replace(ctx.settings, disbursement_mode="deposit")
    )
    created = await _create(api, "+46701234567", kind="disbursement")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    declined = await _create(api, "+46733123455", kind="disbursement")
    failed = await wait_for_status(api, declined["id"], {"succeeded", "failed"})
    # DepositPayer* follow the RequestToPay rows of MTN's table
    assert failed["failure"]["provider_code"] == "PAYER_NOT_FOUND"
    ledger = await _ledger(host)
    assert ledger[created["id"]]["kind"] == "deposit"
    assert ledger[declined["id"]]["kind"] == "deposit"


async def test_two_partial_refunds_through_the_reversal_route(api, host) -> None:
    """`POST /api/v1/payments/{id}/reversal` twice: each reversal's id is its refund's
    X-Reference-Id; the second one refunds the rest and the payment ends `reversed`."""
    created = await _create(api, "+46701234567")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    url = f"/api/v1/payments/{created['id']}/reversal"
    key = str(uuid.uuid4())
    first = await api.post(
        url, headers={"Idempotency-Key": key}, json={"reason": "part", "amount": "50"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "succeeded"  # 100 of 150 left
    # the same request again (same Idempotency-Key): replayed, no second refund
    replay = await api.post(
        url, headers={"Idempotency-Key": key}, json={"reason": "part", "amount": "50"}
    )
    assert replay.status_code == 200
    rest = await api.post(
        url, headers={"Idempotency-Key": str(uuid.uuid4())}, json={"reason": "rest"}
    )
    assert rest.status_code == 200, rest.text
    assert rest.json()["status"] == "reversed"
    listed = (await api.get(f"/api/v1/payments/{created['id']}/reversals")).json()
    items = listed["data"] if isinstance(listed, dict) else listed
    ids = {str(r["id"]) for r in items}
    refunds = {
        e["id"]: e for e in (await _ledger(host)).values() if e.get("refund_of") == created["id"]
    }
    # one refund per reversal, its X-Reference-Id the reversal's id
    assert set(refunds) == ids and len(ids) == 2
    assert sorted(e["amount"] for e in refunds.values()) == ["100", "50"]
    assert all(e["status"] == "SUCCESSFUL" for e in refunds.values())
