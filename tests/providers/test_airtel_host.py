"""Airtel Money through the real host: payments created over the API end by the simulator's
real callbacks (unsigned, then signed), and the simulator's ledger agrees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mmo_airtel import client
from mmo_host import db

from tests.conftest import wait_for_status


def body(**changes: Any) -> dict[str, Any]:
    payload = {
        "type": "collection",
        "amount": "5000",
        "currency": "UGX",
        "msisdn": "+256752605678",
        "provider": "airtel",
        "reference": "Order1042",
    }
    payload.update(changes)
    return payload


async def create(api: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/payments", json=body(**changes), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    return response.json()


async def ledger(host: Any, payment_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{host.url}/_sim/airtel/_simulator/ledger")).json()["entries"]
    return next(e for e in entries if e["id"] == payment_id)


@pytest.fixture
def signed(host: Any) -> Iterator[Any]:
    """Callback authentication on, for the plugin and its mounted simulator alike."""
    settings = host.gateway.settings["airtel"]
    settings.callback_auth = True
    try:
        yield settings
    finally:
        settings.callback_auth = False


async def callback_rows(payment_id: str) -> list[Any]:
    return await db.fetch(
        "SELECT * FROM callbacks WHERE payment_id = $1 ORDER BY received_at",
        uuid.UUID(payment_id),
    )


async def test_collection_succeeds_by_unsigned_callback(api, host) -> None:
    created = await create(api)
    assert created["status"] == "pending"
    assert created["provider_reference"] == created["id"]
    done = await wait_for_status(api, created["id"], {"succeeded"})
    entry = await ledger(host, created["id"])
    assert entry["status"] == "TS" and entry["amount"] == "5000"
    assert done["provider_transaction_id"] == entry["airtel_money_id"]
    [row] = await callback_rows(created["id"])
    assert row["verified"] is True and row["flag"] is None


@pytest.mark.parametrize(
    ("last4", "code", "gateway", "final"),
    [
        ("0001", "DP00800001007", "insufficient_funds", "failed"),
        ("2001", "DP00800001002", "wrong_pin", "failed"),
        # the prompt timed out (DP00800001024): `expired`, as on every operator
        ("1037", "DP00800001024", "prompt_expired", "expired"),
        ("1032", "DP00800001008", "payer_declined", "failed"),
    ],
)
async def test_declined_test_numbers_fail(
    api, host, last4: str, code: str, gateway: str, final: str
) -> None:
    created = await create(api, msisdn="+25675260" + last4)
    failed = await wait_for_status(api, created["id"], {final})
    assert failed["failure"]["code"] == gateway
    entry = await ledger(host, created["id"])
    assert (entry["status"], entry["response_code"]) == ("TF", code)
    # Airtel's callback carries only TF and a text; the host keeps the callback's failure.
    assert failed["failure"]["provider_code"] in ("TF", code)


async def test_disbursement_succeeds_by_callback(api, host) -> None:
    created = await create(api, type="disbursement", amount="2500", reference="Payout42")
    done = await wait_for_status(api, created["id"], {"succeeded"})
    entry = await ledger(host, created["id"])
    assert (entry["kind"], entry["status"]) == ("disbursement", "TS")
    assert done["provider_transaction_id"] == entry["airtel_money_id"]


async def test_signed_callbacks_and_forgeries(api, host, signed) -> None:
    created = await create(api, msisdn="+256752609990")  # 9990: no callback from Airtel
    payment_id = created["id"]
    url = host.gateway.context("airtel").callback_url("callback", payment_id)
    raw = (
        b'{"transaction":{"id":"' + payment_id.encode() + b'","message":"Paid","status_code":"TS",'
        b'"airtel_money_id":"MP-forged"}}'
    )
    forged = raw[:-1] + b',"hash":"' + client.callback_hash("wrong", raw).encode() + b'"}'
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, content=forged)).status_code == 401
        assert (await http.post(url, content=raw)).status_code == 401  # no hash at all
    assert (await api.get(f"/api/v1/payments/{payment_id}")).json()["status"] == "pending"
    rows = await callback_rows(payment_id)
    assert all(r["flag"] == "unverified" for r in rows)
    # a properly signed callback of a real payment is applied without an enquiry
    real = await create(api)
    done = await wait_for_status(api, real["id"], {"succeeded"})
    assert done["provider_transaction_id"] == (await ledger(host, real["id"]))["airtel_money_id"]
