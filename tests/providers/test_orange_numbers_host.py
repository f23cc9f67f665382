"""Orange through the real host: every simulator test number of every family ends as the
table of docs/providers/orange.md says, by the way the table says (the notification, a poll
when Orange never notifies, or the initiate answer); and resend-prompt.

The host's worker is off in the tests: a payment reaches its end by a notification unless
the test drains a worker itself (then the transition's source is "poll").
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from mmo_host import db
from mmo_host.worker import Worker

from tests.conftest import wait_for_status
from tests.providers.test_orange_host import SIM, create, ledger, sonatel_setup

# last 4 -> (gateway status, failure code, how it got there)
WEBPAY = {
    "0001": ("failed", "FAILED", "callback"),
    "1032": ("pending", None, None),  # the payer went back: INITIATED, never notified
    "1037": ("expired", "EXPIRED", "poll"),  # confirmed too late: EXPIRED, never notified
    "2001": ("failed", "FAILED", "callback"),
    "9990": ("succeeded", None, "poll"),
    "9991": ("succeeded", None, "callback"),
    "9992": ("succeeded", None, "callback"),
    "4567": ("succeeded", None, "callback"),
}
CAMEROON = {
    "0001": ("failed", "60019", "api"),  # HTTP 417 at mp/pay
    "1032": ("failed", "CANCELLED", "callback"),
    "1037": ("expired", "EXPIRED", "callback"),
    "2001": ("failed", "60011", "callback"),
    "9990": ("succeeded", None, "poll"),
    "9991": ("succeeded", None, "callback"),
    "9992": ("succeeded", None, "callback"),
    "4567": ("succeeded", None, "callback"),
}
SONATEL = {
    "0001": ("failed", "2011", "api"),  # problem 400 at once
    "1032": ("failed", "CANCELLED", "callback"),
    "1037": ("failed", "FAILED", "callback"),
    "2001": ("failed", "REJECTED", "callback"),
    "9990": ("succeeded", None, "poll"),
    "9991": ("succeeded", None, "callback"),
    "9992": ("succeeded", None, "callback"),
    "4567": ("succeeded", None, "callback"),
}


async def transitions(payment_id: str) -> list[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT to_status, source FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
        uuid.UUID(payment_id),
    )
    return [(r["to_status"], r["source"]) for r in rows]


async def callbacks_of(payment_id: str) -> int:
    rows = await db.fetch(
        "SELECT count(*) AS n FROM callbacks WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return rows[0]["n"]


async def play(api, host, prefix: str, currency: str, table: dict) -> None:
    created = {last4: await create(api, f"{prefix}{last4}", currency) for last4 in sorted(table)}
    notified = {k for k, (status, _, how) in table.items() if how == "callback"}
    for last4 in notified:
        await wait_for_status(api, created[last4]["id"], {table[last4][0]})
    # what Orange never notifies is found by polling
    await asyncio.sleep(0.3)
    await Worker(host.gateway, worker_id="orange-numbers").drain()
    for last4, (status, code, how) in table.items():
        payment = created[last4]
        done = await wait_for_status(api, payment["id"], {status})
        got = (done["failure"] or {}).get("provider_code")
        assert got == code, (last4, done["failure"])
        moves = await transitions(payment["id"])
        if how is None:
            assert status not in {to for to, _ in moves if to != "pending"}, (last4, moves)
        else:
            assert (status, how) in moves, (last4, moves)
    # 9991: the notification came twice and changed the payment once
    twice = created["9991"]["id"]
    deadline = time.monotonic() + 5
    for _ in range(100):
        if await callbacks_of(twice) >= 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert await callbacks_of(twice) == 2
    assert [m for m in await transitions(twice) if m[0] == "succeeded"] == [
        ("succeeded", "callback")
    ]
    assert await callbacks_of(created["9990"]["id"]) == 0


async def test_every_webpay_test_number(api, host):
    await play(api, host, "+225070123", "XOF", WEBPAY)


async def test_every_cameroon_test_number(api, host):
    await play(api, host, "+23769001", "XAF", CAMEROON)


async def test_every_senegal_test_number(api, host):
    await sonatel_setup(host)
    await play(api, host, "+22177001", "XOF", SONATEL)


# -- resend-prompt ----------------------------------------------------------------------------


async def sim_delay(host, seconds: float) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{host.url}{SIM}/_simulator/orange/delay", json={"seconds": seconds}
        )
    assert answer.json() == {"seconds": seconds}


async def test_resend_prompt_of_a_pending_cameroon_payment(api, host):
    await sim_delay(host, 1.0)  # the payer takes a second to answer
    try:
        payment = await create(api, "+237690014567", "XAF")
        answer = await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt")
    finally:
        await sim_delay(host, 0.05)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending"
    entry = next(e for e in await ledger(host) if e["id"] == payment["provider_reference"])
    assert entry["pushes"] == 1
    done = await wait_for_status(api, payment["id"], {"succeeded"})
    assert done["status"] == "succeeded"
    again = await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt")
    assert again.status_code == 409  # the host: no longer pending


async def test_resend_prompt_refused_by_orange_once_paid(api, host):
    # paid at Orange, never notified: the gateway still says pending
    payment = await create(api, "+237690019990", "XAF")
    await asyncio.sleep(0.3)
    answer = await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt")
    assert answer.status_code == 422, answer.text
    assert "60100" in answer.text or "not_pending" in answer.text
    entry = next(e for e in await ledger(host) if e["id"] == payment["provider_reference"])
    assert "pushes" not in entry and entry["push_refused"] == "SUCCESSFULL"
    after = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert after["status"] == "pending"  # a refused push changes nothing


async def test_resend_prompt_is_not_supported_by_webpay_and_sonatel(api, host):
    await sonatel_setup(host)
    await sim_delay(host, 1.0)  # keep both pending while asked
    try:
        webpay = await create(api, "+2250701234567", "XOF")
        senegal = await create(api, "+221771234567", "XOF")
        for payment in (webpay, senegal):
            answer = await api.post(f"/api/v1/payments/{payment['id']}/resend-prompt")
            assert answer.status_code == 422, answer.text
            assert "not_supported" in answer.text
    finally:
        await sim_delay(host, 0.05)
    await wait_for_status(api, webpay["id"], {"succeeded"})
    await wait_for_status(api, senegal["id"], {"succeeded"})
