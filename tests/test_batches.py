"""Batch payouts (`POST /api/v1/payouts/batches`, mmo_host.batches, `mmo payouts submit`).

Over real HTTP to the host, with the M-Pesa simulator mounted in it (B2C) and a worker
running on the host's gateway, as `mmo serve` runs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from mmo_host import batches, db
from mmo_host.worker import Worker

from tests.conftest import API_KEY, OTHER_KEY

BATCHES = "/api/v1/payouts/batches"
FINAL = {"succeeded", "failed", "expired", "reversed"}


def item(n: int, *, last4: str | None = None, **changes: Any) -> dict[str, Any]:
    """A B2C payout; the number's last four digits choose the simulator's answer."""
    tail = last4 or f"{5000 + n % 4000:04d}"
    return {
        "idempotency_key": f"pay-{n}-{uuid.uuid4().hex[:8]}",
        "amount": str(100 + n % 300),
        "currency": "KES",
        "msisdn": f"+2547220{n % 10}{tail}",
        "provider": "mpesa",
        "reference": f"SALARY-{n}",
        **changes,
    }


async def submit(api, items: list[dict[str, Any]], key: str | None = None, **extra: Any):
    return await api.post(
        BATCHES,
        json={"items": items, **extra},
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        timeout=120,
    )


@contextlib.asynccontextmanager
async def running_worker(host) -> AsyncIterator[Worker]:
    worker = Worker(host.gateway, worker_id="batch-worker", concurrency=10, idle_sleep=0.05)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def wait_completed(api, batch_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = (await api.get(f"{BATCHES}/{batch_id}")).json()
        if body["status"] == "completed":
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"batch still open: {body['counts']}")
        await asyncio.sleep(0.25)


async def all_items(api, batch_id: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 70, **params} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(f"{BATCHES}/{batch_id}/items", params=query)).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_a_batch_of_several_hundred_payouts_ends_final_with_matching_counts(
    api, host, event_receiver
):
    declined = {n for n in range(300) if n % 37 == 5}  # insufficient funds at the operator
    items = [item(n, last4="0001" if n in declined else None) for n in range(300)]
    started = time.perf_counter()
    response = await submit(api, items, reference="DECEMBER")
    posted = time.perf_counter() - started
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["status"] == "processing" and batch["item_count"] == 300
    assert batch["counts"] == {"new": 300} and batch["reference"] == "DECEMBER"
    async with running_worker(host):
        done = await wait_completed(api, batch["id"])
        took = time.perf_counter() - started
        # the event is delivered by the worker: keep it running until it arrives
        deadline = time.monotonic() + 30
        while not [r for r in event_receiver.requests if b"batch.completed" in r.body]:
            assert time.monotonic() < deadline, "no batch.completed event"
            await asyncio.sleep(0.1)
    print(f"\n300-item batch: POST {posted * 1000:.0f} ms, all final after {took:.1f} s")
    assert done["open_count"] == 0 and done["completed_at"] is not None
    assert done["counts"] == {"failed": len(declined), "succeeded": 300 - len(declined)}
    assert done["failure_codes"] == {"insufficient_funds": len(declined)}
    succeeded = sum(Decimal(i["amount"]) for n, i in enumerate(items) if n not in declined)
    totals = {(t["currency"], t["status"]): t for t in done["totals"]}
    assert totals[("KES", "succeeded")]["amount"] == f"{succeeded:.2f}"
    assert totals[("KES", "succeeded")]["count"] == 300 - len(declined)
    assert {f["idempotency_key"] for f in done["failures"]} == {
        items[n]["idempotency_key"] for n in declined
    }
    # every item, paged, in the order submitted, final, and paid once at the operator
    listed = await all_items(api, batch["id"])
    assert [i["idempotency_key"] for i in listed] == [i["idempotency_key"] for i in items]
    assert all(i["payment"]["status"] in FINAL for i in listed)
    ledger = (await api.get(f"{host.url}/_sim/mpesa/_simulator/ledger")).json()["entries"]
    ids = {i["payment"]["id"] for i in listed}
    paid = [e for e in ledger if e.get("id") in ids and e["status"] == "completed"]
    assert len(paid) == 300 - len(declined)
    failed = await all_items(api, batch["id"], failures="true")
    assert len(failed) == len(declined)
    assert all(i["payment"]["failure"]["code"] == "insufficient_funds" for i in failed)
    # the event: one, signed, with the batch's final counts
    sent = [r for r in event_receiver.requests if b"batch.completed" in r.body]
    assert len(sent) == 1
    event = json.loads(sent[0].body)
    assert event["type"] == "batch.completed" and "payment" not in event
    assert event["batch"]["id"] == batch["id"]
    assert event["batch"]["counts"] == done["counts"]
    assert sent[0].headers["mmo-signature"].startswith("t=")


async def test_a_batch_with_bad_items_is_refused_whole_naming_every_one(api, host):
    used, again = item(90), item(91)
    assert (await submit(api, [used, again])).status_code == 202
    items = [
        item(0),
        item(1, amount="12.5.0"),  # not an amount
        item(2, msisdn="hello"),  # not a number
        item(3, currency="UGX"),  # M-Pesa does not pay UGX
        item(4, amount="5"),  # under the B2C minimum
        item(5, colour="red"),  # an unknown field
        {k: v for k, v in item(6).items() if k != "idempotency_key"},
        item(7, type="collection"),
        {**item(8), "idempotency_key": "same-key"},
        {**item(9), "idempotency_key": "same-key"},
        {**used, "amount": "999"},  # the key of a payment made with another body
        again,  # the same item again, in another batch
        item(12),
    ]
    response = await submit(api, items)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_batch"
    bad = {e["index"]: e for e in error["details"]["items"]}
    assert sorted(bad) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11], bad
    assert bad[1]["code"] == "invalid_request"
    assert bad[2]["code"] == "invalid_msisdn", bad[2]
    assert bad[5]["code"] == "invalid_request" and "colour" in bad[5]["message"]
    assert bad[6]["code"] == "idempotency_key_required"
    assert bad[9]["code"] == "duplicate_item_key" and bad[9]["idempotency_key"] == "same-key"
    assert bad[10]["code"] == "idempotency_key_reused"
    assert bad[11]["code"] == "item_already_submitted"
    assert all(e["message"] for e in bad.values())
    print("\nitem errors:", {i: (e["code"], e["message"][:60]) for i, e in bad.items()})
    # nothing of it was stored: only the earlier two-item batch exists
    rows = await db.fetch("SELECT count(*) AS n FROM payments")
    assert rows[0]["n"] == 2


async def test_a_replayed_batch_key_returns_the_same_batch(api, host):
    items = [item(n) for n in range(5)]
    key = f"batch-{uuid.uuid4()}"
    first = await submit(api, items, key=key)
    again = await submit(api, items, key=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    rows = await db.fetch("SELECT count(*) AS n FROM payments WHERE batch_id IS NOT NULL")
    assert rows[0]["n"] == 5
    # two at once with one new key: one batch
    twin_key = f"batch-{uuid.uuid4()}"
    twins = [item(n) for n in range(10, 13)]
    both = await asyncio.gather(submit(api, twins, key=twin_key), submit(api, twins, key=twin_key))
    assert [r.status_code for r in both] == [202, 202]
    assert both[0].json()["id"] == both[1].json()["id"]
    rows = await db.fetch("SELECT count(*) AS n FROM payments WHERE batch_id IS NOT NULL")
    assert rows[0]["n"] == 8
    other = await submit(api, items[:4], key=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    # another client's key space is its own: the same key there is another batch, and it
    # does not see this client's batch
    as_other = {"Authorization": f"Bearer {OTHER_KEY}"}
    theirs = await api.post(
        BATCHES,
        json={"items": [item(7)]},
        headers={"Idempotency-Key": key, **as_other},
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    hidden = await api.get(f"{BATCHES}/{first.json()['id']}", headers=as_other)
    assert hidden.status_code == 404
    assert (await api.get(f"{BATCHES}/not-a-batch")).status_code == 404
    bad_cursor = await api.get(f"{BATCHES}/{first.json()['id']}/items", params={"cursor": "x"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"
    # each item is a payment of this client with its own key, a replay of it included
    single = {k: v for k, v in items[0].items() if k != "idempotency_key"}
    replay = await api.post(
        "/api/v1/payments",
        json={"type": "disbursement", **single},
        headers={"Idempotency-Key": items[0]["idempotency_key"]},
    )
    assert replay.status_code == 409  # still `new`, queued: the single route says in progress
    assert replay.json()["error"]["code"] == "request_in_progress"


async def test_a_batch_needs_a_key_the_write_scope_and_at_most_10000_items(api, host):
    no_key = await api.post(BATCHES, json={"items": [item(1)]})
    assert no_key.status_code == 400
    assert no_key.json()["error"]["code"] == "idempotency_key_required"
    empty = await submit(api, [])
    assert empty.status_code == 400
    too_many = await submit(api, [item(1)] * (batches.MAX_ITEMS + 1))
    assert too_many.status_code == 400
    assert (await api.get(f"{BATCHES}/{uuid.uuid4()}")).status_code == 404
    anonymous = await api.post(
        BATCHES, json={"items": [item(1)]}, headers={"Authorization": "Bearer nope"}
    )
    assert anonymous.status_code == 401


async def test_10000_items_are_checked_and_stored_in_one_request(api, host):
    items = [item(n) for n in range(batches.MAX_ITEMS)]
    items[9_876] = item(9_876, msisdn="+2547")
    started = time.perf_counter()
    refused = await submit(api, items)
    refused_in = time.perf_counter() - started
    assert refused.status_code == 422
    assert [e["index"] for e in refused.json()["error"]["details"]["items"]] == [9_876]
    items[9_876] = item(9_876)
    started = time.perf_counter()
    response = await submit(api, items)
    took = time.perf_counter() - started
    assert response.status_code == 202, response.text[:500]
    body = response.json()
    assert body["item_count"] == 10_000 and body["counts"] == {"new": 10_000}
    stored = await db.fetch(
        """SELECT count(*) AS n, count(DISTINCT j.id) AS jobs,
                  max(j.run_at) - min(j.run_at) AS spread
           FROM payments p JOIN jobs j ON j.payment_id = p.id AND j.kind = 'send'
           WHERE p.batch_id = $1""",
        uuid.UUID(body["id"]),
    )
    assert stored[0]["n"] == stored[0]["jobs"] == 10_000
    assert stored[0]["spread"].total_seconds() == pytest.approx(9_999 * batches.SEND_SPACING)
    history = await db.fetch(
        "SELECT count(*) AS n FROM payment_transitions t JOIN payments p ON p.id = t.payment_id"
        " WHERE p.batch_id = $1 AND t.to_status = 'new'",
        uuid.UUID(body["id"]),
    )
    assert history[0]["n"] == 10_000
    size = len(json.dumps({"items": items}))
    print(
        f"\n10,000-item batch ({size / 1e6:.1f} MB): refused (1 bad item) in "
        f"{refused_in * 1000:.0f} ms, accepted and stored in {took * 1000:.0f} ms"
    )


# -- the CLI -------------------------------------------------------------------------------


async def mmo(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`mmo ...` as a subprocess, while this test's event loop keeps serving the host."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mmo_host.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_csv(path, rows: list[str]) -> str:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


async def test_mmo_payouts_submit_sends_a_csv_and_follows_it_to_the_end(api, host, tmp_path):
    run = uuid.uuid4().hex[:6]
    rows = ["idempotency_key,amount,currency,msisdn,reference,provider"]
    rows += [f"cli-{run}-{n},{100 + n},KES,+25472211{3000 + n},PAY-{n},mpesa" for n in range(29)]
    rows.append(f"cli-{run}-declined,150,KES,+254722110001,PAY-X,mpesa")
    path = write_csv(tmp_path / "salaries.csv", rows)
    args = ("payouts", "submit", path, "--url", host.url, "--interval", "0.3")
    async with running_worker(host):
        code, out, err = await mmo(*args, env={"MMO_API_KEY": API_KEY})
    print("\n" + out)
    assert "Traceback" not in err, err
    assert code == 1, (out, err)  # one item failed
    lines = out.strip().splitlines()
    assert lines[0].startswith("batch ") and "30 items accepted" in lines[0]
    progress = [line for line in lines if " final: " in line]
    assert progress[0].startswith("0/30 final:") or progress[0].split("/")[0].isdigit()
    assert progress[-1].startswith("30/30 final:")
    assert "completed: 1 failed, 29 succeeded" in out
    assert "line 31 " in out and "insufficient_funds" in out
    # the same file again is the same batch (its key is the file's digest): nothing resent
    code, again, err = await mmo(*args, "--no-wait", env={"MMO_API_KEY": API_KEY})
    assert code == 0 and again.splitlines()[0] == lines[0], (again, err)
    rows = await db.fetch("SELECT count(*) AS n FROM payments WHERE batch_id IS NOT NULL")
    assert rows[0]["n"] == 30


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        (["idempotency_key,amount,currency,msisdn"], "line 1: missing column(s) reference"),
        (
            ["idempotency_key,amount,currency,msisdn,reference,color"],
            "line 1, column 6: unknown column 'color'",
        ),
        (
            ["idempotency_key,amount,currency,msisdn,reference", "k1,100,KES,+254722000001"],
            "line 2: 4 fields",
        ),
        (
            [
                "idempotency_key,amount,currency,msisdn,reference",
                "k1,100,KES,+254722000001,R",
                "k2,,KES,+254722000002,R",
            ],
            "line 3, column amount: empty",
        ),
        (["idempotency_key,amount,currency,msisdn,reference"], "holds no items"),
        ([], "line 1: the header line is missing"),
    ],
)
async def test_mmo_payouts_submit_names_the_line_and_column_of_a_bad_csv(tmp_path, rows, said):
    code, _out, err = await mmo("payouts", "submit", write_csv(tmp_path / "bad.csv", rows))
    assert code == 2 and said in err, err
    assert "Traceback" not in err


async def test_mmo_payouts_submit_shows_the_lines_of_refused_items(api, host, tmp_path):
    rows = [
        "idempotency_key,amount,currency,msisdn,reference",
        f"ok-{uuid.uuid4().hex[:6]},100,KES,+254722000123,R1",
        f'bad-{uuid.uuid4().hex[:6]},"1,5",KES,+254722000124,R2',
        f"bad-{uuid.uuid4().hex[:6]},100,KES,not-a-number,R3",
    ]
    args = ("payouts", "submit", write_csv(tmp_path / "refused.csv", rows), "--url", host.url)
    code, _out, err = await mmo(*args, env={"MMO_API_KEY": API_KEY})
    assert code == 2 and "Traceback" not in err
    assert "batch refused: 2 of 3 items are invalid" in err, err
    assert "line 3: invalid_request" in err and "line 4: invalid_msisdn" in err, err
    code, _out, err = await mmo(*args, env={"MMO_API_KEY": "sk_test_not_a_key_0123456789"})
    assert code == 2 and "401" in err and "Traceback" not in err
    unreachable = ("payouts", "submit", args[2], "--url", "http://127.0.0.1:9")
    code, _out, err = await mmo(*unreachable)
    assert code == 2 and "cannot reach the gateway" in err and "Traceback" not in err
