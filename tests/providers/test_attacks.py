"""Attacks with a leaked callback URL: a valid token, a lying body.

A callback URL is a bearer secret that leaks (proxies, operator portals, logs elsewhere).
With one valid token, an attacker must still not be able to move money: a callback that
does not change the status changes nothing else, an operator identifier is recorded only
from an authenticated callback or the status answer that confirmed it, a conflicting one
is flagged and never written over, and a reversal reaches the payment's own transaction.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from mmo_host import db

from tests.conftest import wait_for_status

STK_TOKEN_KIND = "stk-callback"


async def _create(api: httpx.AsyncClient, msisdn: str, amount: str = "150") -> dict[str, Any]:
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "amount": amount,
            "currency": "KES",
            "msisdn": msisdn,
            "provider": "mpesa",
            "reference": "ATK" + uuid.uuid4().hex[:6].upper(),
        },
    )
    assert response.status_code == 202, response.text
    return response.json()


def _stk_body(checkout: str, receipt: str, amount: int, phone: str) -> bytes:
    """A Daraja STK callback saying the push succeeded, with the receipt the attacker picks."""
    items = [
        {"Name": "Amount", "Value": amount},
        {"Name": "MpesaReceiptNumber", "Value": receipt},
        {"Name": "TransactionDate", "Value": 20261201103000},
        {"Name": "PhoneNumber", "Value": int(phone.lstrip("+"))},
    ]
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "29115-34620561-1",
                "CheckoutRequestID": checkout,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {"Item": items},
            }
        }
    }
    return json.dumps(body).encode()


async def _ledger(host: Any) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{host.url}/_sim/mpesa/_simulator/ledger")).json()["entries"]
    return {e["id"]: e for e in entries}


async def _flags(payment_id: str) -> list[str | None]:
    rows = await db.fetch(
        "SELECT flag FROM callbacks WHERE payment_id = $1 ORDER BY received_at",
        uuid.UUID(payment_id),
    )
    return [r["flag"] for r in rows]


async def test_a_duplicate_success_carrying_another_payments_receipt_changes_nothing(
    api, host
) -> None:
    """Seen before the fix: a forged duplicate M-Pesa success on payment A carrying
    payment B's receipt overwrote A's receipt, and reversing A reversed B."""
    a = await wait_for_status(api, (await _create(api, "+254712340101"))["id"], {"succeeded"})
    b = await wait_for_status(api, (await _create(api, "+254712340102"))["id"], {"succeeded"})
    assert a["provider_transaction_id"] and b["provider_transaction_id"]
    url = host.gateway.context("mpesa").callback_url(STK_TOKEN_KIND, a["id"])  # A's own token
    forged = _stk_body(a["provider_reference"], b["provider_transaction_id"], 150, a["msisdn"])
    async with httpx.AsyncClient() as http:
        answered = await http.post(url, content=forged)
    assert answered.status_code == 200  # the operator's expected answer: nothing to retry
    after = (await api.get(f"/api/v1/payments/{a['id']}")).json()
    assert after["provider_transaction_id"] == a["provider_transaction_id"]
    assert (after["status"], after["amount"]) == ("succeeded", "150.00")
    assert (await _flags(a["id"]))[-1] in ("duplicate", "identifier_conflict")

    reversed_ = await api.post(
        f"/api/v1/payments/{a['id']}/reversal",
        json={"reason": "Order cancelled"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert reversed_.status_code == 200, reversed_.text
    ledger = await _ledger(host)
    assert ledger[a["provider_reference"]]["status"] == "reversed"
    assert ledger[b["provider_reference"]]["status"] == "completed"  # B's customer untouched


async def test_a_valid_token_on_another_payments_callback_is_flagged_not_applied(api, host) -> None:
    """A's token with B's CheckoutRequestID and receipt on A while A is still pending: the
    confirmation asks the operator about A's own push, and B's identifiers never land on
    A (they are B's: another payment holds them)."""
    b = await wait_for_status(api, (await _create(api, "+254712340202"))["id"], {"succeeded"})
    a = await _create(api, "+254712349990")  # 9990: succeeds, never sends its callback
    url = host.gateway.context("mpesa").callback_url(STK_TOKEN_KIND, a["id"])
    # B's identifiers, A's amount and phone (else it is refused at once as a `mismatch`)
    forged = _stk_body(b["provider_reference"], b["provider_transaction_id"], 150, a["msisdn"])
    async with httpx.AsyncClient() as http:
        await asyncio.sleep(0.3)  # A's push is done at the operator
        answered = await http.post(url, content=forged)
    assert answered.status_code == 200
    after = (await api.get(f"/api/v1/payments/{a['id']}")).json()
    assert after["provider_reference"] == a["provider_reference"]
    assert after["provider_transaction_id"] != b["provider_transaction_id"]
    b_after = (await api.get(f"/api/v1/payments/{b['id']}")).json()
    assert b_after["provider_transaction_id"] == b["provider_transaction_id"]
    assert (await _flags(a["id"]))[-1] in ("identifier_conflict", "unconfirmed")


async def test_a_forged_c2b_confirmation_does_not_settle_an_open_collection(api, host) -> None:
    """A forged C2B confirmation whose BillRefNumber is an open STK collection's reference:
    Transaction Status does not know its receipt, so the collection stays open (its real
    outcome still arrives) and no payment is stored."""
    a = await _create(api, "+254712349990", amount="300")
    url = host.gateway.context("mpesa").callback_url("c2b-confirmation", segment="daraja")
    forged = {
        "TransactionType": "Pay Bill",
        "TransID": "FORGED01X",
        "TransTime": "20261201103000",
        "TransAmount": "300.00",
        "BusinessShortCode": "600984",
        "BillRefNumber": a["reference"],
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 990",
        "FirstName": "Mallory",
        "MiddleName": "",
        "LastName": "",
    }
    async with httpx.AsyncClient() as http:
        answered = await http.post(url, json=forged)
    assert answered.status_code == 200 and answered.json()["ResultCode"] == 0
    after = (await api.get(f"/api/v1/payments/{a['id']}")).json()
    assert after["provider_transaction_id"] is None and after["status"] in ("pending", "unknown")
    assert (
        await db.fetch("SELECT id FROM payments WHERE provider_transaction_id = 'FORGED01X'") == []
    )
    (row,) = await db.fetch(
        "SELECT flag FROM callbacks WHERE kind = 'c2b-confirmation' AND body LIKE $1",
        b"%FORGED01X%",
    )
    assert row["flag"] == "unconfirmed"


async def test_replaying_an_old_success_after_a_reversal_changes_nothing(api, host) -> None:
    """The operator's own success callback, captured and sent again once the payment is
    reversed: the payment stays reversed, its amounts and identifiers as they were."""
    a = await wait_for_status(api, (await _create(api, "+254712340303"))["id"], {"succeeded"})
    reversed_ = await api.post(
        f"/api/v1/payments/{a['id']}/reversal",
        json={"reason": "Order cancelled"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert reversed_.status_code == 200 and reversed_.json()["status"] == "reversed"
    (original,) = await db.fetch(
        "SELECT query, body FROM callbacks WHERE payment_id = $1 AND kind = 'stk-callback'",
        uuid.UUID(a["id"]),
    )
    query = json.loads(original["query"])
    url = f"{host.url}/api/v1/webhooks/mpesa/stk-callback"
    async with httpx.AsyncClient() as http:
        replayed = await http.post(url, params=query, content=bytes(original["body"]))
    assert replayed.status_code == 200
    after = (await api.get(f"/api/v1/payments/{a['id']}")).json()
    assert (after["status"], after["amount_reversed"]) == ("reversed", after["amount"])
    assert after["provider_transaction_id"] == a["provider_transaction_id"]
    assert (await _flags(a["id"]))[-1] == "conflict"
