"""M-Pesa through the real host: payments created with the API end through Daraja-shaped
callbacks from the mounted simulator, confirmed with STK query / Transaction Status."""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import pytest
from mmo_core.types import Payment

from tests.conftest import wait_for_status


async def _create(api, msisdn: str, *, type: str = "collection", amount: str = "150", **extra):
    body = {
        "type": type,
        "amount": amount,
        "currency": "KES",
        "msisdn": msisdn,
        "provider": "mpesa",
        "reference": "INV" + uuid.uuid4().hex[:6].upper(),
        **extra,
    }
    response = await api.post(
        "/api/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def _ledger(api, host) -> list[dict]:
    response = await api.get(f"{host.url}/_sim/mpesa/_simulator/ledger")
    assert response.status_code == 200
    return response.json()["entries"]


async def test_stk_collection_succeeds_and_matches_the_ledger(api, host):
    created = await _create(api, "+254712345678")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == "succeeded", done
    assert done["msisdn"] == "+254712345678"
    assert done["provider_reference"].startswith("ws_CO_")
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["status"] == "completed"
    assert entry["amount"] == 150
    assert entry["msisdn"] == "254712345678"
    assert entry["receipt"] == done["provider_transaction_id"]


@pytest.mark.parametrize(
    ("last4", "status", "code"),
    [
        ("0001", "failed", "1"),
        ("1032", "failed", "1032"),
        ("1037", "expired", "1037"),
        ("2001", "failed", "2001"),
    ],
)
async def test_stk_test_numbers_end_with_daraja_codes(api, host, last4, status, code):
    created = await _create(api, f"+25471234{last4}")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == status
    assert done["failure"]["code"] == code
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["result_code"] == code


async def test_long_reference_is_refused_before_any_call(api, host):
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "10",
            "currency": "KES",
            "msisdn": "+254712345678",
            "provider": "mpesa",
            "reference": "A-REFERENCE-TOO-LONG",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.text
    assert "AccountReference" in response.text


async def test_b2c_disbursement_succeeds_through_result_and_transaction_status(api, host):
    created = await _create(api, "+254722000123", type="disbursement", amount="500")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == "succeeded", done
    entry = next(e for e in await _ledger(api, host) if e["id"] == created["id"])
    assert entry["product"] == "b2c"
    assert entry["status"] == "completed"
    assert entry["amount"] == 500
    assert done["provider_transaction_id"] == entry["receipt"]


@pytest.mark.parametrize(
    ("last4", "status", "code"),
    [("0001", "failed", "1"), ("2001", "failed", "2001"), ("1037", "expired", "QueueTimeOut")],
)
async def test_b2c_test_numbers(api, host, last4, status, code):
    created = await _create(api, f"+25472200{last4}", type="disbursement", amount="100")
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == status, done
    assert done["failure"]["code"] == code


async def test_b2c_below_ten_shillings_is_refused(api, host):
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "disbursement",
            "amount": "9",
            "currency": "KES",
            "msisdn": "+254712345678",
            "provider": "mpesa",
            "reference": "B2C-SMALL",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.text


async def test_reversal_and_balance_through_the_hosts_provider(api, host):
    created = await _create(api, "+254712399888", amount="250")
    done = await wait_for_status(api, created["id"], {"succeeded"})
    provider = host.gateway.registry.get("mpesa")
    context = host.gateway.context("mpesa")
    payment = Payment(
        id=done["id"],
        type="collection",
        amount=Decimal("250"),
        currency="KES",
        msisdn=done["msisdn"],
        reference=done["reference"],
        country="KE",
        status="succeeded",
        provider_reference=done["provider_reference"],
        provider_transaction_id=done["provider_transaction_id"],
    )
    report = await provider.call(
        "reverse", context=context, payment=payment, amount=None, reason="Duplicate payment"
    )
    assert report.status == "reversed"
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["status"] == "reversed"
    again = msgspec.structs.replace(payment)
    with pytest.raises(Exception) as declined:
        await provider.call("reverse", context=context, payment=again, amount=None, reason="x")
    assert getattr(declined.value, "provider_code", None) == "R000001"

    balances = await provider.call("balance", context=context)
    names = {b.account: b for b in balances.balances}
    assert names["Utility Account"].currency == "KES"
    assert names["Utility Account"].available > 0
