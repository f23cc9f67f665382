"""Open payments caught by a crash, through the real host and each operator's simulator.

The host's steps of a send are called one by one (`payments.send_to_operator` does them in
this order), and the process "dies" between two of them: the payment is left as that step
left it, and the worker (the one a restarted host runs) must end it. For each operator:

- a crash after `prepare` and before `initiate` (Orange: the identifier is stored, no money
  was asked for; the others have no `prepare`, so nothing was sent);
- a crash after `initiate` reached the operator, before its answer was stored;
- the end of a payment the operator never heard of: `failed` with `not_received` (or sent
  again where the provider makes that safe), while one it acknowledged stays `pending`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from mmo_core.types import InitiateResult
from mmo_host import db, jobs, operator, payments
from mmo_host.records import PaymentRecord
from mmo_host.schemas import PaymentCreate
from mmo_host.worker import Worker

FINAL = {"succeeded", "failed", "expired", "reversed"}


# -- the pieces of a send, and the restarted host's worker ----------------------------------


async def stored_new(host: Any, provider: str, msisdn: str, currency: str, **extra: Any):
    """Step 1: the payment stored as `new` (the API's transaction)."""
    body = {
        "type": "collection",
        "amount": "1500",
        "currency": currency,
        "msisdn": msisdn,
        "provider": provider,
        "reference": "OPEN-" + uuid.uuid4().hex[:8],
    } | extra
    request = PaymentCreate(**body)
    accepted = payments.check_request(host.gateway, request)
    row, created = await payments.insert_new(
        host.gateway, "client-x", str(uuid.uuid4()), payments.request_hash(request), accepted
    )
    assert created
    return row


async def prepared(host: Any, row: PaymentRecord) -> PaymentRecord:
    """Step 2: `prepare`, and what it returned committed on the payment."""
    answer = await operator.ask(
        host.gateway,
        row,
        "prepare",
        expect=(InitiateResult, type(None)),
        payment=payments.to_core(row),
    )
    assert answer.ok, answer.describe()
    assert answer.value is not None
    stored = await payments.store_prepared(row, answer.value)
    assert stored is not None and stored.status == "new"
    return stored


async def initiated_unrecorded(host: Any, row: PaymentRecord) -> InitiateResult:
    """Step 3 without step 4: the operator took `initiate`, its answer was never stored."""
    answer = await operator.ask(
        host.gateway, row, "initiate", expect=InitiateResult, payment=payments.to_core(row)
    )
    assert answer.ok, answer.describe()
    return answer.value


async def current(row: PaymentRecord) -> PaymentRecord:
    found = await db.fetchrow_as(PaymentRecord, "SELECT * FROM payments WHERE id = $1", row.id)
    assert found is not None
    return found


async def restarted(host: Any, row: PaymentRecord, wanted: set[str], timeout: float = 15.0):
    """The restarted host's worker, run until the payment reaches one of `wanted`."""
    worker = Worker(host.gateway, worker_id="restarted")
    deadline = time.monotonic() + timeout
    while True:
        await worker.drain()
        now = await current(row)
        if now.status in wanted:
            return now
        if time.monotonic() > deadline:
            jobs_left = [(j.kind, j.last_error) for j in await jobs.open_jobs(row.id)]
            raise AssertionError(f"payment stayed {now.status}, wanted {wanted}: {jobs_left}")
        await asyncio.sleep(0.1)


async def ledger(host: Any, simulator: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{host.url}/_sim/{simulator}/_simulator/ledger")
    return response.json()["entries"]


async def sources(row: PaymentRecord) -> list[tuple[str, str]]:
    found = await db.fetch(
        "SELECT to_status, source FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
        row.id,
    )
    return [(r["to_status"], r["source"]) for r in found]


# -- Orange Cameroon: init (prepare) gives the payToken, pay moves the money ----------------


async def test_orange_cameroon_send_stores_the_paytoken_before_it_pays(api, host):
    created = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "amount": "1500",
            "currency": "XAF",
            "msisdn": "+237690010000",
            "provider": "orange",
            "reference": "OPEN-API",
        },
    )
    assert created.status_code == 202, created.text
    row = await db.fetchrow_as(
        PaymentRecord, "SELECT * FROM payments WHERE id = $1", uuid.UUID(created.json()["id"])
    )
    assert row is not None
    assert row.provider_data["pay_token"] == row.provider_reference
    assert row.provider_data["order_id"]  # the pay's answer added to what prepare stored


async def test_orange_cameroon_crash_after_prepare_fails_not_received(api, host):
    row = await prepared(host, await stored_new(host, "orange", "+237690010000", "XAF"))
    pay_token = row.provider_data["pay_token"]
    assert pay_token.startswith("MP") and row.provider_reference == pay_token
    done = await restarted(host, row, FINAL)
    # Orange holds the payToken as INITIATED (no pay came): it never received the payment
    assert done.status == "failed" and done.failure_code == "not_received"
    assert done.provider_reference == pay_token
    assert pay_token not in {e["id"] for e in await ledger(host, "orange")}
    assert await sources(row) == [("new", "api"), ("unknown", "worker"), ("failed", "poll")]


async def test_orange_cameroon_crash_after_pay_is_found_by_its_paytoken(api, host):
    row = await prepared(host, await stored_new(host, "orange", "+237690010000", "XAF"))
    ack = await initiated_unrecorded(host, row)
    assert ack.provider_reference == row.provider_reference
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    [entry] = [e for e in await ledger(host, "orange") if e["id"] == row.provider_reference]
    assert entry["status"] == "SUCCESSFULL"


async def test_orange_cameroon_pay_sent_again_is_not_a_refusal(api, host):
    """A queued send of a payment whose first pay got through (its answer lost): Orange
    refuses a second pay of the payToken, which must not fail a paid payment."""
    row = await prepared(host, await stored_new(host, "orange", "+237690010000", "XAF"))
    await initiated_unrecorded(host, row)
    again = await payments.send_to_operator(host.gateway, await current(row))
    # `unknown` (found out by status), or already settled by the first pay's notification
    assert again.status in ("unknown", "succeeded")
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    entries = [e for e in await ledger(host, "orange") if e["id"] == row.provider_reference]
    assert len(entries) == 1


async def test_orange_cashin_crash_after_prepare_fails_not_received(api, host):
    new = await stored_new(host, "orange", "+237690010000", "XAF", type="disbursement")
    row = await prepared(host, new)
    assert row.provider_data["kind"] == "cashin"
    done = await restarted(host, row, FINAL)
    assert done.status == "failed" and done.failure_code == "not_received"


async def test_orange_cameroon_unknown_paytoken_fails_an_unknown_payment_only(api, host):
    """404 "Transaction introuvable" is Orange's word for a payToken it never issued: an
    `unknown` payment ends `failed` (`not_received`); a `pending` one Orange acknowledged
    is never failed that way."""
    unknown = await stored_new(host, "orange", "+237690010000", "XAF")
    pending = await stored_new(host, "orange", "+237690010000", "XAF")
    for row, status in ((unknown, "unknown"), (pending, "pending")):
        await payments.apply_transition(
            host.gateway,
            row.id,
            status,
            source="test",
            provider_reference="MP" + uuid.uuid4().hex[:26].upper(),
            provider_data={"family": "cameroon", "kind": "mp"},
        )
    done = await restarted(host, unknown, FINAL)
    assert done.status == "failed" and done.failure_code == "not_received"
    await Worker(host.gateway, worker_id="restarted").drain()
    [job] = await jobs.open_jobs(pending.id)
    assert job.kind == "poll" and "unknown_to_operator" in (job.last_error or "")
    assert (await current(pending)).status == "pending"


# -- Orange WebPay: webpayment (prepare) gives the pay_token and the payer's page -----------


async def test_orange_webpay_crash_after_prepare_agrees_with_orange(api, host):
    row = await prepared(host, await stored_new(host, "orange", "+2250701234567", "XOF"))
    assert row.provider_data["pay_token"] and row.provider_data["payment_url"]
    done = await restarted(host, row, FINAL)
    # the sandbox pays by itself (auto-pay): what Orange holds is what the gateway records
    [entry] = [e for e in await ledger(host, "orange") if e["id"] == row.provider_data["pay_token"]]
    assert entry["status"] == "SUCCESS" and done.status == "succeeded"


async def test_orange_webpay_payment_from_the_api_has_its_page(api, host):
    created = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "amount": "1500",
            "currency": "XOF",
            "msisdn": "+2250701234567",
            "provider": "orange",
            "reference": "OPEN-WEB",
        },
    )
    body = created.json()
    assert body["next_action"]["type"] == "redirect"
    row = await db.fetchrow_as(
        PaymentRecord, "SELECT * FROM payments WHERE id = $1", uuid.UUID(body["id"])
    )
    assert row is not None and body["next_action"]["url"] == row.provider_data["payment_url"]


async def test_orange_payment_without_an_identifier_cannot_be_asked(api, host):
    """A payment with no payToken (sent before `prepare` stored one) cannot be asked:
    the answer says so (`cannot_ask`) for a person, it is never read as pending."""
    row = await stored_new(host, "orange", "+237690010000", "XAF")
    await payments.apply_transition(host.gateway, row.id, "unknown", source="test")
    answer = await operator.ask(
        host.gateway, row, "status", payment=payments.to_core(await current(row))
    )
    assert answer.kind == "declined" and answer.reason == "cannot_ask"
    assert "payToken" in answer.describe()


# -- Orange Senegal (Sonatel): the transactionId is the answer of the money-moving call ----


async def sonatel_setup(host: Any) -> None:
    provider = host.gateway.registry.providers["orange"]
    await provider.call("setup", context=host.gateway.context("orange"))


async def test_orange_senegal_crash_after_initiate_is_settled_by_its_callback(api, host):
    """No transactionId stored: the merchant callback, matched by our reference (the
    payment id), still ends the payment."""
    await sonatel_setup(host)
    row = await stored_new(host, "orange", "+221771234567", "XOF")
    ack = await initiated_unrecorded(host, row)
    for _ in range(200):  # no worker: the callback alone
        done = await current(row)
        if done.status in FINAL:
            break
        await asyncio.sleep(0.05)
    assert done.status == "succeeded" and done.provider_reference == ack.provider_reference


async def test_orange_senegal_without_transaction_id_cannot_be_asked(api, host):
    row = await stored_new(host, "orange", "+221771234567", "XOF")
    await restarted(host, row, {"unknown"})
    answer = await operator.ask(
        host.gateway, row, "status", payment=payments.to_core(await current(row))
    )
    assert answer.kind == "declined" and answer.reason == "cannot_ask"


# -- MTN MoMo: X-Reference-Id is the payment id ---------------------------------------------


async def test_mtn_crash_before_initiate_is_sent_by_the_restarted_host(api, host):
    row = await stored_new(host, "mtn_momo", "+46701234567", "EUR")
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded" and done.provider_reference == str(row.id)
    entries = [e for e in await ledger(host, "mtn_momo") if e["id"] == str(row.id)]
    assert len(entries) == 1


async def test_mtn_crash_after_initiate_is_found_by_the_payment_id(api, host):
    row = await stored_new(host, "mtn_momo", "+46701234567", "EUR")
    await initiated_unrecorded(host, row)
    assert (await current(row)).provider_reference is None  # nothing stored
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    entries = [e for e in await ledger(host, "mtn_momo") if e["id"] == str(row.id)]
    assert len(entries) == 1  # found, never paid twice


async def test_mtn_unknown_payment_never_received_is_sent_once(api, host):
    row = await stored_new(host, "mtn_momo", "+46701234567", "EUR")
    await payments.apply_transition(host.gateway, row.id, "unknown", source="test")
    answer = await operator.ask(
        host.gateway, row, "status", payment=payments.to_core(await current(row))
    )
    assert answer.kind == "unknown_to_operator"  # MTN's 404 on a reference it never had
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    entries = [e for e in await ledger(host, "mtn_momo") if e["id"] == str(row.id)]
    assert len(entries) == 1


# -- Airtel: the transaction id is derived from the payment id ------------------------------


async def test_airtel_crash_before_initiate_is_sent_by_the_restarted_host(api, host):
    row = await stored_new(host, "airtel", "+256752605678", "UGX")
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    assert [e["id"] for e in await ledger(host, "airtel")].count(str(row.id)) == 1


async def test_airtel_crash_after_initiate_is_found_by_its_transaction_id(api, host):
    row = await stored_new(host, "airtel", "+256752605678", "UGX")
    await initiated_unrecorded(host, row)
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    assert [e["id"] for e in await ledger(host, "airtel")].count(str(row.id)) == 1


async def test_airtel_not_found_fails_unknown_only_and_keeps_pending(api, host):
    unknown = await stored_new(host, "airtel", "+256752605678", "UGX")
    await payments.apply_transition(host.gateway, unknown.id, "unknown", source="test")
    answer = await operator.ask(
        host.gateway, unknown, "status", payment=payments.to_core(await current(unknown))
    )
    assert answer.kind == "unknown_to_operator"
    pending = await stored_new(host, "airtel", "+256752605678", "UGX")
    await payments.apply_transition(host.gateway, pending.id, "pending", source="test")
    await Worker(host.gateway, worker_id="restarted").drain()
    # the unknown one was sent again (Airtel refuses a second transaction id): one payment
    assert (await restarted(host, unknown, FINAL)).status == "succeeded"
    assert [e["id"] for e in await ledger(host, "airtel")].count(str(unknown.id)) == 1
    # the acknowledged one is never failed by a not-found: still pending, still polled
    assert (await current(pending)).status == "pending"
    assert [j.kind for j in await jobs.open_jobs(pending.id)] == ["poll"]


# -- M-Pesa: B2C by its OriginatorConversationID (the payment id), STK by CheckoutRequestID --


async def test_mpesa_b2c_crash_before_initiate_fails_not_received(api, host):
    row = await stored_new(host, "mpesa", "+254722000123", "KES", type="disbursement", amount="500")
    done = await restarted(host, row, FINAL)
    # Transaction Status by OriginatorConversationID answered R000002: never received
    assert done.status == "failed" and done.failure_code == "not_received"
    assert str(row.id) not in {e["id"] for e in await ledger(host, "mpesa")}


async def test_mpesa_b2c_status_result_never_coming_keeps_it_unknown(api, host):
    """A Transaction Status query whose Result callback never comes told nothing: the
    payment stays `unknown` (the chaos test saw it read as `pending`, which no longer
    checks for "never received"), and is found never received once a Result comes."""
    faults = f"{host.url}/_sim/mpesa/_simulator/faults"
    row = await stored_new(host, "mpesa", "+254722000123", "KES", type="disbursement", amount="500")
    async with httpx.AsyncClient() as client:
        assert (await client.post(faults, json={"drop_callback_rate": 1.0})).status_code < 300
        try:
            await payments.apply_transition(host.gateway, row.id, "unknown", source="test")
            worker = Worker(host.gateway, worker_id="restarted")
            for _ in range(2):  # each poll waits its Result for MMO_MPESA_RESULT_WAIT (4 s)
                await db.fetch("UPDATE jobs SET run_at = now() WHERE payment_id = $1", row.id)
                await worker.run_once()
                assert (await current(row)).status == "unknown"
        finally:
            await client.post(faults, json={})
    done = await restarted(host, row, FINAL)
    assert done.status == "failed" and done.failure_code == "not_received"
    assert ("pending", "poll") not in await sources(row)


async def test_mpesa_b2c_crash_after_initiate_is_found_by_its_originator_id(api, host):
    row = await stored_new(host, "mpesa", "+254722000123", "KES", type="disbursement", amount="500")
    await initiated_unrecorded(host, row)
    done = await restarted(host, row, FINAL)
    assert done.status == "succeeded"
    [entry] = [e for e in await ledger(host, "mpesa") if e["id"] == str(row.id)]
    assert entry["status"] == "completed" and entry["receipt"] == done.provider_transaction_id


async def test_mpesa_stk_crash_after_initiate_is_settled_by_its_callback(api, host):
    row = await stored_new(host, "mpesa", "+254712345678", "KES", amount="150")
    ack = await initiated_unrecorded(host, row)
    done = await restarted(host, row, FINAL)
    # the callback's URL names the payment; its CheckoutRequestID is confirmed by STK Query
    assert done.status == "succeeded" and done.provider_reference == ack.provider_reference


async def test_mpesa_stk_without_checkout_request_id_cannot_be_asked(api, host):
    row = await stored_new(host, "mpesa", "+254712345678", "KES", amount="150")
    await restarted(host, row, {"unknown"})
    await Worker(host.gateway, worker_id="restarted").drain()
    # never read as pending, never failed: the poll says it cannot ask (for a person)
    assert (await current(row)).status == "unknown"
    answer = await operator.ask(
        host.gateway, row, "status", payment=payments.to_core(await current(row))
    )
    assert answer.kind == "declined" and answer.reason == "cannot_ask"
    assert "CheckoutRequestID" in answer.describe()
    [job] = await jobs.open_jobs(row.id)
    assert job.kind == "poll" and "CheckoutRequestID" in (job.last_error or "")
