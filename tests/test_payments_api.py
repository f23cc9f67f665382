"""The orchestrator API against a real Postgres, with the example provider's simulator
serving over real HTTP and calling the gateway's webhook back."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from mmo_host import db

from tests.conftest import OTHER_KEY, wait_for_status


def body(**changes):
    payload = {
        "type": "collection",
        "amount": "150",
        "currency": "KES",
        "msisdn": "+254712345678",
        "provider": "example",
        "reference": "INV-2041",
        "description": "Order 2041",
        "metadata": {"order": 2041},
    }
    payload.update(changes)
    return payload


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_payment_flows_end_to_end_through_the_webhook(api):
    response = await api.post("/api/v1/payments", json=body(), headers=key())
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "pending"
    assert created["amount"] == "150.00"
    assert created["provider_reference"].startswith("EX")
    assert created["failure"] is None and created["next_action"] is None

    done = await wait_for_status(api, created["id"], {"succeeded"})
    assert done["reference"] == "INV-2041"
    assert done["metadata"] == {"order": 2041}

    callbacks = await db.fetch(
        "SELECT * FROM callbacks WHERE payment_id = $1", uuid.UUID(created["id"])
    )
    assert len(callbacks) == 1
    stored = callbacks[0]
    assert stored["verified"] is True and stored["processed"] is True and stored["flag"] is None
    assert b'"status":"SUCCESSFUL"' in bytes(stored["body"])
    history = await db.fetch(
        "SELECT from_status, to_status, source FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
        uuid.UUID(created["id"]),
    )
    assert [(h["from_status"], h["to_status"], h["source"]) for h in history] == [
        (None, "new", "api"),
        ("new", "pending", "api"),
        ("pending", "succeeded", "callback"),
    ]
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1 ORDER BY created_at",
        uuid.UUID(created["id"]),
    )
    assert [e["type"] for e in events] == [
        "payment.created",
        "payment.pending",
        "payment.succeeded",
    ]


async def test_declined_number_ends_failed_with_the_operators_code(api):
    response = await api.post("/api/v1/payments", json=body(msisdn="+254712340001"), headers=key())
    assert response.status_code == 202
    done = await wait_for_status(api, response.json()["id"], {"failed"})
    assert done["failure"] == {
        "code": "insufficient_funds",
        "message": "The payer does not have enough funds",
        "provider_code": "INSUFFICIENT_FUNDS",
        "provider_message": "The payer does not have enough funds",
    }


async def test_payment_without_provider_is_routed(api, host):
    payload = body()
    del payload["provider"]
    response = await api.post("/api/v1/payments", json=payload, headers=key())
    assert response.status_code == 202
    chosen = host.gateway.registry.get(response.json()["provider"]).declaration
    assert chosen.serves("KE", "KES") and "collection" in chosen.operations
    tz = await api.post(
        "/api/v1/payments",
        json=body(provider=None, currency="TZS", amount="1000", msisdn="+255712345678"),
        headers=key(),
    )
    assert tz.status_code == 202
    assert host.gateway.registry.get(tz.json()["provider"]).declaration.serves("TZ", "TZS")


async def test_national_phone_forms_are_stored_in_e164(api):
    response = await api.post("/api/v1/payments", json=body(msisdn="254712345678"), headers=key())
    assert response.status_code == 202
    assert response.json()["msisdn"] == "+254712345678"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount": "150.001"}, 422, "invalid_amount"),
        ({"amount": "0"}, 422, "invalid_amount"),
        ({"amount": 150.5}, 400, "invalid_request"),
        ({"amount": "abc"}, 400, "invalid_request"),
        ({"currency": "ZZZ"}, 422, "invalid_currency"),
        ({"msisdn": "+25471"}, 422, "invalid_msisdn"),
        ({"msisdn": "not a phone"}, 422, "invalid_msisdn"),
        ({"type": "refund"}, 400, "invalid_request"),
        ({"provider": "nope"}, 422, "unknown_provider"),
        ({"amount": "250001"}, 422, "amount_too_large"),
        ({"currency": "UGX", "amount": "1000"}, 422, "not_supported"),
        ({"unexpected": 1}, 400, "invalid_request"),
        ({"reference": ""}, 400, "invalid_request"),
    ],
)
async def test_bad_input_is_refused_before_storage(api, changes, status, code):
    response = await api.post("/api/v1/payments", json=body(**changes), headers=key())
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text
    assert await db.fetch("SELECT id FROM payments") == []


async def test_invalid_json_is_a_400(api):
    response = await api.post(
        "/api/v1/payments", content=b"{nope", headers={**key(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_provider_validate_hook_refuses_before_storage(api):
    response = await api.post(
        "/api/v1/payments",
        json=body(
            provider="fake",
            currency="TZS",
            amount="1000",
            msisdn="+255712345678",
            reference="BAD-1",
        ),
        headers=key(),
    )
    assert response.status_code == 422
    assert "BAD" in response.json()["error"]["message"]
    assert await db.fetch("SELECT id FROM payments") == []


async def test_synchronous_refusal_keeps_the_operators_code(api):
    response = await api.post(
        "/api/v1/payments",
        json=body(provider="fake", currency="TZS", amount="1000", msisdn="+255712340001"),
        headers=key(),
    )
    assert response.status_code == 202
    assert response.json()["status"] == "failed"
    # the gateway's code the plugin mapped, the operator's code and text beside it
    assert response.json()["failure"] == {
        "code": "insufficient_funds",
        "message": "NSF",
        "provider_code": "F-51",
        "provider_message": "NSF",
    }


async def test_missing_idempotency_key_is_refused(api):
    response = await api.post("/api/v1/payments", json=body())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Basic abc", "Bearer", "Token sk_test_0123456789abcdefghijklmnop"],
)
async def test_api_requires_a_valid_key(host, clean_db, header):
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=host.url, headers=headers) as client:
        for response in (
            await client.post("/api/v1/payments", json=body(), headers=key()),
            await client.get("/api/v1/payments"),
            await client.get(f"/api/v1/payments/{uuid.uuid4()}"),
            await client.get("/api/v1/admin/providers"),
        ):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
    assert await db.fetch("SELECT id FROM payments") == []


async def test_same_key_same_body_returns_the_first_response(api):
    headers = key()
    first = await api.post("/api/v1/payments", json=body(), headers=headers)
    await wait_for_status(api, first.json()["id"], {"succeeded"})
    again = await api.post("/api/v1/payments", json=body(), headers=headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert len(await db.fetch("SELECT id FROM payments")) == 1


async def test_same_key_other_body_is_a_conflict(api):
    headers = key()
    first = await api.post("/api/v1/payments", json=body(), headers=headers)
    assert first.status_code == 202
    other = await api.post("/api/v1/payments", json=body(amount="151"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await db.fetch("SELECT id FROM payments")) == 1


async def test_idempotency_keys_are_scoped_per_api_key(api, host):
    headers = key()
    first = await api.post("/api/v1/payments", json=body(), headers=headers)
    async with httpx.AsyncClient(
        base_url=host.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as other:
        second = await other.post("/api/v1/payments", json=body(), headers=headers)
        assert second.status_code == 202
        assert second.json()["id"] != first.json()["id"]
        # and one client cannot read the other's payments
        assert (await other.get(f"/api/v1/payments/{first.json()['id']}")).status_code == 404


async def test_concurrent_requests_with_one_key_create_one_payment(api):
    headers = key()
    responses = await asyncio.gather(
        *[api.post("/api/v1/payments", json=body(), headers=headers) for _ in range(8)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) >= 1
    assert set(statuses) <= {202, 409}
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "request_in_progress"
    rows = await db.fetch("SELECT id FROM payments")
    assert len(rows) == 1
    ledger = (await api.get("/_sim/example/_simulator/ledger")).json()["entries"]
    assert len([e for e in ledger if e["reference"] == str(rows[0]["id"])]) == 1


async def test_get_unknown_payment_is_404(api):
    for pid in (str(uuid.uuid4()), "not-a-uuid"):
        response = await api.get(f"/api/v1/payments/{pid}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_list_filters_and_paginates(api):
    ids = []
    for i in range(5):
        r = await api.post("/api/v1/payments", json=body(reference=f"INV-{i % 2}"), headers=key())
        ids.append(r.json()["id"])
    page = (await api.get("/api/v1/payments", params={"limit": 2})).json()
    assert [p["id"] for p in page["data"]] == ids[::-1][:2]
    seen = [p["id"] for p in page["data"]]
    while page["next_cursor"]:
        page = (
            await api.get("/api/v1/payments", params={"limit": 2, "cursor": page["next_cursor"]})
        ).json()
        seen += [p["id"] for p in page["data"]]
    assert seen == ids[::-1]
    only = (await api.get("/api/v1/payments", params={"reference": "INV-1"})).json()["data"]
    assert {p["id"] for p in only} == {ids[1], ids[3]}
    assert (await api.get("/api/v1/payments", params={"provider": "fake"})).json()["data"] == []
    bad = await api.get("/api/v1/payments", params={"cursor": "!!"})
    assert bad.status_code == 422
    assert (await api.get("/api/v1/payments", params={"limit": 0})).status_code == 400


async def test_an_unknown_status_filter_is_refused_not_an_empty_page(api):
    response = await api.get("/api/v1/payments", params={"status": "paid"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert (await api.get("/api/v1/payments", params={"status": "pending"})).status_code == 200


async def test_a_refused_prepare_step_fails_the_payment_not_queues_it(api):
    """The operator refused the step before money moves for good: the payment fails with
    its code at once (not queued and retried until MMO_QUEUE_FOR)."""
    response = await api.post(
        "/api/v1/payments",
        json=body(
            reference="PREPBAD-1",
            provider="fake",
            currency="TZS",
            amount="1000",
            msisdn="+255712345678",
        ),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    payment = response.json()
    assert payment["status"] == "failed"
    assert (payment["failure"]["code"], payment["failure"]["provider_code"]) == (
        "payer_not_found",
        "F-14",
    )
    from tests import fake_provider

    assert "initiate" not in fake_provider.CALLS
