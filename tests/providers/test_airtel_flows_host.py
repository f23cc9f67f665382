"""Airtel Money through the real host, the rest of issue 5's "Done when": refunds (v1, and
v2 signed) of collections ended by unsigned and signed callbacks; a disbursement ended by a
signed callback; every disbursement test number, 9990 / 9991 / 9992 and the KYC numbers;
forged, mis-hashed and lying callbacks that change nothing. The simulator's ledger agrees."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mmo_airtel import client
from mmo_host import db
from mmo_host.worker import Worker

from tests.conftest import wait_for_status
from tests.providers.test_airtel_host import body


async def create(api: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/payments", json=body(**changes), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    return response.json()


async def ledger(host: Any, payment_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{host.url}/_sim/airtel/_simulator/ledger")).json()["entries"]
    return next((e for e in entries if e["id"] == payment_id), None)


async def transitions(payment_id: str) -> list[Any]:
    return await db.fetch(
        "SELECT to_status, source, detail FROM payment_transitions WHERE payment_id = $1 "
        "ORDER BY id",
        uuid.UUID(payment_id),
    )


async def callback_rows(payment_id: str) -> list[Any]:
    return await db.fetch(
        "SELECT * FROM callbacks WHERE payment_id = $1 ORDER BY received_at",
        uuid.UUID(payment_id),
    )


def detail_of(row: Any) -> dict[str, Any]:
    detail = row["detail"]
    return json.loads(detail) if isinstance(detail, str) else (detail or {})


@pytest.fixture
def settings(host: Any) -> Iterator[Any]:
    """The plugin's settings, shared with its mounted simulator; restored afterwards."""
    current = host.gateway.settings["airtel"]
    saved = (current.callback_auth, current.collection_version)
    try:
        yield current
    finally:
        current.callback_auth, current.collection_version = saved


async def reverse(api: httpx.AsyncClient, payment_id: str, **body: Any) -> httpx.Response:
    return await api.post(
        f"/api/v1/payments/{payment_id}/reversal",
        json={"reason": "Order cancelled", **body},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


@pytest.mark.parametrize(
    ("signed_callbacks", "version"), [(False, "v1"), (True, "v1"), (True, "v2")]
)
async def test_collection_then_refund(
    api, host, settings, signed_callbacks: bool, version: str
) -> None:
    settings.callback_auth = signed_callbacks
    settings.collection_version = version
    created = await create(api)
    done = await wait_for_status(api, created["id"], {"succeeded"})
    last = (await transitions(created["id"]))[-1]
    assert (last["to_status"], last["source"]) == ("succeeded", "callback")
    detail = detail_of(last)
    assert detail["authenticated"] is signed_callbacks
    assert ("confirmed_by_status" in detail) is not signed_callbacks

    partial = await reverse(api, created["id"], amount="100")
    assert partial.status_code == 422 and partial.json()["error"]["code"] == "not_supported"
    refunded = await reverse(api, created["id"])
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "reversed"
    entry = await ledger(host, created["id"])
    assert entry is not None
    assert entry["status"] == "REFUNDED"
    assert entry["airtel_money_id"] == done["provider_transaction_id"]
    assert entry["signed"] is (version == "v2")
    again = await reverse(api, created["id"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reversed"


async def test_disbursement_ends_by_signed_callback(api, host, settings) -> None:
    settings.callback_auth = True
    created = await create(api, type="disbursement", amount="2500", reference="Payout42")
    done = await wait_for_status(api, created["id"], {"succeeded"})
    last = (await transitions(created["id"]))[-1]
    assert (last["to_status"], last["source"]) == ("succeeded", "callback")
    assert detail_of(last)["authenticated"] is True
    entry = await ledger(host, created["id"])
    assert entry is not None and (entry["kind"], entry["status"]) == ("disbursement", "TS")
    assert done["provider_transaction_id"] == entry["airtel_money_id"]


@pytest.mark.parametrize(
    ("last4", "code"),
    [("0001", "DP00900001007"), ("1032", "DP00900001013"), ("1037", "DP00900001005")],
)
async def test_disbursement_test_numbers_fail(api, host, last4: str, code: str) -> None:
    created = await create(api, type="disbursement", msisdn="+25675260" + last4)
    failed = await wait_for_status(api, created["id"], {"failed"})
    entry = await ledger(host, created["id"])
    assert entry is not None and (entry["status"], entry["response_code"]) == ("TF", code)
    assert failed["failure"]["provider_code"] == code  # unsigned: the enquiry's code is kept


async def test_disbursement_wrong_pin_number_fails_at_once(api, host) -> None:
    created = await create(api, type="disbursement", msisdn="+256752602001")
    assert created["status"] == "failed"
    assert created["failure"]["provider_code"] == "ROUTER115"
    assert await ledger(host, created["id"]) is None


async def test_no_callback_number_ends_by_poll(api, host) -> None:
    created = await create(api, msisdn="+256752609990")
    await asyncio.sleep(0.3)  # several callback delays: none comes
    assert (await api.get(f"/api/v1/payments/{created['id']}")).json()["status"] == "pending"
    assert await callback_rows(created["id"]) == []
    await Worker(host.gateway, worker_id="airtel-test").drain()
    done = (await api.get(f"/api/v1/payments/{created['id']}")).json()
    assert done["status"] == "succeeded"
    assert ("succeeded", "poll") in [
        (t["to_status"], t["source"]) for t in await transitions(created["id"])
    ]
    entry = await ledger(host, created["id"])
    assert entry is not None and done["provider_transaction_id"] == entry["airtel_money_id"]


async def test_double_callback_number_succeeds_once(api, host) -> None:
    created = await create(api, msisdn="+256752609991")
    await wait_for_status(api, created["id"], {"succeeded"})
    for _ in range(40):
        rows = await callback_rows(created["id"])
        if len(rows) == 2 and all(r["processed"] for r in rows):
            break
        await asyncio.sleep(0.05)
    assert [r["flag"] for r in rows] == [None, "duplicate"]
    succeeded = [t for t in await transitions(created["id"]) if t["to_status"] == "succeeded"]
    assert len(succeeded) == 1


async def test_late_callback_number_succeeds(api, host) -> None:
    created = await create(api, msisdn="+256752609992")
    await asyncio.sleep(0.2)  # the callback comes after 10 x 0.05 s
    assert (await api.get(f"/api/v1/payments/{created['id']}")).json()["status"] == "pending"
    await wait_for_status(api, created["id"], {"succeeded"})
    [row] = await callback_rows(created["id"])
    assert row["flag"] is None


@pytest.mark.parametrize(
    ("msisdn", "active", "name"),
    [("+256752605678", True, "JOHN DOE"), ("+256752600404", False, None)],
)
async def test_kyc_lookup_numbers(api, msisdn: str, active: bool, name: str | None) -> None:
    answer = await api.get(f"/api/v1/admin/providers/airtel/accounts/{msisdn}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["msisdn"], body["active"]) == (msisdn, active)
    if name:
        assert body["name"] == name


async def test_barred_number_is_inactive(api) -> None:
    body = (await api.get("/api/v1/admin/providers/airtel/accounts/+256752601032")).json()
    assert body["active"] is False


def callback_body(payment_id: str, status: str = "TS", airtel_id: str = "MP-forged") -> bytes:
    return (
        b'{"transaction":{"id":"'
        + payment_id.encode()
        + b'","message":"Paid","status_code":"'
        + status.encode()
        + b'","airtel_money_id":"'
        + airtel_id.encode()
        + b'"}}'
    )


async def test_mis_hashed_callbacks_change_nothing(api, host, settings) -> None:
    settings.callback_auth = True
    created = await create(api, msisdn="+256752609990")  # no callback from the simulator
    payment_id = created["id"]
    url = host.gateway.context("airtel").callback_url("callback", payment_id)
    key = settings.callback_private_key
    failed = callback_body(payment_id, "TF")
    # a hash made with the right key over other content (TS), sent with TF
    swapped = (
        failed[:-1]
        + b',"hash":"'
        + client.callback_hash(key, callback_body(payment_id)).encode()
        + b'"}'
    )
    # the right hash in the body, then the content altered after hashing
    good = callback_body(payment_id, "TF")
    hashed = good[:-1] + b',"hash":"' + client.callback_hash(key, good).encode() + b'"}'
    tampered = hashed.replace(b'"status_code":"TF"', b'"status_code":"TS"')
    # a hash that is not base64 at all, and one in a header over the wrong key
    garbage = failed[:-1] + b',"hash":"%%%"}'
    async with httpx.AsyncClient() as http:
        for body in (swapped, tampered, garbage):
            assert (await http.post(url, content=body)).status_code == 401
        wrong_header = {"hash": client.callback_hash("wrong", failed)}
        assert (await http.post(url, content=failed, headers=wrong_header)).status_code == 401
        # a valid hash on a URL whose token is not ours
        forged_url = url.replace("token=", "token=x")
        assert (await http.post(forged_url, content=hashed)).status_code == 401
    await asyncio.sleep(0.1)
    assert (await api.get(f"/api/v1/payments/{payment_id}")).json()["status"] == "pending"
    rows = await db.fetch("SELECT flag, payment_id FROM callbacks WHERE provider = 'airtel'")
    assert len(rows) == 5 and all(r["flag"] == "unverified" for r in rows)
    assert {t["to_status"] for t in await transitions(payment_id)} <= {"new", "pending"}
    # control: the same callback, correctly hashed on our URL, is applied without enquiry
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, content=hashed)).status_code == 200
    failed_now = await wait_for_status(api, payment_id, {"failed"})
    assert failed_now["failure"]["provider_code"] == "TF"
    assert detail_of((await transitions(payment_id))[-1])["authenticated"] is True


async def test_unsigned_lying_callback_is_not_applied(api, host) -> None:
    """Callback authentication off: a callback with our valid URL token saying TF for a
    payment Airtel holds as TS is checked by enquiry and not applied."""
    created = await create(api, msisdn="+256752609990")
    payment_id = created["id"]
    url = host.gateway.context("airtel").callback_url("callback", payment_id)
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, content=callback_body(payment_id, "TF"))
    assert answer.status_code == 200
    await asyncio.sleep(0.1)
    assert (await api.get(f"/api/v1/payments/{payment_id}")).json()["status"] == "pending"
    [row] = await callback_rows(payment_id)
    assert row["flag"] == "unconfirmed"
    entry = await ledger(host, payment_id)
    assert entry is not None and entry["status"] == "TS"
