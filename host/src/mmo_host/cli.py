"""The `mmo` command.

mmo serve [--host H] [--port P] [--workers N]  run the gateway (worker included)
mmo migrate                       apply database migrations
mmo providers [--json]            list installed providers
mmo simulate PROVIDER [--port P]  run one provider's simulator alone
mmo setup PROVIDER [--account A]  run a provider's one-time setup (for one account)
mmo keys create|list|rotate|revoke  API clients' keys (docs/security.md)
mmo payouts submit FILE.csv       submit a payout batch to a running host and follow it
mmo bench [--quick] [--json PATH]  the gateway under load (docs/performance.md)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from mmo_core.errors import MmoError
from mmo_core.settings import env_prefix

from mmo_host import database, keys, logs
from mmo_host.config import HostConfig, read_log_format
from mmo_host.runtime import open_database, open_gateway


def _logging(verbose: bool = False, log_format: str | None = None) -> None:
    """One line per record on stderr, JSON or console (MMO_LOG_FORMAT; mmo_host.logs).

    httpx logs whole URLs, and callback URLs carry secret tokens: it stays at WARNING.
    """
    logs.configure(log_format or read_log_format(os.environ), verbose=verbose)


# `mmo serve -v` for every process of `--workers N` (each reads it from the environment)
_SERVE_VERBOSE = "MMO_SERVE_VERBOSE"


class _ProcessHeader:
    """`X-Mmo-Process: <pid>` on every answer: which host process served it (with
    `--workers N`, or several hosts behind a balancer, to see the load spread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.header = (b"x-mmo-process", str(os.getpid()).encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, sending)


def serve_app() -> Any:
    """The app of one `mmo serve` process, from the environment (uvicorn's factory:
    `mmo_host.cli:serve_app`, also what each process of `--workers N` builds)."""
    from mmo_host.app import create_app

    config = HostConfig.from_env()
    app = create_app(config)
    # again: the app factory set up Litestar's logging
    _logging(os.environ.get(_SERVE_VERBOSE) == "1", config.log_format)
    _tune_gc()
    return _ProcessHeader(app)


# Python's default first-generation threshold (700 allocations) ran the cycle collector
# every few requests: 7% of the host's CPU under load (docs/performance.md). Garbage
# here is mostly acyclic (freed by reference counting), so collecting ten times less
# often costs little memory.
GC_THRESHOLDS = (7_000, 20, 20)


def _tune_gc() -> None:
    """What was built at start-up (modules, the app, the plugins) is moved out of the
    collector's sight (`gc.freeze`), and the first generation is collected less often."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _server_options(config: HostConfig) -> dict[str, Any]:
    import importlib.util

    return {
        "host": config.host,
        "port": config.port,
        "log_level": "info",
        "log_config": None,  # uvicorn's lines go through ours (one format)
        "access_log": False,  # each request has its line already (mmo_host.metrics)
        # proxy_headers off: uvicorn would believe X-Forwarded-For from any local peer;
        # the gateway reads it itself, from MMO_TRUSTED_PROXIES only (host/sources.py)
        "proxy_headers": False,
        # C parsers and loop where installed (pure-Python h11 took 10-34% of the host)
        "http": "httptools" if importlib.util.find_spec("httptools") else "auto",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    }


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # set in the environment, so that every process of --workers reads the same
    if args.host:
        os.environ["MMO_HOST"] = args.host
    if args.port:
        os.environ["MMO_PORT"] = str(args.port)
    if args.verbose:
        os.environ[_SERVE_VERBOSE] = "1"
    config = HostConfig.from_env()
    if config.sandbox and config.api_keys == ("sk_sandbox_mmo",):
        logging.getLogger("mmo").warning(
            "sandbox: using the default API key 'sk_sandbox_mmo' (set MMO_API_KEYS to change it)"
        )
    options = _server_options(config)
    workers = args.workers
    if workers < 1:
        raise SystemExit("mmo: --workers must be 1 or more")
    if workers == 1:
        uvicorn.run(serve_app(), **options)
        return 0
    with _shared_by_workers(config) as environ:
        os.environ.update(environ)
        logging.getLogger("mmo").info("serving with %d host processes", workers)
        uvicorn.run(
            "mmo_host.cli:serve_app",
            factory=True,
            workers=workers,
            # a process imports the whole gateway before it answers the supervisor's
            # pings: seconds on a loaded machine (uvicorn's default, 5 s, restarts it)
            timeout_worker_healthcheck=60,
            **options,
        )
    return 0


@contextlib.contextmanager
def _shared_by_workers(config: HostConfig) -> Iterator[dict[str, str]]:
    """What the N processes of `--workers N` must not each start for themselves, started
    once here and handed to them through the environment: the embedded PostgreSQL (one
    server on one data directory), the migrations (applied once, before any process
    serves), and in the sandbox the mounted simulators (one simulator's state, not one
    per process: a payment sent through one process is asked about through another)."""
    from mmo_host.database import EmbeddedPostgres

    environ: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        dsn = config.database_url
        if dsn is None:
            embedded = EmbeddedPostgres(config.data_dir)
            dsn = embedded.start()
            stack.callback(embedded.stop)
            environ["DATABASE_URL"] = dsn
        if config.auto_migrate:

            async def migrate() -> None:
                shared = dataclasses.replace(config, database_url=dsn)
                async with open_database(shared, migrate=True):
                    pass

            asyncio.run(migrate())
            environ["MMO_AUTO_MIGRATE"] = "false"
        if config.sandbox and config.mount_simulators:
            environ.update(stack.enter_context(_simulators_alone(config)))
        yield environ


@contextlib.contextmanager
def _simulators_alone(config: HostConfig) -> Iterator[dict[str, str]]:
    """The sandbox's simulators in one server of this (the supervising) process, on a
    free loopback port; the environment that points every host process at them."""
    import socket
    import threading
    import time

    import uvicorn
    from litestar import Litestar

    from mmo_host import simulators
    from mmo_host.app import build_registry
    from mmo_host.gateway import Gateway

    gateway = Gateway(config, build_registry(config))
    mounts, lifespans, environ = [], [], {"MMO_MOUNT_SIMULATORS": "false"}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    for name, provider in gateway.registry.providers.items():
        # as the host mounts them: one simulator for the accounts without a base URL
        simulated = {
            account.name: account.settings
            for account in gateway.accounts[name].values()
            if not account.settings.base_url
        }
        if not provider.implements("simulator_app") or not simulated:
            continue
        simulator = provider.call_sync(
            "simulator_app", settings=next(iter(simulated.values())), accounts=simulated
        )
        mounts.append(simulators.mount(f"/_sim/{name}", simulator, name))
        lifespans.append(lambda _app, sim=simulator: simulators.lifespan(sim))
        # the flat variable: every account's starting value, for those that set none
        environ[f"{env_prefix(name)}BASE_URL"] = f"http://127.0.0.1:{port}/_sim/{name}"
    server = uvicorn.Server(
        uvicorn.Config(
            Litestar(route_handlers=mounts, lifespan=lifespans),
            log_level="warning",
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="simulators", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("mmo: the sandbox's simulators did not start")
        time.sleep(0.05)
    logging.getLogger("mmo").info("sandbox simulators on http://127.0.0.1:%d/_sim/", port)
    try:
        yield environ
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def cmd_migrate(_: argparse.Namespace) -> int:
    config = HostConfig.from_env()

    async def run() -> list[str]:
        async with open_database(config, migrate=False):
            return await database.migrate()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _gateway(config: HostConfig):
    from mmo_host.app import build_registry
    from mmo_host.gateway import Gateway

    return Gateway(config, build_registry(config))


def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from mmo_host.worker import Worker

    config = HostConfig.from_env()

    async def run() -> None:
        async with open_gateway(_gateway(config), migrate=config.auto_migrate) as gateway:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await Worker(gateway, concurrency=args.concurrency, lease=config.job_lease).run(stop)

    asyncio.run(run())
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    import datetime as dt

    from mmo_host.reconcile import reconcile

    config = HostConfig.from_env()
    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since)
        except ValueError:
            raise SystemExit(
                f"mmo: --since must be an ISO date or time, not {args.since!r}"
            ) from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)

    async def run():
        async with open_gateway(_gateway(config), migrate=False) as gateway:
            if not sys.stderr.isatty():
                return await reconcile(gateway, since)
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("reconciling", total=None)
                return await reconcile(
                    gateway,
                    since,
                    lambda done, total: bar.update(task, completed=done, total=total),
                )

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"checked {report.checked} payment(s): {len(report.changed)} changed, "
            f"{len(report.disagreements)} disagreement(s), {len(report.errors)} error(s)"
        )
        for item in report.changed:
            print(f"  changed   {item['id']}: {item['from']} -> {item['to']}")
        for item in report.disagreements:
            print(f"  DISAGREES {item['id']}: ours {item['ours']}, operator {item['operator']}")
        for item in report.errors:
            print(f"  error     {item['id']}: {item['error']}")
    return 1 if report.disagreements else 0


def cmd_providers(args: argparse.Namespace) -> int:
    from mmo_host.app import build_registry
    from mmo_host.gateway import Gateway

    config = HostConfig.from_env()
    gateway = Gateway(config, build_registry(config))
    registry = gateway.registry
    described = [
        p | {"accounts": [a.describe() for a in gateway.accounts[p["name"]].values()]}
        for p in registry.describe()
    ]
    failures = [{"name": f.name, "error": f.error} for f in registry.failures]
    failures += [{"name": n, "error": e} for n, e in gateway.configuration_errors.items()]
    if args.json:
        print(json.dumps({"providers": described, "failures": failures}, indent=2, default=str))
        return 0
    if not described:
        print("no providers installed")
    for p in described:
        print(f"{p['name']:<12} {p['version'] or '-':<8} {p['display_name']}")
        print(f"{'':<12} countries:  {', '.join(p['countries'])}")
        print(f"{'':<12} currencies: {', '.join(p['currencies'])}")
        print(f"{'':<12} operations: {', '.join(p['operations'])}")
        for account in p["accounts"]:
            markets = ", ".join(account["markets"]) or "all"
            operations = ", ".join(account["operations"]) or "all"
            print(
                f"{'':<12} account {account['name']}: markets {markets}; "
                f"operations {operations}; priority {account['priority']}"
            )
    for f in failures:
        print(f"{f['name']:<12} FAILED TO LOAD: {f['error']}", file=sys.stderr)
    return 0


def _provider(name: str):
    from mmo_host.app import build_registry
    from mmo_host.gateway import Gateway

    config = HostConfig.from_env()
    registry = build_registry(config)
    if name not in registry.providers:
        known = ", ".join(sorted(registry.providers)) or "none"
        raise SystemExit(f"mmo: unknown provider {name!r} (installed: {known})")
    gateway = Gateway(config, registry)
    if name not in gateway.accounts:
        raise SystemExit(f"mmo: provider {name!r}: {gateway.configuration_errors.get(name)}")
    return gateway, registry.providers[name]


def cmd_simulate(args: argparse.Namespace) -> int:
    import uvicorn

    gateway, provider = _provider(args.provider)
    if not provider.implements("simulator_app"):
        raise SystemExit(f"mmo: provider {args.provider!r} ships no simulator")
    accounts = {a.name: a.settings for a in gateway.accounts[provider.name].values()}
    app = provider.call_sync(
        "simulator_app", settings=next(iter(accounts.values())), accounts=accounts
    )
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="info", log_config=None, access_log=False
    )
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    gateway, provider = _provider(args.provider)
    if not provider.implements("setup"):
        print(f"provider {args.provider!r} needs no setup")
        return 0
    accounts = gateway.accounts[provider.name]
    if args.account is not None and args.account not in accounts:
        raise SystemExit(
            f"mmo: provider {args.provider!r} has no account {args.account!r} "
            f"(accounts: {', '.join(accounts)})"
        )

    async def run():
        await gateway.open()
        try:
            context = gateway.context(provider.name, args.account)
            return await provider.call("setup", context=context)
        finally:
            await gateway.close()

    report = asyncio.run(run())
    for line in report.lines:
        print(line)
    for key, value in report.settings.items():
        print(f"{key}={value}")
    return 0


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _print_issued(issued: keys.IssuedKey, as_json: bool) -> None:
    if as_json:
        print(json.dumps(msgspec.to_builtins(issued)))
        return
    print(f"{issued.id}  client {issued.client}  scopes {', '.join(issued.scopes)}")
    print(f"  expires {_when(issued.expires_at)}")
    print(issued.key)
    print("(shown once: store it now; only its hash is kept)", file=sys.stderr)


async def _keys_command(args: argparse.Namespace, config: HostConfig) -> None:
    if args.keys_command == "create":
        expires = keys.parse_duration(args.expires_in) if args.expires_in else None
        issued = await keys.create(
            args.client, args.scope, live=config.environment == "production", expires_in=expires
        )
        _print_issued(issued, args.json)
    elif args.keys_command == "list":
        listed = await keys.list_keys(args.client)
        if args.json:
            print(json.dumps(msgspec.to_builtins(listed)))
        for k in [] if args.json else listed:
            print(
                f"{k.id}  {k.client:<16} {k.prefix}…  {','.join(k.scopes):<36} {k.state:<8} "
                f"created {_when(k.created_at)}  used {_when(k.last_used_at)}  "
                f"expires {_when(k.expires_at)}"
            )
    elif args.keys_command == "rotate":
        grace = keys.parse_duration(args.expire_old_in) if args.expire_old_in else None
        issued, old = await keys.rotate(args.key_id, expire_old_in=grace)
        _print_issued(issued, args.json)
        print(f"{old.id} expires {_when(old.expires_at)}", file=sys.stderr)
    else:
        revoked = await keys.revoke(args.key_id)
        print(f"{revoked.id} revoked {_when(revoked.revoked_at)}")


def cmd_keys(args: argparse.Namespace) -> int:
    config = HostConfig.from_env()

    async def run() -> None:
        # piccolo reports migrations on stdout, which is the command's answer (the key)
        async with contextlib.AsyncExitStack() as stack:
            with contextlib.redirect_stdout(sys.stderr):
                await stack.enter_async_context(open_database(config, migrate=config.auto_migrate))
            await _keys_command(args, config)

    asyncio.run(run())
    return 0


def _keys_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("keys", help="API clients' keys: create, list, rotate, revoke")
    commands = parser.add_subparsers(dest="keys_command", required=True)
    create = commands.add_parser("create", help="a new key (printed once)")
    create.add_argument("--client", required=True, help="the client's name (created when new)")
    create.add_argument(
        "--scope", action="append", required=True, choices=keys.SCOPES, help="repeat for more"
    )
    create.add_argument("--expires-in", help="lifetime: seconds, or 30m, 24h, 90d")
    create.add_argument("--json", action="store_true", help="machine-readable output")
    listing = commands.add_parser("list", help="every key: prefix, scopes, state, dates")
    listing.add_argument("--client", help="only this client's keys")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    rotate = commands.add_parser("rotate", help="a new key for the same client and scopes")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--expire-old-in", help="the old key keeps working this long (seconds, or 30m, 24h)"
    )
    rotate.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = commands.add_parser("revoke", help="the key stops working")
    revoke.add_argument("key_id")
    parser.set_defaults(func=cmd_keys)


class _PayoutsRefused(Exception):
    """What `mmo payouts` prints before it exits 2."""


def _payouts_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("MMO_URL")
    if not url:
        host, port = os.environ.get("MMO_HOST", "127.0.0.1"), os.environ.get("MMO_PORT", "8000")
        url = f"http://{host}:{port}"
    return url.rstrip("/")


def _payouts_api(args: argparse.Namespace):
    import httpx

    url = _payouts_url(args)
    key = args.api_key or os.environ.get("MMO_API_KEY")
    if not key:
        keys_env = [k.strip() for k in os.environ.get("MMO_API_KEYS", "").split(",") if k.strip()]
        key = keys_env[0] if keys_env else "sk_sandbox_mmo"  # the sandbox's default key
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def _payouts_answer(response) -> dict:
    """The JSON of a 2xx answer; otherwise `_PayoutsRefused` with the gateway's error."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success:
        return body
    error = body.get("error", {}) if isinstance(body, dict) else {}
    raise _PayoutsRefused(
        f"the gateway answered {response.status_code} "
        f"{error.get('code', '')}: {error.get('message', response.text[:200])}"
    )


def _payouts_progress(client, batch: dict, interval: float) -> dict:
    """Follow the batch until every item is final: a progress bar on a terminal, a line
    per change otherwise."""
    import time

    def fetch() -> dict:
        return _payouts_answer(client.get(f"/api/v1/payouts/batches/{batch['id']}"))

    def described(b: dict) -> str:
        return ", ".join(f"{n} {status}" for status, n in b["counts"].items())

    total = batch["item_count"]
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns) as bar:
            task = bar.add_task(described(batch), total=total)
            while batch["status"] != "completed":
                time.sleep(interval)
                batch = fetch()
                bar.update(
                    task, completed=total - batch["open_count"], description=described(batch)
                )
        return batch
    shown = None
    while True:
        line = f"{total - batch['open_count']}/{total} final: {described(batch)}"
        if line != shown:
            print(line, flush=True)
            shown = line
        if batch["status"] == "completed":
            return batch
        time.sleep(interval)
        batch = fetch()


def cmd_payouts(args: argparse.Namespace) -> int:
    import hashlib

    import httpx

    from mmo_host.batches import CsvProblem, read_csv

    try:
        csv_batch = read_csv(args.file)
    except CsvProblem as exc:
        print(f"mmo: {exc}", file=sys.stderr)
        return 2
    line_of = {
        item["idempotency_key"]: n for item, n in zip(csv_batch.items, csv_batch.lines, strict=True)
    }
    body: dict = {"items": csv_batch.items}
    if args.reference:
        body["reference"] = args.reference
    # the file's own digest by default: submitting the same file again is the same batch
    key = args.idempotency_key or hashlib.sha256(json.dumps(body).encode()).hexdigest()
    try:
        with _payouts_api(args) as client:
            response = client.post(
                "/api/v1/payouts/batches", json=body, headers={"Idempotency-Key": key}
            )
            if response.status_code == 422 and "invalid_batch" in response.text:
                error = response.json().get("error", {})
                print(f"mmo: batch refused: {error.get('message')}", file=sys.stderr)
                for bad in (error.get("details") or {}).get("items", []):
                    line = csv_batch.lines[bad["index"]]
                    print(f"  line {line}: {bad['code']}: {bad['message']}", file=sys.stderr)
                return 2
            batch = _payouts_answer(response)
            print(f"batch {batch['id']}: {batch['item_count']} items accepted", flush=True)
            if args.no_wait:
                return 0
            batch = _payouts_progress(client, batch, args.interval)
    except KeyboardInterrupt:
        print("\nmmo: stopped following; the batch goes on (GET /api/v1/payouts/batches/{id})")
        return 130
    except httpx.HTTPError as exc:
        print(f"mmo: cannot reach the gateway at {_payouts_url(args)}: {exc}", file=sys.stderr)
        return 2
    except _PayoutsRefused as exc:
        print(f"mmo: {exc}", file=sys.stderr)
        return 2
    print(
        f"batch {batch['id']} completed: "
        + ", ".join(f"{n} {s}" for s, n in batch["counts"].items())
    )
    for code, n in batch["failure_codes"].items():
        print(f"  {n} failed: {code}")
    for item in batch["failures"]:
        failure = item["payment"].get("failure") or {}
        line = line_of.get(item["idempotency_key"], "?")
        said = f"{failure.get('code')}: {failure.get('message')}"
        print(f"  line {line} ({item['idempotency_key']}): {said}")
    return 1 if batch["failure_codes"] else 0


def _payouts_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("payouts", help="payout batches: submit a CSV file and follow it")
    commands = parser.add_subparsers(dest="payouts_command", required=True)
    submit = commands.add_parser("submit", help="submit a CSV file as one batch (docs/api.md)")
    submit.add_argument(
        "file", help="CSV: idempotency_key,amount,currency,msisdn,reference[,provider,account]"
    )
    submit.add_argument("--url", help="the gateway (MMO_URL, default http://MMO_HOST:MMO_PORT)")
    submit.add_argument("--api-key", help="an API key with payments:write (MMO_API_KEY)")
    submit.add_argument("--reference", help="the batch's own reference")
    submit.add_argument("--idempotency-key", help="the batch's key (default: the file's digest)")
    submit.add_argument("--no-wait", action="store_true", help="answer with the batch id only")
    submit.add_argument("--interval", type=float, default=1.0, help="seconds between two looks")
    parser.set_defaults(func=cmd_payouts)


def cmd_bench(args: argparse.Namespace) -> int:
    from mmo_host.bench import Options, run, scale_out
    from mmo_host.bench.report import markdown, scale_out_markdown

    options = Options.quick_defaults() if args.quick else Options()
    for name in (
        "latency_ms",
        "step_seconds",
        "burst",
        "callbacks",
        "callback_seconds",
        "soak_payments",
        "soak_seconds",
        "soak_rate",
        "drain_seconds",
        "pgbench_seconds",
        "pgbench_clients",
        "workers",
        "hosts",
        "data_dir",
    ):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    if args.rates:
        options.rates = [float(r) for r in args.rates.split(",")]
    if options.hosts < 1 or (options.workers is not None and options.workers < 1):
        raise SystemExit("mmo bench: --hosts and --workers must be 1 or more")
    for setting in args.env or ():
        name, sep, value = setting.partition("=")
        if not sep or not name.startswith("MMO_"):
            raise SystemExit(f"mmo bench: --env takes MMO_NAME=VALUE, not {setting!r}")
        options.host_env[name] = value
    options.redis = args.redis
    options.keep = args.keep
    options.progress = not args.no_progress
    if args.scale_out:
        result = scale_out(options)
        table = scale_out_markdown(result)
    else:
        result = run(options)
        table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    return 0


def _bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="the gateway under load (docs/performance.md)")
    bench.add_argument("--quick", action="store_true", help="everything small (CI smoke)")
    bench.add_argument("--json", help="write the result as JSON here")
    bench.add_argument("--markdown", help="write the table here too")
    bench.add_argument("--latency-ms", type=int, help="the simulator's latency (default 3)")
    bench.add_argument("--rates", help="the stepped rates, per second (default 25,50,75,100,150)")
    bench.add_argument("--step-seconds", type=float, help="seconds per step (default 15)")
    bench.add_argument("--burst", type=int, help="initiations at once (default 1000)")
    bench.add_argument("--callbacks", type=int, help="callbacks in the burst (default 10000)")
    bench.add_argument(
        "--callback-seconds", type=float, help="time limit to make their payments (default 120)"
    )
    bench.add_argument("--soak-payments", type=int, help="soak payments (default 100000)")
    bench.add_argument("--soak-seconds", type=float, help="soak time limit (default 300)")
    bench.add_argument("--soak-rate", type=float, help="soak rate (default 80%% of the knee)")
    bench.add_argument("--drain-seconds", type=float, help="wait for final states (default 30)")
    bench.add_argument("--pgbench-seconds", type=int, help="each pgbench run (default 15)")
    bench.add_argument("--pgbench-clients", type=int, help="pgbench clients (default 8)")
    bench.add_argument("--workers", type=int, help="passed to mmo serve --workers")
    bench.add_argument(
        "--hosts", type=int, help="separate mmo serve hosts on one Postgres and Redis (default 1)"
    )
    bench.add_argument(
        "--env", action="append", metavar="MMO_NAME=VALUE", help="a setting of every host"
    )
    bench.add_argument(
        "--scale-out",
        action="store_true",
        help="the stepped rates on one process, --workers 2, and two hosts: compared",
    )
    bench.add_argument("--redis", action="store_true", help="run a Redis for the host too")
    bench.add_argument("--data-dir", help="the bench's directory (default: a temporary one)")
    bench.add_argument("--keep", action="store_true", help="keep the temporary directory")
    bench.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmo", description="Mobile-money gateway")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to listen on (MMO_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (MMO_PORT, default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="host processes on this machine, sharing the port (default 1; docs/deployment.md)",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    worker = sub.add_parser("worker", help="run the background worker alone")
    worker.add_argument("--concurrency", type=int, default=10, help="jobs run at once")
    worker.set_defaults(func=cmd_worker)

    rec = sub.add_parser("reconcile", help="compare payments with the operators and repair")
    rec.add_argument("--since", help="also check final payments changed since (ISO date/time)")
    rec.add_argument("--json", action="store_true", help="machine-readable report")
    rec.set_defaults(func=cmd_reconcile)

    providers = sub.add_parser("providers", help="list installed providers")
    providers.add_argument("--json", action="store_true", help="machine-readable output")
    providers.set_defaults(func=cmd_providers)

    simulate = sub.add_parser("simulate", help="run a provider's simulator alone")
    simulate.add_argument("provider")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9000)
    simulate.set_defaults(func=cmd_simulate)

    setup = sub.add_parser("setup", help="run a provider's one-time setup")
    setup.add_argument("provider")
    setup.add_argument("--account", help="one of the provider's accounts (default: its first)")
    setup.set_defaults(func=cmd_setup)

    _keys_parser(sub)
    _payouts_parser(sub)
    _bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _logging(args.verbose)
        return args.func(args)
    except MmoError as exc:
        print(f"mmo: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
