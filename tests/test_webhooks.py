"""Operators' webhooks: kept raw before anything else, then verified, matched and applied."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import httpx
import pytest
from mmo_core.errors import ConfigurationError
from mmo_host import db

from tests import fake_provider
from tests.conftest import wait_for_status


async def create_fake_payment(api, msisdn="+255712345678", amount="1000"):
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": amount,
            "currency": "TZS",
            "msisdn": msisdn,
            "provider": "fake",
            "reference": "F-1",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return response.json()


def fake_url(host, payment_id=None):
    return host.gateway.context("fake").callback_url("notify", payment_id)


async def post(url, content, method="POST", **headers):
    async with httpx.AsyncClient() as client:
        return await client.request(method, url, content=content, headers=headers)


async def callbacks():
    return await db.fetch("SELECT * FROM callbacks ORDER BY received_at")


async def test_unsigned_final_callback_is_confirmed_with_the_status_api(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    message = json.dumps({"ref": ref, "status": "succeeded", "amount": "1000"}).encode()

    # The operator's status API still says pending: the callback is kept but not applied.
    response = await post(fake_url(host), message, method="PUT")
    assert response.status_code == 200 and response.json() == {"ack": True}
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "pending"
    [first] = await callbacks()
    assert first["flag"] == "unconfirmed" and first["verified"] is True
    assert first["method"] == "PUT"

    # Once the operator holds it as succeeded, the same callback is applied.
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    response = await post(fake_url(host), message)
    assert response.status_code == 200
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"
    rows = await callbacks()
    assert rows[1]["flag"] is None and rows[1]["processed"] is True
    assert str(rows[1]["payment_id"]) == payment["id"]
    transition = await db.fetchrow(
        "SELECT * FROM payment_transitions WHERE callback_id = $1", rows[1]["id"]
    )
    assert transition["to_status"] == "succeeded"
    assert json.loads(transition["detail"]) == {
        "authenticated": False,
        "confirmation": "required",
        "confirmed_by_status": "succeeded",
    }

    # A duplicate changes nothing.
    response = await post(fake_url(host), message)
    assert response.status_code == 200
    assert (await callbacks())[2]["flag"] == "duplicate"
    count = await db.fetchrow(
        "SELECT count(*) AS n FROM payment_transitions WHERE payment_id = $1",
        uuid.UUID(payment["id"]),
    )
    assert count["n"] == 3  # new, pending, succeeded

    # A late, contradicting callback (even confirmed) cannot move a final state.
    fake_provider.OPERATOR[ref]["status"] = "failed"
    failed = json.dumps({"ref": ref, "status": "failed"}).encode()
    assert (await post(fake_url(host), failed)).status_code == 200
    assert (await callbacks())[3]["flag"] == "conflict"
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


async def test_operator_sends_the_callback_twice(api):
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "10",
            "currency": "KES",
            "msisdn": "+254712349991",
            "provider": "example",
            "reference": "DUP",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    payment = await wait_for_status(api, response.json()["id"], {"succeeded"})
    for _ in range(100):
        rows = await callbacks()
        if len(rows) == 2 and all(r["processed"] for r in rows):
            break
        await asyncio.sleep(0.05)
    assert sorted(str(r["flag"]) for r in rows) == ["None", "duplicate"]
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1", uuid.UUID(payment["id"])
    )
    assert sorted(e["type"] for e in events) == [
        "payment.created",
        "payment.pending",
        "payment.succeeded",
    ]


async def test_callback_for_no_known_payment_is_kept_and_flagged(api, host):
    message = json.dumps({"ref": "FK-nobody", "status": "succeeded"}).encode()
    response = await post(fake_url(host), message)
    assert response.status_code == 200
    [row] = await callbacks()
    assert row["flag"] == "unmatched" and row["payment_id"] is None
    assert bytes(row["body"]) == message


async def test_amount_mismatch_is_not_applied(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    message = json.dumps({"ref": ref, "status": "succeeded", "amount": "1"}).encode()
    assert (await post(fake_url(host), message)).status_code == 200
    [row] = await callbacks()
    assert row["flag"] == "mismatch"
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "pending"


async def test_wrong_token_is_refused_but_kept(api, host):
    url = fake_url(host).replace("token=", "token=x")
    response = await post(url, b'{"ref": "FK-1", "status": "succeeded"}')
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "callback_verification_failed"
    [row] = await callbacks()
    assert row["verified"] is False and row["flag"] == "unverified"
    no_token = await post(f"{host.url}/api/v1/webhooks/fake-money/notify", b"{}")
    assert no_token.status_code == 401


async def test_malformed_callback_is_kept_and_answered_400(api, host):
    response = await post(fake_url(host), b"{not json", **{"Authorization": "Bearer secret"})
    assert response.status_code == 400
    assert "Traceback" not in response.text
    [row] = await callbacks()
    assert row["flag"] == "malformed" and bytes(row["body"]) == b"{not json"
    headers = json.loads(row["headers"])
    assert headers["authorization"] == "[redacted]"
    missing = await post(fake_url(host), b'{"status": "succeeded"}')
    assert missing.status_code == 400


async def test_unknown_webhook_routes_are_404_and_kept(api, host):
    for path in ("/api/v1/webhooks/nobody/notify", "/api/v1/webhooks/fake-money/other"):
        response = await post(host.url + path, b"{}")
        assert response.status_code == 404
    rows = await callbacks()
    assert [r["flag"] for r in rows] == ["unknown_provider", "unknown_kind"]


async def test_oversized_webhook_is_refused(api, host):
    response = await post(fake_url(host), b"x" * (host.gateway.config.max_webhook_bytes + 1))
    assert response.status_code == 413


async def test_example_callback_with_bad_signature_is_refused(api, host):
    url = host.gateway.context("example").callback_url("payment", str(uuid.uuid4()))
    response = await post(url, b'{"id": "EX1"}', **{"X-Example-Signature": "00"})
    assert response.status_code == 401


async def test_confirmation_can_be_turned_off_per_provider(api, host, monkeypatch):
    payment = await create_fake_payment(api)
    settings = host.gateway.context("fake").settings
    monkeypatch.setattr(settings, "confirm_callbacks", False)
    message = json.dumps({"ref": payment["provider_reference"], "status": "succeeded"}).encode()
    assert (await post(fake_url(host), message)).status_code == 200
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"
    assert "status" not in fake_provider.CALLS  # applied without asking the operator
    transition = await db.fetchrow(
        "SELECT detail FROM payment_transitions WHERE to_status = 'succeeded'"
    )
    assert json.loads(transition["detail"])["confirmation"] == "off"


async def test_payments_the_operator_reports_through_any_provider(api, host):
    """The host's inbound path is provider-neutral: matched, stored, deduplicated, and an
    amount the currency cannot hold is a malformed callback (400), never a 500."""
    open_payment = await create_fake_payment(api, amount="1000")
    # what the fake operator's records hold (its inbound_status answers from them)
    fake_provider.RECEIPTS.update({"W-1": Decimal(1000), "W-2": Decimal("250.50")})
    matched = await post(
        fake_url(host), json.dumps({"receipt": "W-1", "amount": "1000", "account": "F-1"})
    )
    assert matched.status_code == 200 and matched.json() == {"ack": True}
    settled = (await api.get(f"/api/v1/payments/{open_payment['id']}")).json()
    assert (settled["status"], settled["provider_transaction_id"]) == ("succeeded", "W-1")

    walk_in = json.dumps({"receipt": "W-2", "amount": "250.50", "account": "SHOP-9"})
    assert (await post(fake_url(host), walk_in)).status_code == 200
    assert (await post(fake_url(host), walk_in)).status_code == 200  # resent
    (stored,) = (await api.get("/api/v1/payments", params={"reference": "SHOP-9"})).json()["data"]
    assert (stored["origin"], stored["amount"], stored["msisdn"]) == ("walk-in", "250.50", "")

    bad = await post(fake_url(host), json.dumps({"receipt": "W-3", "amount": "1.001"}))
    assert bad.status_code == 400 and "Traceback" not in bad.text
    flags = [row["flag"] for row in await callbacks()]
    assert flags == ["matched", "inbound", "duplicate", "malformed"]
    assert await db.fetch("SELECT id FROM payments WHERE provider_transaction_id = 'W-3'") == []


async def test_a_reported_payment_the_operator_does_not_confirm_settles_nothing(api, host):
    """A forged report (a leaked callback URL) naming an open collection's reference: the
    operator's records do not show the receipt, so the collection stays open and nothing
    is stored; the callback is kept, flagged `unconfirmed`."""
    open_payment = await create_fake_payment(api, amount="1000")
    forged = json.dumps({"receipt": "FORGED-1", "amount": "1000", "account": "F-1"})
    assert (await post(fake_url(host), forged)).status_code == 200
    after = (await api.get(f"/api/v1/payments/{open_payment['id']}")).json()
    assert (after["status"], after["provider_transaction_id"]) == ("pending", None)
    assert (
        await db.fetch("SELECT id FROM payments WHERE provider_transaction_id = 'FORGED-1'") == []
    )
    assert [row["flag"] for row in await callbacks()] == ["unconfirmed"]
    # the same report with an amount the operator does not hold is refused too
    fake_provider.RECEIPTS["REAL-1"] = Decimal(999)
    other = json.dumps({"receipt": "REAL-1", "amount": "1000", "account": "F-1"})
    assert (await post(fake_url(host), other)).status_code == 200
    assert (await api.get(f"/api/v1/payments/{open_payment['id']}")).json()["status"] == "pending"


async def test_a_callback_from_a_source_not_allowed_changes_nothing(api, host, monkeypatch):
    """With an allow-list, a callback from elsewhere is kept, flagged, answered 403 and not
    parsed; behind a trusted proxy the forwarded address is the one checked."""
    from mmo_host import sources

    payment = await create_fake_payment(api)
    fake_provider.OPERATOR[payment["provider_reference"]]["status"] = "succeeded"
    body = json.dumps({"ref": payment["provider_reference"], "status": "succeeded"})
    allowed = sources.networks("196.201.214.0/24", "test")
    monkeypatch.setitem(host.gateway.allowed_sources, ("fake", "default"), allowed)
    refused = await post(fake_url(host), body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "pending"
    (row,) = await callbacks()
    assert (row["flag"], row["verified"]) == ("unverified", False)
    # a forwarded header from an untrusted peer is not believed
    forwarded = {"x-forwarded-for": "196.201.214.200"}
    assert (await post(fake_url(host), body, **forwarded)).status_code == 403
    monkeypatch.setattr(host.gateway, "trusted_proxies", sources.networks("127.0.0.1", "test"))
    assert (await post(fake_url(host), body, **forwarded)).status_code == 200
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


def test_client_addresses_behind_proxies():
    from mmo_host import sources

    proxies = sources.networks("10.0.0.0/8", "test")
    chain = {"x-forwarded-for": "203.0.113.9, 198.51.100.7, 10.1.1.1"}
    assert sources.client_address("10.0.0.2", chain, proxies) == "198.51.100.7"
    assert sources.client_address("192.0.2.1", chain, proxies) == "192.0.2.1"
    assert sources.client_address("10.0.0.2", {"x-forwarded-for": "garbage"}, proxies) is None
    assert sources.allowed(None, ()) and not sources.allowed(None, proxies)
    with pytest.raises(ConfigurationError, match="MMO_X"):
        sources.networks("10.0.0.0/8, nonsense", "MMO_X")
