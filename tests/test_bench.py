"""`mmo bench --quick` end to end (issue 17), run once as `mmo` is run from a checkout, and
the pieces of its pgbench capture on a log of known shape.

The figures are printed, never asserted as timings: what is asserted is that every
scenario reports every figure, that no payment was lost or left open, and that the
database ceilings and their ratios were measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmo_host.bench import pgbench
from mmo_host.bench.load import percentile
from mmo_host.bench.report import markdown

SCENARIO_FIELDS = (
    "offered_rate",
    "achieved_rate",
    "completions_per_s",
    "api_latency_ms",
    "gateway_added_ms",
    "time_to_final_ms",
    "host_cpu_ms_per_lifecycle",
    "postgres_cpu_ms_per_lifecycle",
    "peak_rss_mb",
    "errors",
    "lost",
    "left_open",
    "payments",
)
FIXED_SCENARIOS = ("overload", "burst_initiations", "burst_callbacks", "status_reads", "soak")


def bench(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`mmo bench ARGS` as it is run from a checkout."""
    return subprocess.run(
        [sys.executable, "-m", "mmo_host.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("bench")
    result, table = out / "bench.json", out / "bench.md"
    done = bench("--quick", "--json", str(result), "--markdown", str(table), "--no-progress")
    print(done.stdout)  # the table: figures for the reader, not asserted
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(result.read_text()), table.read_text(), done.stdout


def test_every_scenario_reports_every_figure(quick):
    result, _, _ = quick
    scenarios = result["scenarios"]
    steps = [name for name in scenarios if name.startswith("step_")]
    assert len(steps) >= 2, scenarios.keys()
    for name in [*steps, *FIXED_SCENARIOS]:
        assert name in scenarios, name
        figures = scenarios[name]
        missing = [f for f in SCENARIO_FIELDS if f not in figures]
        assert not missing, f"{name} lacks {missing}"
        assert figures["payments"] > 0, name
        for latency in ("api_latency_ms", "gateway_added_ms", "time_to_final_ms"):
            assert set(figures[latency]) >= {"p50", "p95", "p99"}, (name, latency)
            assert figures[latency]["p99"] is not None, (name, latency)
        assert figures["host_cpu_ms_per_lifecycle"] > 0, name
        assert figures["peak_rss_mb"] > 0, name
    assert result["knee"]["offered_rate"] in [float(s.removeprefix("step_")) for s in steps]
    assert scenarios["burst_initiations"]["requests"] == 100
    assert scenarios["status_reads"]["reads"]["accepted"] > 0


def test_nothing_lost_and_nothing_left_open(quick):
    result, _, _ = quick
    totals = result["totals"]
    assert totals["payments"] == sum(s["payments"] for s in result["scenarios"].values())
    assert totals["lost"] == 0
    assert totals["left_open"] == 0
    assert all(s["lost"] == 0 for s in result["scenarios"].values())


def test_the_simulators_callbacks_are_all_stored_and_applied(quick):
    callbacks = quick[0]["scenarios"]["burst_callbacks"]
    assert callbacks["callbacks"] == 150
    assert callbacks["captured_short"] == 0
    assert callbacks["callbacks_stored"] >= callbacks["callbacks"]
    assert callbacks["callbacks_lost"] == 0
    assert callbacks["statuses"] == {"succeeded": 150}


def test_pgbench_ceilings_and_ratios_are_measured(quick):
    result, _, _ = quick
    runs = result["pgbench"]
    for name in ("pattern", "pattern_with_resets", "minimal"):
        assert runs[name]["lifecycles_per_s"] > 0, runs[name]
        assert runs[name]["failed"] == 0, runs[name]
    # the captured lifecycle: the payment's own transactions, and more than the minimum
    assert runs["pattern"]["transactions"] >= 3
    assert runs["pattern"]["statements"] > runs["minimal"]["statements"]
    assert runs["pattern_with_resets"]["resets"] > 0
    ratios = result["ratios"]
    for name in ("gateway_of_pattern", "gateway_of_minimal", "pattern_of_minimal"):
        assert ratios[name] is not None and ratios[name] > 0, ratios


def test_the_table_is_printed_and_written(quick):
    result, table, stdout = quick
    assert table.strip() == markdown(result).strip()
    assert table.strip() in stdout
    for name in result["scenarios"]:
        assert f"| {name} |" in table
    assert "pgbench pattern" in table and "ratios" in table


# -- the capture, on a log of the shape LOG_SETTINGS gives ------------------------------------

PAYMENT = "97c8977e-cd34-4d9f-b8de-8674dae7649a"
EVENT = "25a544ac-9758-4c7b-afa0-d58ef2775512"
LOG = f"""\
2026-12-01 16:09:00.006 UTC [21872] [[unknown]] LOG:  execute s9: WITH due AS (
	SELECT id FROM jobs WHERE done_at IS NULL LIMIT $1 FOR UPDATE SKIP LOCKED)
	UPDATE jobs SET locked_by = 'w' FROM due WHERE jobs.id = due.id RETURNING jobs.*
2026-12-01 16:09:00.006 UTC [21872] [[unknown]] DETAIL:  Parameters: $1 = '10'
2026-12-01 16:09:00.007 UTC [21872] [[unknown]] LOG:  statement: SELECT pg_advisory_unlock_all();
	CLOSE ALL;
	RESET ALL;
2026-12-01 16:09:00.008 UTC [21900] [mmo-bench] LOG:  execute s1: SELECT * FROM payments WHERE id = $1
2026-12-01 16:09:00.008 UTC [21900] [mmo-bench] DETAIL:  Parameters: $1 = '{PAYMENT}'
2026-12-01 16:09:00.512 UTC [21872] [[unknown]] LOG:  statement: BEGIN;
2026-12-01 16:09:00.518 UTC [21872] [[unknown]] LOG:  execute s1: INSERT INTO payments (id, idempotency_key) VALUES ($1, $2)
2026-12-01 16:09:00.518 UTC [21872] [[unknown]] DETAIL:  Parameters: $1 = '{PAYMENT}', $2 = 'key-1'
2026-12-01 16:09:00.524 UTC [21872] [[unknown]] LOG:  execute s2: INSERT INTO outbox_events (id, payment_id, payload) VALUES ($1, $2, $3::jsonb)
2026-12-01 16:09:00.524 UTC [21872] [[unknown]] DETAIL:  Parameters: $1 = '{EVENT}', $2 = '{PAYMENT}', $3 = '{{"id": "{PAYMENT}", "note": "it''s"}}'
2026-12-01 16:09:00.531 UTC [21872] [[unknown]] LOG:  statement: COMMIT;
2026-12-01 16:09:01.000 UTC [21872] [[unknown]] LOG:  execute s3: UPDATE jobs SET done_at = now() WHERE id = $1
2026-12-01 16:09:01.000 UTC [21872] [[unknown]] DETAIL:  Parameters: $1 = '17'
2026-12-01 16:09:02.000 UTC [21873] [[unknown]] LOG:  execute s4: SELECT 1 FROM other WHERE x = $1
2026-12-01 16:09:02.000 UTC [21873] [[unknown]] DETAIL:  Parameters: $1 = 'unrelated'
"""


def test_the_capture_keeps_one_lifecycles_transactions_and_the_claims_beside_them():
    statements = pgbench.parse_log(LOG)
    assert all("mmo-bench" not in s.sql for s in statements)
    assert len(statements) == 8  # the bench's own statement is left out
    groups = pgbench.transactions(statements)
    kept = pgbench.of_payment(groups, {PAYMENT, "key-1", EVENT})
    firsts = [g[0].sql.split()[0] for g in kept]
    # the claim before the payment's transaction, the transaction, the job close after it;
    # not the pool reset (script adds those) and not the other connection's statement
    assert firsts == ["WITH", "BEGIN", "UPDATE"]
    assert [s.sql.split()[0] for s in kept[1]] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]


def test_the_script_gives_each_replayed_lifecycle_ids_of_its_own():
    groups = pgbench.of_payment(
        pgbench.transactions(pgbench.parse_log(LOG)), {PAYMENT, "key-1", EVENT}
    )
    text, count = pgbench.script(groups, {PAYMENT, "key-1", EVENT}, {"17"}, resets=False)
    assert count == 6
    assert PAYMENT not in text and EVENT not in text and "key-1" not in text
    assert "'it''s'" not in text and "it''s" in text  # quoting kept as logged
    assert "WHERE id = :job;" in text
    assert "\\set i0a random(" in text
    with_resets, with_count = pgbench.script(groups, set(), set(), resets=True)
    assert with_count == count + len(groups)
    assert with_resets.count("RESET ALL;") == len(groups)


def test_percentiles_are_of_the_sorted_values():
    values = [float(n) for n in range(100, 0, -1)]
    assert percentile(values, 50) == 51.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None


def test_the_cli_offers_bench():
    from mmo_host.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--workers", "2", "--rates", "5,10"])
    assert args.quick and args.workers == 2 and args.rates == "5,10"
    assert Path(args.func.__code__.co_filename).name == "cli.py"


def test_scale_out_compares_one_process_two_workers_and_two_hosts(tmp_path):
    """`mmo bench --scale-out --quick`: the same steps on one process, `--workers 2` and two
    hosts sharing one Postgres and one Redis; what each served is read from the database
    (every payment made, none lost or left open) and from the hosts' own answers."""
    result = tmp_path / "scale.json"
    done = bench("--quick", "--scale-out", "--json", str(result), "--no-progress")
    print(done.stdout)  # the comparison: figures for the reader, not asserted
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(result.read_text())["scale_out"]
    assert [(r["workers"], r["hosts"]) for r in runs.values()] == [(1, 1), (2, 1), (1, 2)]
    for name, r in runs.items():
        assert r["throughput"]["completions_per_s"] > 0, name
        assert r["totals"]["lost"] == 0 and r["totals"]["left_open"] == 0, (name, r["totals"])
        assert all(step["payments"] > 0 for step in r["steps"].values()), name
        # each host answered (which process of one host's `--workers` takes a connection
        # is the kernel's choice: a figure, printed)
        assert r["processes_answering"] >= r["hosts"], (name, r)
    assert "| two hosts, one Postgres and one Redis | 2 |" in done.stdout


def test_the_bench_refuses_settings_that_are_not_the_gateways():
    done = bench("--quick", "--env", "DEBUG=1", timeout=60)
    assert done.returncode != 0 and "MMO_NAME=VALUE" in done.stderr
