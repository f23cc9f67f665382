"""Nothing stays open silently: a payment the worker gives up on goes to the attention list
with its evidence, a person settles it there, and an open payment with no follow-up at all
is found by the invariant check."""

from __future__ import annotations

import uuid

import httpx
from mmo_host import attention, db, jobs
from mmo_host.schedule import Schedule
from mmo_host.worker import Worker

from tests import fake_provider
from tests.conftest import OTHER_KEY
from tests.test_webhooks import create_fake_payment

URL = "/api/v1/admin/mmo/attention"


class _GiveUp:
    """A poll schedule whose window is over: the next poll is the last."""

    def after(self, *args, **kwargs):
        return None


async def _give_up_polling(host, monkeypatch) -> dict:
    monkeypatch.setattr(Schedule, "poll", lambda self, provider: _GiveUp())
    payment = await create_fake_payment(api=host.client)
    fake_provider.DOWN["status"] = True
    await Worker(host.gateway, worker_id="attention-test").run_once()
    return payment


async def test_a_payment_the_worker_gives_up_on_is_put_in_front_of_a_person(api, host, monkeypatch):
    payment = await _give_up_polling(host, monkeypatch)
    assert await jobs.open_jobs(uuid.UUID(payment["id"])) == []
    listed = (await api.get(URL)).json()
    assert listed["count"] == 1 and listed["unowned"] == 0
    [entry] = listed["data"]
    assert entry["payment_id"] == payment["id"]
    assert entry["reason"] == "gave_up_polling"
    assert (entry["provider"], entry["status"]) == ("fake", "pending")
    # the evidence: the operator's last answer, the job notes and the history
    evidence = entry["evidence"]
    assert "ProviderUnavailable" in evidence["last_answer"]
    assert [h["to"] for h in evidence["history"]][-1] == "new"
    assert evidence["jobs"][0]["kind"] == "poll"
    # a person settles it: the entry is closed with the payment
    settled = await api.post(
        f"/api/v1/payments/{payment['id']}/settle",
        json={"status": "succeeded", "note": "seen on the operator's portal"},
    )
    assert settled.status_code == 200, settled.text
    after = (await api.get(URL)).json()
    assert after["count"] == 0 and after["data"] == []
    row = await db.fetchrow(
        "SELECT * FROM attention WHERE payment_id = $1", uuid.UUID(payment["id"])
    )
    assert row["resolved_at"] is not None and row["resolution"] == "payment succeeded"


async def test_flagging_twice_keeps_one_entry_with_the_newer_evidence(api, host):
    payment = await create_fake_payment(api)
    pid = uuid.UUID(payment["id"])
    await attention.flag(pid, "cannot_ask", {"try": 1})
    await attention.flag(pid, "cannot_ask", {"try": 2})
    [entry] = await attention.open_entries()
    assert entry["evidence"]["try"] == 2
    assert await attention.count_open() == 1


async def test_the_invariant_finds_an_open_payment_nobody_follows(api, host):
    payment = await create_fake_payment(api)
    pid = uuid.UUID(payment["id"])
    assert await attention.unowned() == []  # its poll job follows it
    await db.fetch("UPDATE jobs SET done_at = now() WHERE payment_id = $1", pid)
    assert await attention.unowned() == [pid]
    assert (await api.get(URL)).json()["unowned"] == 1
    assert await attention.check_invariant() == 1
    [entry] = (await api.get(URL)).json()["data"]
    assert (entry["payment_id"], entry["reason"]) == (payment["id"], "no_follow_up")
    assert await attention.unowned() == []
    assert await attention.check_invariant() == 0


async def test_the_attention_list_is_for_admin_keys_only(api, host):
    async with httpx.AsyncClient(base_url=host.url) as anonymous:
        assert (await anonymous.get(URL)).status_code == 401
        other = await anonymous.get(URL, headers={"Authorization": f"Bearer {OTHER_KEY}"})
        assert other.status_code == 403
    bad = await api.get(URL, params={"limit": 0})
    assert bad.status_code == 400


async def test_the_worker_loop_runs_the_invariant_check(api, host):
    import asyncio

    payment = await create_fake_payment(api)
    pid = uuid.UUID(payment["id"])
    await db.fetch("UPDATE jobs SET done_at = now() WHERE payment_id = $1", pid)
    stop = asyncio.Event()
    worker = Worker(host.gateway, worker_id="invariant-loop", idle_sleep=0.05, invariant_every=0)
    running = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(100):
            if await attention.count_open():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    [entry] = await attention.open_entries()
    assert (entry["payment_id"], entry["reason"]) == (payment["id"], "no_follow_up")
