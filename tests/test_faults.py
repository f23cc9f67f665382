"""Proof that nothing is lost: the gateway under operator faults and SIGKILL.

The simulators run as their own processes (`mmo simulate`), the gateway as a subprocess
(`mmo serve`, its worker inside) on the test's real Postgres. Every run is bounded in
payments and in time, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from mmo_host import db

from tests.processes import base_env, free_port, start_host, start_simulator

KEY = "sk_fault_0123456789abcdefghijkl"

# How each provider is paid in the sandbox, and how its simulator's ledger names things.
PROVIDERS: dict[str, dict[str, Any]] = {
    "mpesa": {
        "currency": "KES",
        "amount": "150",
        "prefix": "+25471234",
        "ok": {"completed"},
        "collection": ("product", "stk"),
    },
    "mtn_momo": {
        "currency": "EUR",
        "amount": "150",
        "prefix": "+4670123",
        "ok": {"SUCCESSFUL"},
        "collection": ("product", "collection"),
    },
    "airtel": {
        "currency": "UGX",
        "amount": "5000",
        "prefix": "+25675260",
        "ok": {"TS"},
        "collection": ("kind", "collection"),
    },
    "orange": {
        "currency": "XOF",
        "amount": "1500",
        "prefix": "+225070123",
        "ok": {"SUCCESS"},
        "collection": ("family", "webpay"),
    },
}


def scenario_digits(i: int) -> str:
    """Mostly successes; declines, silent operators and double callbacks mixed in."""
    return {0: "0001", 1: "9990", 2: "9991"}.get(i % 10, f"{5000 + i:04d}")


def host_env(dsn: str, port: int, sims: dict, **extra: str) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "DATABASE_URL": dsn,
            "MMO_PORT": str(port),
            "MMO_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "MMO_API_KEYS": KEY,
            "MMO_MOUNT_SIMULATORS": "false",
            "MMO_OPERATOR_TIMEOUT": "2",
            "MMO_POLL_AFTER": "1",
            "MMO_POLL_MAX_DELAY": "5",
            # a killed worker's jobs are taken again when their lease ends
            "MMO_JOB_LEASE": "10",
            "MMO_RESOLVE_AFTER": "4",
            "MMO_RECONCILE_EVERY": "0",
            "MMO_BREAKER_COOLDOWN": "2",
            "MMO_ENABLED_PROVIDERS": ",".join(sims),
        }
    )
    for name, sim in sims.items():
        env[f"MMO_{name.upper()}_BASE_URL"] = sim.url
    env.update(extra)
    return env


def sim_env(name: str) -> dict[str, str]:
    env = base_env()
    env[f"MMO_{name.upper()}_CALLBACK_DELAY"] = "0.3"
    return env


async def pay(client: httpx.AsyncClient, hosts: list, body: dict, deadline: float) -> str:
    """Send one payment, retrying with the same Idempotency-Key until it is answered."""
    key = str(uuid.uuid4())
    attempt = 0
    last = "no answer"
    while time.monotonic() < deadline:
        host = hosts[attempt % len(hosts)]
        attempt += 1
        try:
            response = await client.post(
                f"{host.url}/api/v1/payments",
                json=body,
                headers={"Idempotency-Key": key, "Authorization": f"Bearer {KEY}"},
            )
        except httpx.TransportError:  # the host is down (killed): try again
            await asyncio.sleep(0.3)
            continue
        if response.status_code == 202:
            return response.json()["id"]
        assert response.status_code in (409, 503), response.text
        last = response.text
        await asyncio.sleep(0.3)
    raise AssertionError(f"payment {body['reference']} was never answered: {last}")


async def open_payments() -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM payments GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def settle(hosts, timeout: float) -> None:
    """Wait until every payment is final, or unknown for good: its initiate answer was lost
    and its operator can only be asked with the reference that answer carried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await db.fetch(
            """SELECT count(*) AS n FROM payments WHERE status IN ('new', 'pending')
                  OR (status = 'unknown' AND NOT (provider_reference IS NULL
                                                  AND provider IN ('mpesa', 'orange')))"""
        )
        if rows[0]["n"] == 0:
            return
        await asyncio.sleep(0.5)
    stuck = await db.fetch(
        "SELECT id, provider, status, provider_reference FROM payments "
        "WHERE status IN ('new', 'pending', 'unknown') LIMIT 5"
    )
    for row in stuck:
        open_jobs = await db.fetch(
            "SELECT kind, attempts, run_at, locked_until, last_error, done_at FROM jobs "
            "WHERE payment_id = $1",
            row["id"],
        )
        print("STUCK", dict(row), [dict(j) for j in open_jobs])


def ledger_facts(name: str, ledger: dict) -> tuple[set[str], Counter]:
    """The keys the operator holds as paid, and how many times each payment was sent."""
    ok = PROVIDERS[name]["ok"]
    field, value = PROVIDERS[name]["collection"]
    entries = [e for e in ledger["entries"] if e.get(field) == value]
    paid = {e["id"] for e in entries if e.get("status") in ok}
    per_payment = Counter(e.get("order_id") or e.get("reference") or e["id"] for e in entries)
    return paid, per_payment


def our_key(name: str, row) -> str | None:
    if name in ("mtn_momo", "airtel"):
        return str(row["id"])
    if name == "orange":
        return json.loads(row["provider_data"]).get("pay_token")
    return row["provider_reference"]


async def check_everything(sims: dict, expected: dict[str, str]) -> dict[str, Any]:
    """The assertions of the crash test; returns figures to print."""
    rows = await db.fetch("SELECT * FROM payments")
    assert len(rows) == len(expected)
    figures: dict[str, Any] = {"statuses": dict(Counter(r["status"] for r in rows))}
    unknown = []
    for row in rows:
        want = expected[str(row["id"])]
        if row["status"] == "unknown":
            # only where the operator's answer was lost and its API cannot be asked by our id
            assert row["provider_reference"] is None, row["id"]
            assert row["provider"] in ("mpesa", "orange"), (row["provider"], row["id"])
            unknown.append(row)
            continue
        if row["status"] not in ("succeeded", "failed", "expired"):
            jobs_left = await db.fetch("SELECT * FROM jobs WHERE payment_id = $1", row["id"])
            history = await db.fetch(
                "SELECT * FROM payment_transitions WHERE payment_id = $1 ORDER BY id", row["id"]
            )
            raise AssertionError(
                f"{row['provider']} payment {row['id']} is {row['status']}: "
                f"history {[(h['to_status'], h['source']) for h in history]}, "
                f"jobs {[(j['kind'], j['attempts'], j['done_at'], j['last_error']) for j in jobs_left]}"
            )
        if want == "decline":
            assert row["status"] in ("failed", "expired"), (row["provider"], row["id"])
        # a "succeed" number may still fail under injected faults: what matters is that
        # the gateway agrees with the operator's ledger, checked below
    figures["unknown, for a person"] = len(unknown)
    figures["failures"] = dict(
        Counter(f"{r['provider']}:{r['failure_code']}" for r in rows if r["status"] == "failed")
    )

    for name, sim in sims.items():
        ledger = sim.ledger()
        paid, per_payment = ledger_facts(name, ledger)
        ours = [r for r in rows if r["provider"] == name]
        succeeded_here = {our_key(name, r) for r in ours if r["status"] == "succeeded"}
        # nothing succeeded here that the operator does not hold as paid
        assert succeeded_here <= paid, (name, succeeded_here - paid)
        # nothing paid at the operator that we do not know, but the unknown ones
        missing = paid - succeeded_here
        unknown_here = [r for r in unknown if r["provider"] == name]
        assert len(missing) <= len(unknown_here), (name, missing)
        # no payment sent twice to the operator
        assert max(per_payment.values()) == 1, (name, per_payment.most_common(3))
        # every callback the gateway acknowledged is stored
        acknowledged = len([c for c in ledger["callbacks_sent"] if 200 <= c.get("status", 0) < 300])
        stored = (
            await db.fetchrow("SELECT count(*) AS n FROM callbacks WHERE provider = $1", name)
        )["n"]
        assert stored >= acknowledged, (name, stored, acknowledged)
        figures[f"{name}: paid at operator"] = len(paid)

    # one event per payment state, no more, no fewer
    transitions = await db.fetch("SELECT payment_id, to_status FROM payment_transitions")
    eventlog = await db.fetch("SELECT payment_id, type FROM outbox_events")
    states = Counter((r["payment_id"], f"payment.{r['to_status']}") for r in transitions)
    states = Counter(
        {(p, t.replace("payment.new", "payment.created")): n for (p, t), n in states.items()}
    )
    emitted = Counter((r["payment_id"], r["type"]) for r in eventlog)
    assert emitted == states
    assert max(emitted.values()) == 1
    return figures


async def test_crash_test_nothing_is_lost(clean_db, migrated_db, tmp_path):
    sims = {name: start_simulator(name, tmp_path, sim_env(name)) for name in PROVIDERS}
    host = None
    try:
        for i, sim in enumerate(sims.values()):
            sim.faults(
                error_rate=0.05,
                timeout_rate=0.03,
                timeout_seconds=4,
                drop_callback_rate=0.2,
                duplicate_callback_rate=0.2,
                seed=11 + i,
            )
        port = free_port()
        host = start_host(tmp_path, host_env(migrated_db, port, sims))
        expected: dict[str, str] = {}
        accepted = 0
        kills = 0
        deadline = time.monotonic() + 300
        semaphore = asyncio.Semaphore(8)

        async def one(name: str, i: int, client: httpx.AsyncClient) -> None:
            nonlocal accepted
            spec = PROVIDERS[name]
            last4 = scenario_digits(i)
            body = {
                "type": "collection",
                "amount": spec["amount"],
                "currency": spec["currency"],
                "msisdn": spec["prefix"] + last4,
                "provider": name,
                "reference": f"F{name[:2]}{i}",
            }
            async with semaphore:
                pid = await pay(client, [host], body, deadline)
            expected[pid] = "decline" if last4 == "0001" else "succeed"
            accepted += 1

        async def killer() -> None:
            nonlocal kills
            for threshold in (100, 200):
                while accepted < threshold:  # noqa: ASYNC110 - a plain counter
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(host.kill)
                kills += 1
                await asyncio.sleep(0.5)
                await asyncio.to_thread(host.restart)

        async with httpx.AsyncClient(timeout=15) as client:
            work = [one(name, i, client) for i in range(75) for name in PROVIDERS]
            await asyncio.gather(killer(), *work)
        assert kills == 2 and len(expected) == 300

        await settle([host], timeout=240)
        # repair what polling could not finish
        await asyncio.to_thread(_reconcile, host.env)
        await settle([host], timeout=30)
        figures = await check_everything(sims, expected)
        print("\ncrash test:", json.dumps(figures, indent=2))
    finally:
        if host is not None:
            host.stop()
        for sim in sims.values():
            sim.stop()


def _reconcile(env: dict[str, str]) -> None:
    import subprocess

    from tests.processes import MMO

    subprocess.run([*MMO, "reconcile"], env=env, timeout=120, capture_output=True, check=False)


async def test_an_operator_outage_queues_payments_until_it_ends(clean_db, migrated_db, tmp_path):
    sims = {"mtn_momo": start_simulator("mtn_momo", tmp_path, sim_env("mtn_momo"))}
    port = free_port()
    host = start_host(tmp_path, host_env(migrated_db, port, sims, MMO_BREAKER_THRESHOLD="3"))
    try:
        sims["mtn_momo"].faults(error_rate=1.0, error_status=503)
        spec = PROVIDERS["mtn_momo"]
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=15) as client:
            ids = [
                await pay(
                    client,
                    [host],
                    {
                        "type": "collection",
                        "amount": spec["amount"],
                        "currency": spec["currency"],
                        "msisdn": spec["prefix"] + f"{6000 + i:04d}",
                        "provider": "mtn_momo",
                        "reference": f"OUT{i}",
                    },
                    deadline,
                )
                for i in range(10)
            ]
            statuses = Counter(r["status"] for r in await db.fetch("SELECT status FROM payments"))
            assert statuses == {"new": 10}  # queued, not failed
            breakers = (
                await client.get(
                    f"{host.url}/api/v1/admin/breakers", headers={"Authorization": f"Bearer {KEY}"}
                )
            ).json()
            assert {b["key"]: b["state"] for b in breakers["data"]}["mtn_momo"] != "closed"

            sims["mtn_momo"].faults()  # the outage ends
            await settle([host], timeout=90)
            rows = await db.fetch("SELECT id, status FROM payments")
            assert {r["status"] for r in rows} == {"succeeded"}, Counter(r["status"] for r in rows)
            assert {str(r["id"]) for r in rows} == set(ids)
            breakers = (
                await client.get(
                    f"{host.url}/api/v1/admin/breakers", headers={"Authorization": f"Bearer {KEY}"}
                )
            ).json()
            assert {b["key"]: b["state"] for b in breakers["data"]}["mtn_momo"] == "closed"
        paid, per_payment = ledger_facts("mtn_momo", sims["mtn_momo"].ledger())
        assert paid == set(ids) and max(per_payment.values()) == 1
    finally:
        host.stop()
        sims["mtn_momo"].stop()


async def test_two_hosts_and_two_workers_never_double_anything(
    clean_db, migrated_db, redis_url, tmp_path
):
    sims = {name: start_simulator(name, tmp_path, sim_env(name)) for name in PROVIDERS}
    hosts = []
    try:
        for i, sim in enumerate(sims.values()):
            sim.faults(duplicate_callback_rate=0.5, drop_callback_rate=0.2, seed=40 + i)
        for label in ("host-a", "host-b"):
            port = free_port()
            hosts.append(
                start_host(
                    tmp_path, host_env(migrated_db, port, sims, REDIS_URL=redis_url), label=label
                )
            )
        deadline = time.monotonic() + 120
        expected = {}
        async with httpx.AsyncClient(timeout=15) as client:
            for i in range(12):
                for n, name in enumerate(PROVIDERS):
                    spec = PROVIDERS[name]
                    body = {
                        "type": "collection",
                        "amount": spec["amount"],
                        "currency": spec["currency"],
                        "provider": name,
                        "msisdn": spec["prefix"] + f"{7000 + i:04d}",
                        "reference": f"TW{n}{i}",
                    }
                    # each payment is sent to one host; its operator calls that host back
                    expected[await pay(client, [hosts[(i + n) % 2]], body, deadline)] = name
            await settle(hosts, timeout=120)
            # every callback the operators sent is delivered again, to the other host
            stored = await db.fetch("SELECT * FROM callbacks WHERE flag IS NULL")
            for callback in stored:
                headers = {
                    k: v
                    for k, v in json.loads(callback["headers"]).items()
                    if k in ("content-type",) or k.startswith("x-")
                }
                query = json.loads(callback["query"])
                for host in hosts:
                    await client.request(
                        callback["method"],
                        f"{host.url}{callback['path']}",
                        params=query,
                        content=bytes(callback["body"]),
                        headers=headers,
                    )
        await settle(hosts, timeout=30)
        rows = await db.fetch("SELECT * FROM payments")
        assert len(rows) == len(expected) == 48
        # no double transitions: each status reached once per payment
        transitions = await db.fetch("SELECT payment_id, to_status FROM payment_transitions")
        assert max(Counter((t["payment_id"], t["to_status"]) for t in transitions).values()) == 1
        events = await db.fetch("SELECT payment_id, type FROM outbox_events")
        assert max(Counter((e["payment_id"], e["type"]) for e in events).values()) == 1
        # no duplicate operator calls: each payment reached its operator once
        for name, sim in sims.items():
            _, per_payment = ledger_facts(name, sim.ledger())
            assert max(per_payment.values()) == 1, (name, per_payment.most_common(2))
        duplicates = await db.fetchrow(
            "SELECT count(*) AS n FROM callbacks WHERE flag = 'duplicate'"
        )
        assert duplicates["n"] >= len(stored)  # the replays changed nothing
    finally:
        for host in hosts:
            host.stop()
        for sim in sims.values():
            sim.stop()
