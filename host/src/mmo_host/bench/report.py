"""The bench's markdown table, from its JSON result."""

from __future__ import annotations

from typing import Any

ORDER = ("overload", "burst_initiations", "burst_callbacks", "status_reads", "soak")


def _v(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    scenarios = result.get("scenarios", {})
    names = [n for n in scenarios if n.startswith("step_")] + [n for n in ORDER if n in scenarios]
    head = (
        "| scenario | offered/s | accepted/s | completed/s | API p50 / p95 / p99 ms "
        "| added p50 / p99 ms | to final p50 / p99 ms | host CPU ms | PG CPU ms "
        "| peak RSS MB | errors | lost | open |"
    )
    lines = [head, "|" + "---|" * 13]
    for name in names:
        r = scenarios[name]
        api, added, final = r["api_latency_ms"], r["gateway_added_ms"], r["time_to_final_ms"]
        lines.append(
            f"| {name} | {_v(r['offered_rate'])} | {_v(r['achieved_rate'])} "
            f"| {_v(r['completions_per_s'])} "
            f"| {_v(api['p50'])} / {_v(api['p95'])} / {_v(api['p99'])} "
            f"| {_v(added['p50'])} / {_v(added['p99'])} "
            f"| {_v(final['p50'])} / {_v(final['p99'])} "
            f"| {_v(r['host_cpu_ms_per_lifecycle'])} | {_v(r['postgres_cpu_ms_per_lifecycle'])} "
            f"| {_v(r['peak_rss_mb'])} | {_v(r['errors'])} | {r['lost']} | {r['left_open']} |"
        )
    out = ["## mmo bench", "", *lines, ""]
    notes = []
    knee = result.get("knee")
    if knee:
        notes.append(
            f"- knee: offered {knee['offered_rate']}/s, {knee['completions_per_s']} completed/s"
        )
    over = scenarios.get("overload")
    if over:
        refused = over["refused"]
        notes.append(
            f"- overload: {over.get('of_knee')} of the knee's completions; "
            f"{refused['count']} refused (429/503), {refused['with_retry_after']} with "
            f"Retry-After, refused p99 {_v(refused['p99_ms'])} ms"
        )
    cb = scenarios.get("burst_callbacks")
    if cb:
        notes.append(
            f"- callbacks: {cb.get('callbacks')} posted at concurrency {cb.get('concurrency')}, "
            f"{cb['achieved_rate']}/s accepted, {cb.get('callbacks_stored')} stored, "
            f"{cb.get('callbacks_lost')} lost, {cb['left_open']} payments not applied"
        )
    reads = scenarios.get("status_reads", {}).get("reads")
    if reads:
        api = reads["api_latency_ms"]
        notes.append(
            f"- status reads: {reads['achieved_rate']}/s, p50/p99 {_v(api['p50'])}/"
            f"{_v(api['p99'])} ms, errors {_v(reads['errors'])}"
        )
    soak = scenarios.get("soak")
    if soak:
        notes.append(
            f"- soak: {soak['payments']} payments (asked {soak.get('asked_payments')}, "
            f"bounded by {soak.get('bounded_by')}), RSS start/end MB {soak['rss_mb_start_end']}"
        )
    pg = result.get("pgbench", {})
    for name in ("pattern", "pattern_with_resets", "minimal"):
        run = pg.get(name)
        if run:
            notes.append(
                f"- pgbench {name}: {_v(run.get('lifecycles_per_s'))} lifecycles/s "
                f"({run.get('statements')} statements; {run.get('clients')} clients, "
                f"{run.get('seconds')} s)"
                + (f" error: {run['error'][:200]}" if run.get("error") else "")
            )
    ratios = result.get("ratios")
    if ratios:
        best = result.get("throughput", {}).get("completions_per_s")
        notes.append(
            f"- ratios (the gateway's best step, {_v(best)} completed/s): "
            f"gateway/pattern {_v(ratios['gateway_of_pattern'])}, "
            f"gateway/minimal {_v(ratios['gateway_of_minimal'])}, "
            f"pattern/minimal {_v(ratios['pattern_of_minimal'])}"
        )
    totals = result.get("totals")
    if totals:
        notes.append(
            f"- totals: {totals['payments']} payments, lost {totals['lost']}, left open at the "
            f"scenarios' ends {totals['left_open_at_scenario_ends']}, still open after a last "
            f"drain of {totals['final_drain_s']} s: {totals['left_open']}"
        )
    relay = result.get("relay")
    if relay:
        notes.append(
            f"- the simulator's callbacks through the relay, by the host's answer: "
            f"{_v(relay.get('forwarded'))}; events received: {_v(relay.get('events'))}"
        )
    m = result.get("machine")
    if m:
        notes.append(
            f"- machine: {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}; "
            f"load average at the end {m['load_average']}; wall {result.get('wall_s')} s"
        )
    return "\n".join(out + notes) + "\n"


def scale_out_markdown(result: dict[str, Any]) -> str:
    """`mmo bench --scale-out`: each configuration's best step against one process's."""
    lines = [
        "## mmo bench --scale-out",
        "",
        "| configuration | processes | best completed/s | of one process | knee (offered/s) "
        "| host CPU ms per lifecycle (best step) | API p50 / p99 ms (best step) | open |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["scale_out"].items():
        steps = r["steps"]
        best = max(steps.values(), key=lambda s: s["completions_per_s"]) if steps else None
        api = best["api_latency_ms"] if best else {}
        lines.append(
            f"| {name} | {r['workers'] * r['hosts']} | {_v(r['throughput']['completions_per_s'])} "
            f"| {_v(r['of_one_process'])} | {_v((r.get('knee') or {}).get('offered_rate'))} "
            f"| {_v(best['host_cpu_ms_per_lifecycle'] if best else None)} "
            f"| {_v(api.get('p50'))} / {_v(api.get('p99'))} "
            f"| {_v((r.get('totals') or {}).get('left_open'))} |"
        )
    m = result.get("machine") or {}
    lines += [
        "",
        f"- machine: {m.get('cpus')} CPUs, load average at the end {m.get('load_average')}; "
        f"wall {result.get('wall_s')} s",
    ]
    return "\n".join(lines) + "\n"
