"""The admin API under /api/v1/admin/mmo, through HTTP on loopback: providers (list, live
health, a test call, stats), transactions (story, callbacks, retry, reverse), callbacks
(list, replay) and the audit log; each with its 401, 403, 404 and 409 cases."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
import msgspec
import pytest
from mmo_host import db, payments

from tests import fake_provider
from tests.conftest import OTHER_KEY
from tests.test_webhooks import create_fake_payment, fake_url, post

BASE = "/api/v1/admin/mmo"


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]


async def audit_entries(api, **params) -> list[dict[str, Any]]:
    response = await api.get(f"{BASE}/audit", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def succeeded(api, host) -> dict[str, Any]:
    payment = await create_fake_payment(api)
    fake_provider.OPERATOR[payment["provider_reference"]]["status"] = "succeeded"
    await payments.apply_transition(
        host.gateway, uuid.UUID(payment["id"]), "succeeded", source="callback"
    )
    return payment


async def queued(api) -> dict[str, Any]:
    """A payment the operator could not take (down): `new`, with a `send` job."""
    fake_provider.DOWN["initiate"] = True
    response = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "1000",
            "currency": "TZS",
            "msisdn": "+255712345678",
            "provider": "fake",
            "reference": "Q-1",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    fake_provider.DOWN["initiate"] = False
    assert response.status_code == 202, response.text
    payment = response.json()
    assert payment["status"] == "new"
    return payment


async def open_jobs(payment_id: str, kind: str) -> list[Any]:
    return await db.fetch(
        "SELECT * FROM jobs WHERE payment_id = $1 AND kind = $2 AND done_at IS NULL",
        uuid.UUID(payment_id),
        kind,
    )


# -- who may call --------------------------------------------------------------------------

ROUTES = [
    ("GET", "/providers"),
    ("GET", "/providers/fake/health"),
    ("GET", "/providers/fake/stats"),
    ("POST", "/providers/fake/test"),
    ("GET", f"/transactions/{uuid.uuid4()}"),
    ("GET", f"/transactions/{uuid.uuid4()}/callbacks"),
    ("POST", f"/transactions/{uuid.uuid4()}/retry"),
    ("POST", f"/transactions/{uuid.uuid4()}/reverse"),
    ("GET", "/callbacks"),
    ("GET", f"/callbacks/{uuid.uuid4()}"),
    ("POST", f"/callbacks/{uuid.uuid4()}/replay"),
    ("GET", "/audit"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_admin_route_needs_an_admin_key(api, host, method, path):
    body = {"reason": "x"} if path.endswith("/reverse") else None
    async with httpx.AsyncClient(base_url=host.url) as anonymous:
        none = await anonymous.request(method, BASE + path, json=body)
        error(none, 401, "unauthorized")
        assert none.headers["www-authenticate"] == "Bearer"
        payments_only = await anonymous.request(
            method, BASE + path, json=body, headers={"Authorization": f"Bearer {OTHER_KEY}"}
        )
        error(payments_only, 403, "forbidden")
    # neither reached a handler: nothing was written to the audit log
    assert await db.fetch("SELECT * FROM audit_log") == []


# -- providers -------------------------------------------------------------------------------


async def test_providers_are_listed_with_their_accounts(api):
    body = (await api.get(f"{BASE}/providers")).json()
    by_name = {p["name"]: p for p in body["data"]}
    assert by_name["fake"]["accounts"] == ["default"]
    assert "health" in by_name["fake"]["hooks"]
    assert {"mpesa", "mtn_momo", "airtel", "orange"} <= set(by_name)
    assert body["failures"] == []


async def test_health_asks_the_operator_for_every_account(api, host):
    body = (await api.get(f"{BASE}/providers/fake/health")).json()
    assert body["provider"] == "fake" and body["ok"] is True
    [check] = body["data"]
    assert (check["account"], check["answer"], check["detail"]) == (
        "default",
        "answered",
        "fake ok",
    )
    assert check["breaker"]["state"] == "closed"
    assert fake_provider.CALLS.count("health") == 1
    # a real simulator: M-Pesa's health fetches a new token from it
    mpesa = (await api.get(f"{BASE}/providers/mpesa/health")).json()
    assert mpesa["ok"] is True and mpesa["data"][0]["latency_ms"] is not None
    error(await api.get(f"{BASE}/providers/nobody/health"), 404, "not_found")


async def test_an_unhealthy_operator_is_reported_not_raised(api, host, monkeypatch):
    from mmo_host import operator

    real = operator.call

    async def failing(gateway, target, hook, **kwargs):
        if hook == "health":
            raise fake_provider.ProviderUnavailable("Fake Money is down", provider="fake")
        return await real(gateway, target, hook, **kwargs)

    monkeypatch.setattr(operator, "call", failing)
    body = (await api.get(f"{BASE}/providers/fake/health")).json()
    assert body["ok"] is False
    assert body["data"][0]["answer"] == "not_sent"
    assert "Fake Money is down" in body["data"][0]["detail"]


async def test_a_live_test_of_one_account(api):
    response = await api.post(f"{BASE}/providers/fake/test")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["provider"], body["account"], body["ok"]) == ("fake", "default", True)
    assert fake_provider.CALLS == ["health"]
    mpesa = (await api.post(f"{BASE}/providers/mpesa/test", params={"account": "default"})).json()
    assert mpesa["ok"] is True and mpesa["answer"] == "answered"
    error(await api.post(f"{BASE}/providers/fake/test?account=elsewhere"), 404, "not_found")
    error(await api.post(f"{BASE}/providers/nobody/test"), 404, "not_found")
    # it changes nothing: no audit entry
    assert await audit_entries(api) == []


async def test_stats_over_a_window(api, host):
    ok = await succeeded(api, host)
    await create_fake_payment(api)  # pending
    declined = await api.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "1000",
            "currency": "TZS",
            "msisdn": "+255712340001",
            "provider": "fake",
            "reference": "NSF",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert declined.json()["status"] == "failed"
    # one callback matched to the succeeded payment, one unmatched, one refused
    ref = ok["provider_reference"]
    await post(fake_url(host), json.dumps({"ref": ref, "status": "succeeded"}).encode())
    await post(fake_url(host), json.dumps({"ref": "FK-nobody", "status": "failed"}).encode())
    await post(fake_url(host).replace("token=", "token=x"), b"{}")

    response = await api.get(f"{BASE}/providers/fake/stats", params={"window": 600})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == 600 and body["operator_latency_ms"] is None
    paid = body["payments"]
    assert paid["total"] == 3
    assert paid["by_status"] == {"succeeded": 1, "pending": 1, "failed": 1}
    assert paid["success_rate"] == 0.5  # of the two decided
    assert paid["failure_codes"] == {"insufficient_funds": 1}
    calls = body["callbacks"]
    assert (calls["received"], calls["verified"], calls["rejected"], calls["unmatched"]) == (
        3,
        2,
        1,
        1,
    )
    assert calls["by_flag"] == {"duplicate": 1, "unmatched": 1, "unverified": 1}
    arrival = calls["arrival_ms"]
    assert arrival["count"] == 1 and arrival["p50"] is not None and arrival["p50"] >= 0
    assert arrival["p50"] <= arrival["p90"] <= arrival["p99"]
    # an empty provider, and bounds of the window
    empty = (await api.get(f"{BASE}/providers/airtel/stats")).json()
    assert empty["payments"]["total"] == 0 and empty["payments"]["success_rate"] is None
    assert empty["callbacks"]["arrival_ms"] == {"count": 0, "p50": None, "p90": None, "p99": None}
    error(await api.get(f"{BASE}/providers/fake/stats?window=1"), 400, "invalid_request")
    error(await api.get(f"{BASE}/providers/nobody/stats"), 404, "not_found")


# -- transactions ----------------------------------------------------------------------------


async def test_a_transaction_s_whole_story(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    await post(fake_url(host), json.dumps({"ref": ref, "status": "succeeded"}).encode())
    response = await api.get(f"{BASE}/transactions/{payment['id']}")
    assert response.status_code == 200, response.text
    story = response.json()
    assert story["payment"]["id"] == payment["id"]
    assert story["payment"]["status"] == "succeeded"
    assert story["client_id"] == "env"
    assert story["routing"]["provider"] == "fake"
    assert [(h["from"], h["to"]) for h in story["history"]] == [
        (None, "new"),
        ("new", "pending"),
        ("pending", "succeeded"),
    ]
    assert story["history"][-1]["callback_id"] is not None
    assert [e["type"] for e in story["events"]] == [
        "payment.created",
        "payment.pending",
        "payment.succeeded",
    ]
    assert all(e["deliveries"] for e in story["events"])  # one per event URL
    assert {j["kind"] for j in story["jobs"]} >= {"poll"}
    assert story["reversals"] == [] and story["attention"] == []
    error(await api.get(f"{BASE}/transactions/{uuid.uuid4()}"), 404, "not_found")
    error(await api.get(f"{BASE}/transactions/not-an-id"), 404, "not_found")


async def test_admin_sees_another_client_s_transaction(api, host):
    async with httpx.AsyncClient(
        base_url=host.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as other:
        payment = await create_fake_payment(other)
    story = (await api.get(f"{BASE}/transactions/{payment['id']}")).json()
    assert story["client_id"].startswith("cl_")  # the client `other`, not `env`


async def test_a_transaction_s_kept_callbacks(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    message = json.dumps({"ref": ref, "status": "succeeded", "amount": "1"}).encode()
    await post(fake_url(host), message, **{"Authorization": "Bearer operator-secret"})
    response = await api.get(f"{BASE}/transactions/{payment['id']}/callbacks")
    assert response.status_code == 200, response.text
    [kept] = response.json()["data"]
    assert (kept["flag"], kept["verified"], kept["processed"]) == ("mismatch", True, True)
    assert kept["error"] == "amount or phone number differ from the payment's"
    assert json.loads(kept["body"]) == {"ref": ref, "status": "succeeded", "amount": "1"}
    assert kept["headers"]["authorization"] == "[redacted]"
    assert "operator-secret" not in response.text
    assert kept["query"]["token"]
    error(await api.get(f"{BASE}/transactions/{uuid.uuid4()}/callbacks"), 404, "not_found")


async def test_retry_sends_a_queued_payment_now(api):
    payment = await queued(api)
    assert len(await open_jobs(payment["id"], "send")) == 1
    response = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "send" and body["payment"]["status"] == "pending"
    assert body["job"]["kind"] == "send" and body["job"]["done_at"] is not None
    assert await open_jobs(payment["id"], "send") == []
    assert (
        fake_provider.CALLS.count("initiate") == 1
    )  # the queued attempt stopped at prepare (the operator was down)
    [entry] = await audit_entries(api)
    assert (entry["action"], entry["target"]) == ("transaction.retry", f"payment:{payment['id']}")
    assert entry["status"] == 200 and entry["answer"]["payment"]["status"] == "pending"
    assert (entry["client_id"], entry["key_id"]) == ("env", None)


async def test_retry_of_a_payment_whose_send_may_be_in_flight(api, host, monkeypatch):
    payment = await queued(api)
    # no send job: it could be an initiate call in flight, or one the host died in
    await db.fetch(
        "UPDATE jobs SET done_at = now() WHERE payment_id = $1", uuid.UUID(payment["id"])
    )
    refused = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    assert "not make a second send safe" in error(refused, 409, "retry_unsafe")["message"]
    assert fake_provider.CALLS.count("initiate") == 0
    # where the operator refuses a second payment with our id, sending now is safe
    provider = host.gateway.registry.get("fake")
    declaration = msgspec.structs.replace(provider.declaration, resend_safe=True)
    monkeypatch.setattr(provider, "declaration", declaration)
    sent = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    assert sent.status_code == 200, sent.text
    assert sent.json()["payment"]["status"] == "pending"
    assert [e["status"] for e in await audit_entries(api)] == [200, 409]


async def test_retry_while_the_worker_holds_the_job(api):
    payment = await queued(api)
    await db.fetch(
        "UPDATE jobs SET locked_by = 'w', locked_until = now() + interval '1 minute' "
        "WHERE payment_id = $1 AND kind = 'send'",
        uuid.UUID(payment["id"]),
    )
    error(await api.post(f"{BASE}/transactions/{payment['id']}/retry"), 409, "retry_running")
    assert fake_provider.CALLS.count("initiate") == 0


async def test_retry_polls_an_open_payment_now(api):
    payment = await create_fake_payment(api)
    [job] = await open_jobs(payment["id"], "poll")
    fake_provider.OPERATOR[payment["provider_reference"]]["status"] = "succeeded"
    response = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["action"], body["payment"]["status"]) == ("poll", "succeeded")
    assert body["job"]["id"] == job["id"] and body["job"]["done_at"] is not None
    assert "status" in fake_provider.CALLS


async def test_retry_polls_again_after_the_worker_gave_up(api):
    payment = await create_fake_payment(api)
    await db.fetch(
        "UPDATE jobs SET done_at = now(), last_error = 'gave up' WHERE payment_id = $1",
        uuid.UUID(payment["id"]),
    )
    response = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    assert response.status_code == 200, response.text
    body = response.json()
    # the operator still says pending: the new poll job stays open for the next poll
    assert (body["action"], body["payment"]["status"]) == ("poll", "pending")
    [job] = await open_jobs(payment["id"], "poll")
    assert job["run_at"] > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


async def test_retry_of_a_final_payment_is_refused(api, host):
    payment = await succeeded(api, host)
    refused = error(
        await api.post(f"{BASE}/transactions/{payment['id']}/retry"), 409, "not_retryable"
    )
    assert "succeeded" in refused["message"]
    error(await api.post(f"{BASE}/transactions/{uuid.uuid4()}/retry"), 404, "not_found")
    entries = await audit_entries(api, action="transaction.retry")
    assert [e["status"] for e in entries] == [404, 409]
    assert entries[1]["answer"]["error"]["code"] == "not_retryable"


async def test_reverse_through_the_admin_api(api, host):
    payment = await succeeded(api, host)
    url = f"{BASE}/transactions/{payment['id']}/reverse"
    response = await api.post(url, json={"reason": "refund asked", "amount": "400"})
    assert response.status_code == 200, response.text
    assert response.json()["amount_reversed"] == "400.00"
    assert fake_provider.CALLS.count("reverse") == 1
    rest = await api.post(url, json={"reason": "the rest"}, headers={"Idempotency-Key": "r-2"})
    assert rest.status_code == 200 and rest.json()["status"] == "reversed"
    # the same key again replays the answer; a reversed payment is not reversed again
    again = await api.post(url, json={"reason": "the rest"}, headers={"Idempotency-Key": "r-2"})
    assert again.status_code == 200 and fake_provider.CALLS.count("reverse") == 2
    error(await api.post(url, json={"reason": "more"}), 409, "already_reversed")
    listed = (await api.get(f"/api/v1/payments/{payment['id']}/reversals")).json()["data"]
    assert [r["status"] for r in listed] == ["reversed", "reversed"]
    entries = await audit_entries(api, target=f"payment:{payment['id']}")
    assert [e["status"] for e in entries] == [409, 200, 200, 200]
    assert entries[-1]["request"]["reversal"] == {"reason": "refund asked", "amount": "400"}


async def test_reverse_another_client_s_payment(api, host):
    async with httpx.AsyncClient(
        base_url=host.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as other:
        payment = await create_fake_payment(other)
    await payments.apply_transition(
        host.gateway, uuid.UUID(payment["id"]), "succeeded", source="callback"
    )
    response = await api.post(
        f"{BASE}/transactions/{payment['id']}/reverse", json={"reason": "fraud"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "reversed"


async def test_reverse_refusals(api, host, monkeypatch):
    pending = await create_fake_payment(api)
    url = f"{BASE}/transactions/{pending['id']}/reverse"
    error(await api.post(url, json={"reason": "x"}), 409, "payment_not_succeeded")
    error(
        await api.post(f"{BASE}/transactions/{uuid.uuid4()}/reverse", json={"reason": "x"}),
        404,
        "not_found",
    )
    error(await api.post(url, json={"reason": ""}), 400, "invalid_request")
    payment = await succeeded(api, host)
    provider = host.gateway.registry.get("fake")
    declaration = msgspec.structs.replace(provider.declaration, operations=("collection",))
    monkeypatch.setattr(provider, "declaration", declaration)
    refused = await api.post(f"{BASE}/transactions/{payment['id']}/reverse", json={"reason": "x"})
    assert "offers no reversal" in error(refused, 409, "reversal_not_supported")["message"]
    assert "reverse" not in fake_provider.CALLS


# -- callbacks -------------------------------------------------------------------------------


async def test_callbacks_are_listed_and_filtered_with_paging(api, host):
    payment = await create_fake_payment(api)
    for n in range(3):
        await post(fake_url(host), json.dumps({"ref": f"FK-none{n}", "status": "failed"}).encode())
    await post(fake_url(host).replace("token=", "token=x"), b"{}")
    await post(
        fake_url(host),
        json.dumps({"ref": payment["provider_reference"], "status": "pending"}).encode(),
    )
    everything = (await api.get(f"{BASE}/callbacks")).json()
    assert len(everything["data"]) == 5 and everything["next"] is None
    assert "body" not in everything["data"][0]
    unmatched = (await api.get(f"{BASE}/callbacks", params={"flag": "unmatched"})).json()["data"]
    assert [c["flag"] for c in unmatched] == ["unmatched"] * 3
    rejected = (await api.get(f"{BASE}/callbacks", params={"verified": "false"})).json()["data"]
    assert [c["flag"] for c in rejected] == ["unverified"]
    by_provider = await api.get(
        f"{BASE}/callbacks", params={"provider": "fake", "processed": "true", "verified": "true"}
    )
    assert len(by_provider.json()["data"]) == 4
    assert (await api.get(f"{BASE}/callbacks", params={"provider": "mpesa"})).json()["data"] == []
    # two at a time, newest first, until the end
    seen: list[str] = []
    after = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        page = (await api.get(f"{BASE}/callbacks", params=params)).json()
        seen += [c["id"] for c in page["data"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [c["id"] for c in everything["data"]]
    error(await api.get(f"{BASE}/callbacks", params={"after": "garbage"}), 400, "invalid_cursor")
    error(await api.get(f"{BASE}/callbacks", params={"limit": 0}), 400, "invalid_request")
    one = await api.get(f"{BASE}/callbacks/{seen[0]}")
    assert one.status_code == 200 and json.loads(one.json()["body"])["status"] == "pending"
    error(await api.get(f"{BASE}/callbacks/{uuid.uuid4()}"), 404, "not_found")


async def test_replay_of_an_unmatched_callback_after_the_payment_is_known(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    # the operator's callback named a reference we did not hold yet
    await db.fetch(
        "UPDATE payments SET provider_reference = NULL WHERE id = $1", uuid.UUID(payment["id"])
    )
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    await post(fake_url(host), json.dumps({"ref": ref, "status": "succeeded"}).encode())
    [kept] = (await api.get(f"{BASE}/callbacks", params={"flag": "unmatched"})).json()["data"]
    # the fix: the payment's reference is recorded
    await db.fetch(
        "UPDATE payments SET provider_reference = $2 WHERE id = $1", uuid.UUID(payment["id"]), ref
    )
    response = await api.post(f"{BASE}/callbacks/{kept['id']}/replay")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["before"]["flag"] == "unmatched"
    assert (body["after"]["flag"], body["after"]["payment_id"]) == (None, payment["id"])
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"
    # applied now: it is not replayed again
    again = await api.post(f"{BASE}/callbacks/{kept['id']}/replay")
    assert "already applied" in error(again, 409, "callback_applied")["message"]
    entries = await audit_entries(api, target=f"callback:{kept['id']}")
    assert [e["status"] for e in entries] == [409, 200]
    assert entries[1]["answer"]["after"]["flag"] is None


async def test_replay_of_an_unconfirmed_callback_once_the_operator_confirms(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    await post(fake_url(host), json.dumps({"ref": ref, "status": "succeeded"}).encode())
    [kept] = (await api.get(f"{BASE}/transactions/{payment['id']}/callbacks")).json()["data"]
    assert kept["flag"] == "unconfirmed"
    # still unconfirmed: replayed, and flagged the same
    still = (await api.post(f"{BASE}/callbacks/{kept['id']}/replay")).json()
    assert still["after"]["flag"] == "unconfirmed"
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    done = (await api.post(f"{BASE}/callbacks/{kept['id']}/replay")).json()
    assert done["after"]["flag"] is None
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


async def test_replay_checks_the_source_and_the_token_again(api, host, monkeypatch):
    from mmo_host import sources

    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    allowed = sources.networks("196.201.214.0/24", "test")
    monkeypatch.setitem(host.gateway.allowed_sources, ("fake", "default"), allowed)
    body = json.dumps({"ref": ref, "status": "succeeded"}).encode()
    assert (await post(fake_url(host), body)).status_code == 403
    [from_elsewhere] = (await api.get(f"{BASE}/callbacks")).json()["data"]
    # a replay is no way round the allow-list
    replayed = (await api.post(f"{BASE}/callbacks/{from_elsewhere['id']}/replay")).json()
    assert (replayed["after"]["flag"], replayed["after"]["verified"]) == ("unverified", False)
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "pending"
    # nor round the token
    monkeypatch.delitem(host.gateway.allowed_sources, ("fake", "default"))
    assert (await post(fake_url(host).replace("token=", "token=x"), body)).status_code == 401
    [forged] = (await api.get(f"{BASE}/callbacks", params={"limit": 1})).json()["data"]
    replayed = (await api.post(f"{BASE}/callbacks/{forged['id']}/replay")).json()
    assert replayed["after"]["flag"] == "unverified"
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "pending"
    # the one from elsewhere, once its source is allowed (the fix), is applied
    replayed = (await api.post(f"{BASE}/callbacks/{from_elsewhere['id']}/replay")).json()
    assert replayed["after"]["flag"] is None
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


async def test_replay_refusals(api, host):
    payment = await succeeded(api, host)
    message = json.dumps({"ref": payment["provider_reference"], "status": "succeeded"}).encode()
    await post(fake_url(host), message)
    [duplicate] = (await api.get(f"{BASE}/callbacks")).json()["data"]
    assert duplicate["flag"] == "duplicate"
    error(await api.post(f"{BASE}/callbacks/{duplicate['id']}/replay"), 409, "callback_applied")
    error(await api.post(f"{BASE}/callbacks/{uuid.uuid4()}/replay"), 404, "not_found")
    error(await api.post(f"{BASE}/callbacks/nope/replay"), 404, "not_found")


# -- the audit log ---------------------------------------------------------------------------


async def test_the_older_admin_actions_are_audited_too(api, host):
    payment = await create_fake_payment(api)
    settled = await api.post(
        f"/api/v1/payments/{payment['id']}/settle",
        json={"status": "succeeded", "note": "seen on the portal"},
    )
    assert settled.status_code == 200, settled.text
    refused = await api.post(
        f"/api/v1/payments/{payment['id']}/settle", json={"status": "failed", "note": "again"}
    )
    error(refused, 409, "payment_not_open")
    [event] = (await api.get(f"/api/v1/admin/payments/{payment['id']}/events")).json()["data"][:1]
    resent = await api.post(f"/api/v1/admin/events/{event['id']}/resend")
    assert resent.status_code == 202
    missing = await api.post(f"/api/v1/admin/events/{uuid.uuid4()}/resend")
    assert missing.status_code == 404
    entries = await audit_entries(api)
    assert [(e["action"], e["status"]) for e in entries] == [
        ("event.resend", 404),
        ("event.resend", 202),
        ("payment.settle", 409),
        ("payment.settle", 200),
    ]
    assert entries[1]["answer"] == {"event_id": event["id"], "queued": 1}
    assert entries[3]["request"] == {
        "status": "succeeded",
        "note": "seen on the portal",
        "provider_transaction_id": None,
    }
    assert entries[3]["answer"]["status"] == "succeeded"
    assert entries[2]["answer"]["error"]["code"] == "payment_not_open"
    assert all(e["at"].endswith("Z") for e in entries)


async def test_a_reversal_settled_by_hand_is_audited(api, host, monkeypatch):
    from mmo_host import operator

    from tests.test_operations import claim

    payment = await succeeded(api, host)
    real = operator.call

    async def pending_reversal(gateway, target, hook, **kwargs):
        if hook == "reverse":
            return fake_provider.StatusReport(status="pending")
        return await real(gateway, target, hook, **kwargs)

    monkeypatch.setattr(operator, "call", pending_reversal)
    answered = await api.post(f"{BASE}/transactions/{payment['id']}/reverse", json={"reason": "x"})
    assert answered.status_code == 202, answered.text
    monkeypatch.undo()
    reversal = await claim(payment["id"])
    settled = await api.post(
        f"/api/v1/payments/{payment['id']}/reversals/{reversal['id']}/settle",
        json={"status": "reversed", "note": "on the statement"},
    )
    assert settled.status_code == 200, settled.text
    entries = await audit_entries(api)
    assert [(e["action"], e["status"]) for e in entries] == [
        ("reversal.settle", 200),
        ("transaction.reverse", 202),
    ]
    assert entries[0]["target"] == f"reversal:{reversal['id']}"
    assert entries[0]["answer"]["status"] == "reversed"


async def test_the_audit_log_pages_and_names_the_key(api, host):
    from mmo_host import keys

    issued = await keys.create("ops", ["admin"], live=False)
    async with httpx.AsyncClient(
        base_url=host.url, headers={"Authorization": f"Bearer {issued.key}"}
    ) as ops:
        for _ in range(3):
            error(await ops.post(f"{BASE}/transactions/{uuid.uuid4()}/retry"), 404, "not_found")
        first = (await ops.get(f"{BASE}/audit", params={"limit": 2})).json()
        assert len(first["data"]) == 2 and first["next"] is not None
        second = (
            await ops.get(f"{BASE}/audit", params={"limit": 2, "after": first["next"]})
        ).json()
        assert len(second["data"]) == 1 and second["next"] is None
    ids = [e["id"] for e in first["data"] + second["data"]]
    assert ids == sorted(ids, reverse=True)
    assert {e["key_id"] for e in first["data"]} == {issued.id}
    assert {e["client_id"] for e in first["data"]} - {"env"} == {first["data"][0]["client_id"]}
    assert issued.key not in json.dumps(first)
    error(await api.get(f"{BASE}/audit", params={"after": 0}), 400, "invalid_request")
    assert (await api.get(f"{BASE}/audit", params={"action": "callback.replay"})).json()[
        "data"
    ] == []


async def test_an_action_that_dies_mid_way_leaves_its_entry_without_a_status(
    api, host, monkeypatch
):
    from mmo_host.controllers import admin_transactions

    async def broken(gateway, row):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(admin_transactions, "retry", broken)
    payment = await create_fake_payment(api)
    response = await api.post(f"{BASE}/transactions/{payment['id']}/retry")
    error(response, 500, "internal_error")
    [entry] = await audit_entries(api)
    assert entry["status"] == 500 and entry["answer"]["error"]["code"] == "internal_error"
