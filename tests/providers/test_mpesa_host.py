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
    assert done["failure"]["provider_code"] == code
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["result_code"] == code


async def test_a_long_reference_goes_through_with_a_derived_account_reference(api, host):
    """The orchestrator's reference (up to 128 characters) is never refused for M-Pesa's
    12-character AccountReference: the plugin derives one, the same every time, and the
    payment keeps the orchestrator's reference (this replaces a test that expected 422)."""
    from mmo_mpesa.plugin import account_reference

    reference = "ORDER-2026-12-01-CUSTOMER-0042-BRAND-A-KE"  # 40 characters
    created = await _create(api, "+254712345678", reference=reference)
    done = await wait_for_status(api, created["id"], {"succeeded"})
    assert done["reference"] == reference
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    sent = entry["reference"]
    assert len(sent) <= 12 and sent.isalnum()
    payment = Payment(
        id=done["id"],
        type="collection",
        amount=Decimal("150"),
        currency="KES",
        msisdn=done["msisdn"],
        reference=reference,
        country="KE",
    )
    assert sent == account_reference(payment) == account_reference(payment)
    assert account_reference(msgspec.structs.replace(payment, reference="INV42")) == "INV42"


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
    assert done["failure"]["provider_code"] == code


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
        "reverse",
        context=context,
        payment=payment,
        amount=None,
        reason="Duplicate payment",
        reversal_id=str(uuid.uuid4()),
    )
    assert report.status == "reversed"
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["status"] == "reversed"
    again = msgspec.structs.replace(payment)
    with pytest.raises(Exception) as declined:
        await provider.call(
            "reverse",
            context=context,
            payment=again,
            amount=None,
            reason="x",
            reversal_id=str(uuid.uuid4()),
        )
    assert getattr(declined.value, "provider_code", None) == "R000001"

    balances = await provider.call("balance", context=context)
    names = {b.account: b for b in balances.balances}
    assert names["Utility Account"].currency == "KES"
    assert names["Utility Account"].available > 0


# -- C2B: payments the gateway did not start ------------------------------------------------


async def _register_c2b(host) -> None:
    provider = host.gateway.registry.get("mpesa")
    report = await provider.call("setup", context=host.gateway.context("mpesa"))
    assert "600984" in report.lines[0]


async def _simulate_c2b(api, host, bill_ref: str, amount: int, msisdn: int = 254708374149):
    context = host.gateway.context("mpesa")
    token = await api.get(
        f"{host.url}/_sim/mpesa/oauth/v1/generate?grant_type=client_credentials",
        auth=(context.settings.consumer_key, context.settings.consumer_secret),
    )
    done = await api.post(
        f"{host.url}/_sim/mpesa/mpesa/c2b/v1/simulate",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        json={
            "ShortCode": 600984,
            "CommandID": "CustomerPayBillOnline",
            "Amount": amount,
            "Msisdn": msisdn,
            "BillRefNumber": bill_ref,
        },
    )
    assert done.status_code == 200 and done.json()["ResponseCode"] == "0", done.text


async def _c2b_callbacks(bill_ref: str, timeout: float = 10.0) -> list[dict]:
    import asyncio

    from mmo_host import db

    for _ in range(int(timeout / 0.05)):
        rows = await db.fetch(
            "SELECT * FROM callbacks WHERE provider = 'mpesa' AND kind = 'c2b-confirmation' "
            "AND processed AND convert_from(body, 'UTF8') LIKE $1",
            f'%"{bill_ref}"%',
        )
        if rows:
            return [dict(r) for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no C2B confirmation for {bill_ref}")


async def test_c2b_confirmation_settles_the_open_payment_with_its_account_number(api, host):
    await _register_c2b(host)
    # a collection whose STK prompt goes unanswered (no callback): still open
    created = await _create(api, "+254712349990", amount="250")
    await wait_for_status(api, created["id"], {"pending"})
    # the customer pays the paybill instead, typing the payment's reference as account
    await _simulate_c2b(api, host, created["reference"], 250)
    (callback,) = await _c2b_callbacks(created["reference"])
    assert callback["flag"] == "matched"
    assert str(callback["payment_id"]) == created["id"]
    done = await wait_for_status(api, created["id"], {"succeeded"})
    assert done["origin"] == "api"
    c2b_receipt = done["provider_transaction_id"]
    entry = next(e for e in await _ledger(api, host) if e["id"] == c2b_receipt)
    assert (entry["product"], entry["status"]) == ("c2b", "completed")
    assert entry["reference"] == created["reference"]


async def test_c2b_confirmation_without_an_open_payment_is_stored_once(api, host):
    from mmo_host import db

    await _register_c2b(host)
    bill_ref = "WALKIN" + uuid.uuid4().hex[:6].upper()
    await _simulate_c2b(api, host, bill_ref, 75)
    (callback,) = await _c2b_callbacks(bill_ref)
    assert callback["flag"] == "inbound"
    listed = await api.get("/api/v1/payments", params={"reference": bill_ref})
    (payment,) = listed.json()["data"]
    assert payment["origin"] == "c2b"
    assert (payment["type"], payment["status"], payment["amount"]) == (
        "collection",
        "succeeded",
        "75.00",
    )
    assert payment["id"] == str(callback["payment_id"])
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1 ORDER BY created_at",
        callback["payment_id"],
    )
    assert [e["type"] for e in events] == ["payment.created", "payment.succeeded"]

    # Daraja delivers the same confirmation again: still one payment
    replayed = await api.post(
        f"{host.url}{callback['path']}",
        params=db.loads(callback["query"]),
        content=bytes(callback["body"]),
        headers={"content-type": "application/json"},
    )
    assert replayed.status_code == 200 and replayed.json()["ResultCode"] == 0
    flags = [c["flag"] for c in await _c2b_callbacks(bill_ref) if c["flag"]]
    assert sorted(flags) == ["duplicate", "inbound"]
    again = await api.get("/api/v1/payments", params={"reference": bill_ref})
    assert len(again.json()["data"]) == 1


async def test_c2b_confirmation_with_a_wrong_token_changes_nothing(api, host):
    from mmo_host import db

    forged = await api.post(
        f"{host.url}/api/v1/webhooks/daraja/c2b-confirmation",
        params={"token": "forged"},
        json={
            "TransactionType": "Pay Bill",
            "TransID": "FORGED0001",
            "TransTime": "20261126120000",
            "TransAmount": "1000.00",
            "BusinessShortCode": "600984",
            "BillRefNumber": "FORGED",
            "MSISDN": "254708374149",
        },
    )
    assert forged.status_code == 401
    assert (
        await db.fetch("SELECT id FROM payments WHERE provider_transaction_id = 'FORGED0001'") == []
    )


async def test_a_reversal_result_that_comes_late_is_applied_by_the_worker(api, host):
    """reverse waits `result_wait` for Daraja's Result; when it comes later, the worker's
    reversal job finds it (context.results) and ends the reversal."""
    import asyncio

    from mmo_host import db
    from mmo_host.worker import Worker

    created = await _create(api, "+254712345678", amount="120")
    done = await wait_for_status(api, created["id"], {"succeeded"})
    context = host.gateway.context("mpesa")
    settings = context.settings
    faults = f"{host.url}/_sim/mpesa/_simulator/faults"
    context.settings = msgspec.structs.replace(settings, result_wait=0.1)
    try:
        assert (await api.post(faults, json={"callback_delay_ms": 800})).status_code < 300
        response = await api.post(
            f"/api/v1/payments/{done['id']}/reversal",
            json={"reason": "Order cancelled", "amount": "20"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 202, response.text
    finally:
        context.settings = settings
        await api.post(faults, json={})
    (pending,) = (await api.get(f"/api/v1/payments/{done['id']}/reversals")).json()["data"]
    assert pending["status"] == "pending"
    await asyncio.sleep(1.2)  # the Result arrives at reversal-result meanwhile
    await db.fetch("UPDATE jobs SET run_at = now() WHERE kind = 'reversal'")
    await Worker(host.gateway, worker_id="mpesa-reversals").drain()
    (reversal,) = (await api.get(f"/api/v1/payments/{done['id']}/reversals")).json()["data"]
    assert reversal["status"] == "reversed"
    payment = (await api.get(f"/api/v1/payments/{done['id']}")).json()
    assert (payment["status"], payment["amount_reversed"]) == ("succeeded", "20.00")
    entry = next(e for e in await _ledger(api, host) if e["id"] == done["provider_reference"])
    assert entry["status"] == "reversed"
