"""Reversals, operator balances and account lookups, through the real host and plugins."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderUnavailable,
)
from mmo_core.types import AccountInfo, Balance, BalanceReport, Failure, StatusReport
from mmo_host import db, operator, payments

from tests import fake_provider
from tests.conftest import OTHER_KEY, wait_for_status


async def create(api, *, provider="fake", amount="1000", msisdn="+255712345678", **extra):
    currency = {"fake": "TZS", "example": "KES", "mpesa": "KES", "airtel": "UGX"}[provider]
    body = {
        "type": "collection",
        "amount": amount,
        "currency": currency,
        "msisdn": msisdn,
        "provider": provider,
        "reference": "OPS" + uuid.uuid4().hex[:6].upper(),
        **extra,
    }
    response = await api.post(
        "/api/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    return response.json()


# the session's gateway, for helpers that move a payment as a callback would
GATEWAY: list[Any] = []


@pytest.fixture(autouse=True)
def _gateway(host):
    GATEWAY[:] = [host.gateway]


async def succeeded_fake(api, amount="1000") -> dict[str, Any]:
    payment = await create(api, amount=amount)
    fake_provider.OPERATOR[payment["provider_reference"]]["status"] = "succeeded"
    await payments.apply_transition(
        GATEWAY[0], uuid.UUID(payment["id"]), "succeeded", source="callback"
    )
    return (await api.get(f"/api/v1/payments/{payment['id']}")).json()


async def reverse(api, payment_id, key=None, **body):
    body.setdefault("reason", "customer asked")
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/api/v1/payments/{payment_id}/reversal", json=body, headers=headers)


async def transitions(payment_id: str) -> list[Any]:
    return await db.fetch(
        "SELECT * FROM payment_transitions WHERE payment_id = $1 ORDER BY created_at",
        uuid.UUID(payment_id),
    )


async def claim(payment_id: str) -> dict[str, Any]:
    """The payment's latest reversal, with its state."""
    row = await db.fetchrow(
        "SELECT * FROM reversals WHERE payment_id = $1 ORDER BY created_at DESC LIMIT 1",
        uuid.UUID(payment_id),
    )
    return {**dict(row), "state": row["status"], "provider_data": json.loads(row["provider_data"])}


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]


@pytest.fixture
def operator_answers(monkeypatch):
    """Make `operator.call` answer (or raise) what a test says, counting the calls."""
    calls: list[dict[str, Any]] = []
    answer: dict[str, Any] = {}
    real = operator.call

    async def scripted(gateway, row, hook, **kwargs):
        if hook in ("prepare", "initiate", "status"):  # payments are made and confirmed for real
            return await real(gateway, row, hook, **kwargs)
        calls.append({"hook": hook, **kwargs})
        if "value" not in answer:
            return await real(gateway, row, hook, **kwargs)
        value = answer["value"]
        if isinstance(value, BaseException):
            raise value
        return value

    monkeypatch.setattr(operator, "call", scripted)
    return answer, calls


# -- reversal: the fake provider -------------------------------------------------------------


async def test_full_reversal(api):
    payment = await succeeded_fake(api)
    response = await reverse(api, payment["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "reversed" and body["id"] == payment["id"]
    assert body["amount"] == "1000.00" and body["provider_transaction_id"] is None
    assert "reverse" in fake_provider.CALLS
    last = (await transitions(payment["id"]))[-1]
    assert (last["from_status"], last["to_status"], last["source"]) == (
        "succeeded",
        "reversed",
        "api",
    )
    detail = json.loads(last["detail"])
    assert detail["amount"] == "1000.00" and detail["partial"] is False
    assert body["amount_reversed"] == "1000.00"
    assert detail["reason"] == "customer asked"
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1", uuid.UUID(payment["id"])
    )
    assert "payment.reversed" in [e["type"] for e in events]
    assert (await claim(payment["id"]))["state"] == "reversed"

    # once reversed, never again
    error(await reverse(api, payment["id"]), 409, "already_reversed")


async def test_partial_reversals_until_nothing_is_left(api, operator_answers):
    _, calls = operator_answers
    payment = await succeeded_fake(api)
    response = await reverse(api, payment["id"], amount="250.50")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["amount_reversed"]) == ("succeeded", "250.50")
    assert calls[-1]["amount"] == Decimal("250.50")
    assert calls[-1]["reason"] == "customer asked"
    assert calls[-1]["payment"].id == payment["id"]
    first_id = calls[-1]["reversal_id"]
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1 ORDER BY created_at",
        uuid.UUID(payment["id"]),
    )
    assert events[-1]["type"] == "payment.partially_reversed"

    # more than is left is refused; then a second part, then the rest (no amount)
    error(await reverse(api, payment["id"], amount="750"), 422, "amount_too_large")
    second = await reverse(api, payment["id"], amount="700")
    assert second.json()["amount_reversed"] == "950.50"
    assert calls[-1]["reversal_id"] != first_id
    rest = await reverse(api, payment["id"])
    assert rest.status_code == 200
    assert (rest.json()["status"], rest.json()["amount_reversed"]) == ("reversed", "1000.00")
    assert calls[-1]["amount"] == Decimal("49.50")  # the rest, stated explicitly
    detail = json.loads((await transitions(payment["id"]))[-1]["detail"])
    assert detail["amount"] == "49.50" and detail["partial"] is True
    listed = (await api.get(f"/api/v1/payments/{payment['id']}/reversals")).json()["data"]
    assert [(r["amount"], r["status"]) for r in listed] == [
        ("250.50", "reversed"),
        ("700.00", "reversed"),
        ("49.50", "reversed"),
    ]
    assert listed[0]["id"] == first_id
    error(await reverse(api, payment["id"], amount="1"), 409, "already_reversed")


async def test_amount_equal_to_the_payment_is_allowed(api):
    payment = await succeeded_fake(api)
    response = await reverse(api, payment["id"], amount="1000")
    assert response.status_code == 200 and response.json()["status"] == "reversed"


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        ("1000.01", 422, "amount_too_large"),
        ("5000", 422, "amount_too_large"),
        ("10.123", 422, "invalid_amount"),  # TZS has 2 decimals
        ("0", 422, "invalid_amount"),
        ("-5", 400, "invalid_request"),
        ("abc", 400, "invalid_request"),
        ("", 400, "invalid_request"),
    ],
)
async def test_bad_amounts(api, amount, status, code):
    payment = await succeeded_fake(api)
    error(await reverse(api, payment["id"], amount=amount), status, code)
    assert "reverse" not in fake_provider.CALLS
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"{}",  # no reason
        b'{"reason": ""}',
        b'{"reason": "x", "amount": 100}',  # a number, not a string
        b'{"reason": "x", "extra": 1}',
        b"[]",
    ],
)
async def test_malformed_bodies(api, content):
    payment = await succeeded_fake(api)
    response = await api.post(
        f"/api/v1/payments/{payment['id']}/reversal",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    error(response, 400, "invalid_request")


async def test_not_found_and_not_yours(api, host):
    error(await reverse(api, str(uuid.uuid4())), 404, "not_found")
    error(await reverse(api, "not-a-uuid"), 404, "not_found")
    payment = await succeeded_fake(api)
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    async with httpx.AsyncClient(base_url=host.url, headers=other) as client:
        error(await reverse(client, payment["id"]), 404, "not_found")
    async with httpx.AsyncClient(base_url=host.url) as client:
        response = await reverse(client, payment["id"])
        error(response, 401, "unauthorized")
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


@pytest.mark.parametrize("status", ["pending", "failed", "unknown"])
async def test_only_a_succeeded_payment_is_reversed(api, status):
    payment = await create(api)
    if status != "pending":
        await payments.apply_transition(
            GATEWAY[0], uuid.UUID(payment["id"]), status, source="callback"
        )
    message = error(await reverse(api, payment["id"]), 409, "payment_not_succeeded")["message"]
    assert status in message
    assert "reverse" not in fake_provider.CALLS


async def test_declined_payment_cannot_be_reversed(api):
    payment = await create(api, msisdn="+255712340001")
    assert payment["status"] == "failed"
    error(await reverse(api, payment["id"]), 409, "payment_not_succeeded")


async def test_provider_that_does_not_declare_reversal(api, host, monkeypatch):
    payment = await succeeded_fake(api)
    provider = host.gateway.registry.get("fake")
    declaration = msgspec.structs.replace(provider.declaration, operations=("collection",))
    monkeypatch.setattr(provider, "declaration", declaration)
    error(await reverse(api, payment["id"]), 422, "not_supported")
    assert "reverse" not in fake_provider.CALLS


async def test_pending_answer_leaves_the_payment_until_the_callback(api, host, operator_answers):
    answer, _ = operator_answers
    answer["value"] = StatusReport(status="pending", provider_reference="REV-1")
    payment = await succeeded_fake(api)
    key = str(uuid.uuid4())
    response = await reverse(api, payment["id"], key=key)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "succeeded"
    assert (await claim(payment["id"]))["state"] == "pending"

    # a second reversal is refused while the first is pending; the same request replays
    error(await reverse(api, payment["id"]), 409, "reversal_in_progress")
    error(await reverse(api, payment["id"], key=str(uuid.uuid4())), 409, "reversal_in_progress")
    replay = await reverse(api, payment["id"], key=key)
    assert replay.status_code == 202 and replay.json()["status"] == "succeeded"
    error(await reverse(api, payment["id"], key=key, reason="other"), 409, "idempotency_key_reused")

    # the operator's callback finishes it (confirmed with the status API)
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "reversed"
    url = host.gateway.context("fake").callback_url("notify")
    async with httpx.AsyncClient() as http:
        answered = await http.post(url, content=json.dumps({"ref": ref, "status": "reversed"}))
    assert answered.status_code == 200
    done = await wait_for_status(api, payment["id"], {"reversed"})
    assert done["status"] == "reversed"
    replay = await reverse(api, payment["id"], key=key)  # the reversal is now done
    assert replay.status_code == 200 and replay.json()["status"] == "reversed"
    assert (await claim(payment["id"]))["state"] == "reversed"
    error(await reverse(api, payment["id"]), 409, "already_reversed")


async def test_idempotent_replay_of_a_reversal(api):
    payment = await succeeded_fake(api)
    key = str(uuid.uuid4())
    first = await reverse(api, payment["id"], key=key, amount="100")
    assert first.status_code == 200
    again = await reverse(api, payment["id"], key=key, amount="100")
    assert again.status_code == 200 and again.json() == first.json()
    assert fake_provider.CALLS.count("reverse") == 1
    error(await reverse(api, payment["id"], key=key, amount="200"), 409, "idempotency_key_reused")
    rest = await reverse(api, payment["id"], key=str(uuid.uuid4()))
    assert rest.status_code == 200 and rest.json()["status"] == "reversed"
    assert fake_provider.CALLS.count("reverse") == 2
    error(await reverse(api, payment["id"], key=str(uuid.uuid4())), 409, "already_reversed")
    response = await reverse(api, payment["id"], key="k" * 256)
    error(response, 400, "idempotency_key_required")


@pytest.mark.parametrize(
    ("raised", "status", "code", "state"),
    [
        (OperatorDeclined("no", provider="fake", provider_code="R1"), 402, "declined", "failed"),
        (InvalidRequest("no receipt", provider="fake"), 422, "invalid_request", "failed"),
        (ProviderUnavailable("down", provider="fake"), 503, "provider_unavailable", "failed"),
        (operator.BreakerOpen("fake"), 503, "provider_unavailable", "failed"),
        (OutcomeUnknown("read timeout", provider="fake"), 504, "outcome_unknown", "unknown"),
        (TimeoutError(), 504, "outcome_unknown", "unknown"),
        (RuntimeError("bug"), 502, "provider_error", "unknown"),
        (
            StatusReport(status="failed", failure=Failure("R2", "refused")),
            402,
            "declined",
            "failed",
        ),
        (StatusReport(status="expired"), 402, "declined", "failed"),
        (StatusReport(status="succeeded"), 502, "provider_error", "unknown"),
        (None, 502, "provider_error", "unknown"),
    ],
)
async def test_operator_errors(api, operator_answers, raised, status, code, state):
    answer, _ = operator_answers
    answer["value"] = raised
    payment = await succeeded_fake(api)
    key = str(uuid.uuid4())
    error(await reverse(api, payment["id"], key=key), status, code)
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"
    assert (await claim(payment["id"]))["state"] == state
    answer.pop("value")  # the real provider from now on
    if state == "failed":
        # known not to have taken effect: the same request may be sent again
        again = await reverse(api, payment["id"], key=key)
        assert again.status_code == 200 and again.json()["status"] == "reversed"
    else:
        # it may have taken effect: never sent again blindly
        error(await reverse(api, payment["id"], key=key), 409, "reversal_outcome_unknown")
        error(await reverse(api, payment["id"]), 409, "reversal_in_progress")
        assert "reverse" not in fake_provider.CALLS


async def test_request_in_progress(api):
    payment = await succeeded_fake(api)
    key = str(uuid.uuid4())
    body = {"reason": "customer asked"}
    from mmo_host.controllers.operations import ReversalCreate, _request_hash

    await db.fetch(
        """INSERT INTO reversals (id, payment_id, idempotency_key, request_hash, amount_minor,
               reason, status) VALUES ($1, $2, $3, $4, 100000, 'x', 'in_progress')""",
        uuid.uuid4(),
        uuid.UUID(payment["id"]),
        key,
        _request_hash(ReversalCreate(**body)),
    )
    error(await reverse(api, payment["id"], key=key, **body), 409, "request_in_progress")
    error(await reverse(api, payment["id"]), 409, "reversal_in_progress")


# -- reversal: real plugins -----------------------------------------------------------------


async def test_example_provider_does_not_reverse(api):
    payment = await create(api, provider="example", amount="150", msisdn="+254712345678")
    await wait_for_status(api, payment["id"], {"succeeded"})
    error(await reverse(api, payment["id"]), 422, "not_supported")


async def test_mpesa_reversal(api):
    payment = await create(api, provider="mpesa", amount="150", msisdn="+254712345678")
    done = await wait_for_status(api, payment["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == "succeeded"
    # M-Pesa takes whole shillings only, and never more than was paid
    error(await reverse(api, payment["id"], amount="10.50"), 422, "invalid_amount")
    error(await reverse(api, payment["id"], amount="151"), 422, "amount_too_large")
    response = await reverse(api, payment["id"], amount="100")
    # the Result comes by callback: reversed when it came within `result_wait`, else
    # pending (202, payment unchanged); the simulator answers within milliseconds
    assert response.status_code in (200, 202), response.text
    assert response.json()["status"] == "succeeded"  # 50 shillings are left
    if response.status_code == 200:
        reversal_txn = (await claim(payment["id"]))["provider_data"]["ReversalTransactionID"]
        row = await db.fetchrow(
            "SELECT provider_data FROM payments WHERE id = $1", uuid.UUID(payment["id"])
        )
        # the provider's data about it is the payment's too (its `status` hook reads it)
        assert json.loads(row["provider_data"])["ReversalTransactionID"] == reversal_txn
        assert response.json()["amount_reversed"] == "100.00"
        # the simulator, as Daraja, reverses a receipt once (R000001): the rest is refused
        refused = error(await reverse(api, payment["id"]), 402, "declined")
        assert "already been reversed" in refused["message"]
        last = await claim(payment["id"])
        assert (last["state"], last["error"]) == ("failed", "declined:R000001")
    else:
        error(await reverse(api, payment["id"]), 409, "reversal_in_progress")


async def test_mpesa_b2c_is_not_reversed(api):
    payment = await create(
        api, provider="mpesa", type="disbursement", amount="150", msisdn="+254712345678"
    )
    done = await wait_for_status(api, payment["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == "succeeded"
    error(await reverse(api, payment["id"]), 422, "not_supported")
    assert (await claim(payment["id"]))["state"] == "failed"


async def test_airtel_full_refund_only(api):
    payment = await create(api, provider="airtel", amount="5000", msisdn="+256752605678")
    await wait_for_status(api, payment["id"], {"succeeded"})
    error(await reverse(api, payment["id"], amount="10.5"), 422, "invalid_amount")  # UGX
    error(await reverse(api, payment["id"], amount="1000"), 422, "not_supported")
    response = await reverse(api, payment["id"])
    assert response.status_code in (200, 202), response.text
    if response.status_code == 200:
        assert response.json()["status"] == "reversed"
        error(await reverse(api, payment["id"]), 409, "already_reversed")


# -- reversals the operator answers later: the worker follows them up ----------------------


async def _drain(host) -> None:
    from mmo_host.worker import Worker

    await Worker(host.gateway, worker_id="reversal-worker").drain()


async def _open_reversal_job(payment_id: str) -> list[Any]:
    return [
        j
        for j in await db.fetch(
            "SELECT * FROM jobs WHERE payment_id = $1 AND kind = 'reversal' AND done_at IS NULL",
            uuid.UUID(payment_id),
        )
    ]


async def test_worker_ends_a_pending_partial_reversal(api, host, operator_answers):
    answer, calls = operator_answers
    answer["value"] = StatusReport(status="pending", provider_reference="REV-2")
    payment = await succeeded_fake(api)
    response = await reverse(api, payment["id"], amount="400")
    assert response.status_code == 202
    answer.pop("value")
    (job,) = await _open_reversal_job(payment["id"])
    reversal_id = calls[-1]["reversal_id"]

    await _drain(host)  # the operator still says pending: asked again later
    assert (await claim(payment["id"]))["state"] == "pending"
    assert len(await _open_reversal_job(payment["id"])) == 1

    fake_provider.REVERSALS[reversal_id] = "reversed"
    await db.fetch("UPDATE jobs SET run_at = now() WHERE id = $1", job["id"])
    await _drain(host)
    last = await claim(payment["id"])
    assert (last["state"], last["provider_transaction_id"]) == ("reversed", f"RV-{reversal_id[:6]}")
    done = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert (done["status"], done["amount_reversed"]) == ("succeeded", "400.00")
    events = await db.fetch(
        "SELECT type FROM outbox_events WHERE payment_id = $1 ORDER BY created_at",
        uuid.UUID(payment["id"]),
    )
    assert events[-1]["type"] == "payment.partially_reversed"
    assert await _open_reversal_job(payment["id"]) == []
    # the rest may now be reversed
    rest = await reverse(api, payment["id"])
    assert (rest.status_code, rest.json()["status"]) == (200, "reversed")


async def test_worker_settles_an_unknown_reversal(api, host, operator_answers):
    answer, calls = operator_answers
    answer["value"] = OutcomeUnknown("read timeout", provider="fake")
    payment = await succeeded_fake(api)
    error(await reverse(api, payment["id"]), 504, "outcome_unknown")
    answer.pop("value")
    reversal_id = calls[-1]["reversal_id"]
    # the operator never got it: known not to have taken effect, so it may be sent again
    fake_provider.REVERSALS[reversal_id] = "unknown_to_operator"
    await db.fetch("UPDATE jobs SET run_at = now() WHERE kind = 'reversal'")
    await _drain(host)
    assert (await claim(payment["id"]))["state"] == "failed"
    again = await reverse(api, payment["id"])
    assert (again.status_code, again.json()["status"]) == (200, "reversed")


async def test_worker_records_a_refused_pending_reversal(api, host, operator_answers):
    answer, calls = operator_answers
    answer["value"] = StatusReport(status="pending")
    payment = await succeeded_fake(api)
    assert (await reverse(api, payment["id"])).status_code == 202
    answer.pop("value")
    fake_provider.REVERSALS[calls[-1]["reversal_id"]] = "failed"
    await db.fetch("UPDATE jobs SET run_at = now() WHERE kind = 'reversal'")
    await _drain(host)
    last = await claim(payment["id"])
    assert (last["state"], last["error"]) == ("failed", "declined:R9")
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


async def test_an_interrupted_reversal_is_settled_by_the_worker(api, host):
    """The process calling the operator died: the reversal stays `in_progress` with the
    job created with it; the worker marks it unknown, then asks the operator."""
    payment = await succeeded_fake(api)
    reversal_id = uuid.uuid4()
    async with db.transaction():
        await db.fetch(
            """INSERT INTO reversals (id, payment_id, request_hash, amount_minor, reason, status,
                   created_at, updated_at)
               VALUES ($1, $2, 'h', 100000, 'x', 'in_progress', now() - interval '1 hour',
                       now() - interval '1 hour')""",
            reversal_id,
            uuid.UUID(payment["id"]),
        )
        from mmo_host import jobs

        await jobs.enqueue_payment_job("reversal", uuid.UUID(payment["id"]), 0)
    fake_provider.REVERSALS[str(reversal_id)] = "reversed"
    await _drain(host)
    last = await claim(payment["id"])
    assert (last["state"], last["error"]) == ("reversed", "interrupted")
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "reversed"


async def test_a_person_settles_an_open_reversal(api, host, operator_answers):
    answer, calls = operator_answers
    answer["value"] = StatusReport(status="pending")
    payment = await succeeded_fake(api)
    assert (await reverse(api, payment["id"], amount="300")).status_code == 202
    answer.pop("value")
    rid = calls[-1]["reversal_id"]
    url = f"/api/v1/payments/{payment['id']}/reversals/{rid}/settle"
    error(await api.post(url, json={"status": "done", "note": "x"}), 400, "invalid_request")
    error(
        await api.post(
            f"/api/v1/payments/{payment['id']}/reversals/{uuid.uuid4()}/settle",
            json={"status": "failed", "note": "x"},
        ),
        404,
        "not_found",
    )
    settled = await api.post(
        url,
        json={"status": "reversed", "note": "seen on the portal", "provider_transaction_id": "P1"},
    )
    assert settled.status_code == 200, settled.text
    body = settled.json()
    assert (body["status"], body["provider_transaction_id"]) == ("reversed", "P1")
    assert body["error"] == "settled by hand: seen on the portal"
    done = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert (done["status"], done["amount_reversed"]) == ("succeeded", "300.00")
    error(await api.post(url, json={"status": "failed", "note": "x"}), 409, "reversal_not_open")

    # a refused one frees the payment for another reversal
    answer["value"] = OutcomeUnknown("timeout", provider="fake")
    error(await reverse(api, payment["id"], amount="100"), 504, "outcome_unknown")
    answer.pop("value")
    second = calls[-1]["reversal_id"]
    error(await reverse(api, payment["id"]), 409, "reversal_in_progress")
    failed = await api.post(
        f"/api/v1/payments/{payment['id']}/reversals/{second}/settle",
        json={"status": "failed", "note": "not on the statement"},
    )
    assert failed.json()["status"] == "failed"
    rest = await reverse(api, payment["id"])
    assert (rest.status_code, rest.json()["status"]) == (200, "reversed")


async def test_a_person_settles_an_unknown_payment(api, host):
    """A lost initiate answer and a dropped callback can leave nothing to ask the operator
    by: the orchestrator records what the operator's portal shows."""
    payment = await create(api)
    await payments.apply_transition(
        host.gateway, uuid.UUID(payment["id"]), "unknown", source="worker"
    )
    url = f"/api/v1/payments/{payment['id']}/settle"
    error(await api.post(url, json={"status": "reversed", "note": "x"}), 400, "invalid_request")
    error(await api.post(url, json={"status": "failed"}), 400, "invalid_request")
    settled = await api.post(
        url,
        json={"status": "succeeded", "note": "on the statement", "provider_transaction_id": "R1"},
    )
    assert settled.status_code == 200, settled.text
    assert (settled.json()["status"], settled.json()["provider_transaction_id"]) == (
        "succeeded",
        "R1",
    )
    last = (await transitions(payment["id"]))[-1]
    assert (last["source"], json.loads(last["detail"])) == (
        "admin",
        {"settled_by_hand": "on the statement"},
    )
    error(await api.post(url, json={"status": "failed", "note": "x"}), 409, "payment_not_open")

    other = await create(api)
    failed = await api.post(
        f"/api/v1/payments/{other['id']}/settle", json={"status": "failed", "note": "never paid"}
    )
    assert failed.json()["failure"] == {
        "code": "settled_by_hand",
        "message": "never paid",
        "provider_code": None,
        "provider_message": None,
    }
    async with httpx.AsyncClient(
        base_url=host.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as client:
        response = await client.post(url, json={"status": "failed", "note": "x"})
        error(response, 404, "not_found")


# -- resend prompt ---------------------------------------------------------------------------


async def test_resend_prompt_of_a_pending_collection(api, host):
    payment = await create(api)
    assert payment["status"] == "pending"
    response = await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt")
    assert response.status_code == 202, response.text
    assert response.json()["id"] == payment["id"]
    assert fake_provider.CALLS.count("resend_prompt") == 1
    refused = await create(api, msisdn="+255712340009")
    error(await api.post(f"/api/v1/payments/{refused['id']}/resend-prompt"), 422, "invalid_request")
    done = await succeeded_fake(api)
    error(
        await api.post(f"/api/v1/payments/{done['id']}/resend-prompt"), 409, "payment_not_pending"
    )
    error(await api.post(f"/api/v1/payments/{uuid.uuid4()}/resend-prompt"), 404, "not_found")
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    async with httpx.AsyncClient(base_url=host.url, headers=other) as client:
        error(
            await client.post(f"/api/v1/payments/{payment['id']}/resend-prompt"), 404, "not_found"
        )
        error(await client.get(f"/api/v1/payments/{payment['id']}/reversals"), 404, "not_found")


async def test_resend_prompt_where_the_provider_has_none(api):
    payment = await create(api, provider="mpesa", amount="150", msisdn="+254712349990")
    error(await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt"), 422, "not_supported")


# -- balance -------------------------------------------------------------------------------


async def test_balance_of_the_fake_provider(api):
    response = await api.get("/api/v1/admin/providers/fake/balance")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "provider": "fake",
        "provider_account": "default",
        "data": [{"account": "main", "currency": "TZS", "available": "5000.00", "current": None}],
    }


async def test_balance_of_real_simulators(api):
    for name in ("mpesa", "airtel"):
        response = await api.get(f"/api/v1/admin/providers/{name}/balance")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data and all(isinstance(b["available"], str) for b in data)
        Decimal(data[0]["available"])


async def test_balance_errors(api, host, operator_answers, monkeypatch):
    error(await api.get("/api/v1/admin/providers/example/balance"), 422, "not_supported")
    error(await api.get("/api/v1/admin/providers/nope/balance"), 422, "unknown_provider")
    async with httpx.AsyncClient(base_url=host.url) as client:
        error(await client.get("/api/v1/admin/providers/fake/balance"), 401, "unauthorized")
    answer, _ = operator_answers
    for raised, status, code in [
        (ProviderUnavailable("down", provider="fake"), 503, "provider_unavailable"),
        (operator.BreakerOpen("fake"), 503, "provider_unavailable"),
        (TimeoutError(), 503, "provider_timeout"),
        (OperatorDeclined("no", provider="fake"), 402, "declined"),
        (RuntimeError("bug"), 502, "provider_error"),
        (None, 502, "provider_error"),
    ]:
        answer["value"] = raised
        error(await api.get("/api/v1/admin/providers/fake/balance"), status, code)
    answer["value"] = BalanceReport(
        balances=(
            Balance(account="a", currency="XXX", available=Decimal("1.5"), current=Decimal(2)),
        )
    )
    response = await api.get("/api/v1/admin/providers/fake/balance")
    assert response.json()["data"] == [
        {"account": "a", "currency": "XXX", "available": "1.5", "current": "2"}
    ]
    answer.pop("value")
    provider = host.gateway.registry.get("fake")
    declaration = msgspec.structs.replace(provider.declaration, operations=("collection",))
    monkeypatch.setattr(provider, "declaration", declaration)
    error(await api.get("/api/v1/admin/providers/fake/balance"), 422, "not_supported")


# -- account lookup ----------------------------------------------------------------------------


async def test_lookup_of_the_fake_provider(api, operator_answers):
    _, calls = operator_answers
    for raw in ("+255712345678", "255712345678", "%2B255712345678"):
        response = await api.get(f"/api/v1/admin/providers/fake/accounts/{raw}")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "provider": "fake",
            "msisdn": "+255712345678",
            "active": True,
            "name": "Fake Holder",
            "details": {},
        }
        assert calls[-1]["msisdn"] == "+255712345678"


async def test_lookup_through_airtel(api):
    response = await api.get("/api/v1/admin/providers/airtel/accounts/+256752600404")
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    response = await api.get("/api/v1/admin/providers/airtel/accounts/+256752605678")
    assert response.status_code == 200, response.text
    assert response.json()["msisdn"] == "+256752605678"


async def test_lookup_errors(api, operator_answers):
    for raw in ("12", "+999123", "abc", "+2557"):
        error(await api.get(f"/api/v1/admin/providers/fake/accounts/{raw}"), 422, "invalid_msisdn")
    # a number of a country the provider does not serve (Airtel would crash on it)
    error(
        await api.get("/api/v1/admin/providers/airtel/accounts/+33612345678"), 422, "not_supported"
    )
    error(
        await api.get("/api/v1/admin/providers/mpesa/accounts/+254712345678"), 422, "not_supported"
    )
    error(
        await api.get("/api/v1/admin/providers/nope/accounts/+254712345678"),
        422,
        "unknown_provider",
    )
    answer, _ = operator_answers
    answer["value"] = ProviderUnavailable("down", provider="fake")
    error(
        await api.get("/api/v1/admin/providers/fake/accounts/+255712345678"),
        503,
        "provider_unavailable",
    )
    answer["value"] = BalanceReport(balances=())
    error(
        await api.get("/api/v1/admin/providers/fake/accounts/+255712345678"), 502, "provider_error"
    )
    answer["value"] = AccountInfo(msisdn="+255712345678", active=False, details={"code": "X"})
    response = await api.get("/api/v1/admin/providers/fake/accounts/+255712345678")
    assert response.json()["details"] == {"code": "X"} and response.json()["name"] is None


async def test_routes_are_documented(api):
    schema = (await api.get("/schema/openapi.json")).json()
    assert "/api/v1/payments/{payment_id}/reversal" in schema["paths"]
    assert "/api/v1/admin/providers/{name}/balance" in schema["paths"]
    assert "/api/v1/admin/providers/{name}/accounts/{msisdn}" in schema["paths"]


async def test_concurrent_reversals_reverse_once(api, monkeypatch):
    import asyncio

    payment = await succeeded_fake(api)
    calls: list[str] = []
    release, started = asyncio.Event(), asyncio.Event()
    real = operator.call

    async def slow(gateway, row, hook, **kwargs):
        if hook == "reverse":
            calls.append(hook)
            started.set()
            await release.wait()
            return StatusReport(status="reversed")
        return await real(gateway, row, hook, **kwargs)

    monkeypatch.setattr(operator, "call", slow)
    key = str(uuid.uuid4())
    first = asyncio.ensure_future(reverse(api, payment["id"], key=key))
    await asyncio.wait_for(started.wait(), 10)
    same, other = await asyncio.gather(
        reverse(api, payment["id"], key=key), reverse(api, payment["id"])
    )
    release.set()
    done = await first
    assert done.status_code == 200 and done.json()["status"] == "reversed"
    error(same, 409, "request_in_progress")
    error(other, 409, "reversal_in_progress")
    assert calls == ["reverse"]
