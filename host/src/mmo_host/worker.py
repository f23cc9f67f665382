"""The background worker: polls, resolves, sends queued payments, follows reversals up,
delivers events.

`mmo worker` runs it alone; `mmo serve` runs one inside the host by default. Any number
of workers may run against one database: jobs are claimed with `SKIP LOCKED` and a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from typing import Any

import httpx
from mmo_core.types import FINAL_STATUSES, StatusReport

from mmo_host import (
    attention,
    callbacks,
    db,
    events,
    jobs,
    logs,
    metrics,
    operator,
    payments,
    reports,
    reversals,
)
from mmo_host.gateway import Gateway
from mmo_host.records import EventRecord, JobRecord, PaymentRecord
from mmo_host.schedule import Schedule

log = logging.getLogger("mmo.worker")


class Worker:
    def __init__(
        self,
        gateway: Gateway,
        *,
        concurrency: int = 10,
        lease: float = 120.0,
        idle_sleep: float = 0.5,
        worker_id: str | None = None,
        invariant_every: float = 60.0,
    ) -> None:
        self.gateway = gateway
        self.concurrency = concurrency
        self.lease = lease
        self.idle_sleep = idle_sleep
        # seconds between two checks that every open payment is followed up
        self.invariant_every = invariant_every
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.handled = 0
        # event ids asked for by the jobs now starting (`_event`), read together
        self._events_wanted: dict[Any, list[asyncio.Future[EventRecord | None]]] | None = None
        self._events_read: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker %s started", self.id)
        await schedule_reconcile(self.gateway.config.reconcile_every)
        checked = 0.0
        while not stop.is_set():
            try:
                done = await self.run_once()
                if time.monotonic() - checked >= self.invariant_every:
                    # no payment open without a job or an attention entry (mmo_host.attention)
                    await attention.check_invariant()
                    checked = time.monotonic()
            except Exception:
                log.exception("worker loop error")
                done = 0
            if done == 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_sleep)
        log.info("worker %s stopped", self.id)

    async def run_once(self) -> int:
        claimed = await jobs.claim(self.id, self.concurrency, self.lease)
        if claimed:
            await asyncio.gather(*(self._run(job) for job in claimed))
        return len(claimed)

    async def drain(self, rounds: int = 50) -> int:
        """Run due jobs until none is left (tests and `mmo reconcile`)."""
        total = 0
        for _ in range(rounds):
            done = await self.run_once()
            total += done
            if done == 0:
                break
        return total

    async def _run(self, job: JobRecord) -> None:
        handler = getattr(self, f"_job_{job['kind']}", None)
        try:
            if handler is None:
                await jobs.finish(job, self.id, f"unknown job kind {job['kind']}")
            else:
                await handler(job)
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            delay = self.schedule.job_error.after(job.attempts) or 0.0
            await jobs.retry(job, self.id, delay, type(exc).__name__)
        self.handled += 1

    @property
    def schedule(self) -> Schedule:
        return self.gateway.schedule

    # -- payments --------------------------------------------------------------------------

    async def _payment(self, job: JobRecord) -> PaymentRecord | None:
        row = await db.fetchrow_as(
            PaymentRecord, "SELECT * FROM payments WHERE id = $1", job.payment_id
        )
        if row is not None:
            logs.follow(row)  # the job's lines name the payment and the request that made it
        return row

    async def _job_send(self, job: JobRecord) -> None:
        row = await self._payment(job)
        if row is None or row.status not in ("new", "unknown"):
            await jobs.finish(job, self.id, "nothing to send")
            return
        provider = self.gateway.registry.get(row.provider)
        if job.interrupted and row.status == "new" and not provider.declaration.resend_safe:
            # the worker that sent it died before recording the answer: the operator may
            # have it, so never resend blind; find out through the status API
            await payments.apply_transition(
                self.gateway,
                row.id,
                "unknown",
                source="worker",
                detail={"reason": "a queued send was interrupted"},
            )
            await jobs.finish(job, self.id, "interrupted: asking the operator instead")
            return
        await payments.send_to_operator(self.gateway, row, attempt=job.attempts)
        await jobs.finish(job, self.id)  # stays open when it was queued again

    async def _job_resolve(self, job: JobRecord) -> None:
        """A payment still `new` long after its initiate window: the host died mid-call."""
        row = await self._payment(job)
        if row is None or row.status != "new":
            await jobs.finish(job, self.id, "no longer new")
            return
        open_sends = [j for j in await jobs.open_jobs(row.id) if j.kind == "send"]
        if open_sends:  # queued on purpose (breaker open): the send job owns it
            await jobs.finish(job, self.id, "queued")
            return
        provider = self.gateway.registry.get(row.provider)
        if provider.declaration.resend_safe:
            await payments.send_to_operator(self.gateway, row)
        else:
            # Never resend blind: find out through the status API.
            await payments.apply_transition(
                self.gateway,
                row.id,
                "unknown",
                source="worker",
                detail={"reason": "initiate outcome was never recorded"},
            )
        # finished last: if anything above fails, the job is retried
        await jobs.finish(job, self.id)

    async def _job_poll(self, job: JobRecord) -> None:
        row = await self._payment(job)
        if row is None or row.status in FINAL_STATUSES or row.status == "new":
            await jobs.finish(job, self.id, "nothing to poll")
            return
        age = _age(row.created_at)
        answer = await operator.ask(
            self.gateway,
            row,
            "status",
            expect=StatusReport,
            payment=await payments.core_payment(row),
        )
        if answer.kind == "unknown_to_operator" and answer.error is not None:
            await self._unknown_to_operator(job, row, answer, age)
            return
        if not answer.ok:
            if answer.kind == "declined":  # it will not be asked about this payment
                await attention.flag(row.id, "cannot_ask", {"last_answer": answer.describe()})
            await self._poll_later(job, row, age, answer.describe(), answer.retry_after)
            return
        applied = await reports.apply(
            self.gateway,
            row,
            answer.value,
            source="poll",
            authenticated=True,
            detail={"poll_attempt": job.attempts},
        )
        status = applied.row.status
        if applied.flag == "mismatch":
            await attention.flag(
                row.id, "mismatch", {"operator_said": _said(answer.value), "source": "poll"}
            )
            await jobs.finish(job, self.id, "the operator's amount or phone differ: a person")
            log.error("payment %s: the status API disagrees on amount or phone", row.id)
        elif status in FINAL_STATUSES:
            await jobs.finish(job, self.id)
        else:
            await self._poll_later(job, row, age, None)

    async def _poll_later(
        self,
        job: JobRecord,
        row: PaymentRecord,
        age: float,
        error: str | None,
        retry_after: float | None = None,
    ) -> None:
        delay = self.schedule.poll(row.provider).after(
            job.attempts, age=age, retry_after=retry_after
        )
        if delay is None:
            await attention.flag(
                row.id,
                "gave_up_polling",
                {"last_answer": error, "polls": job.attempts, "status": row.status},
            )
            await jobs.finish(job, self.id, f"gave up after {job.attempts} polls: a person")
            log.warning("payment %s still %s after polling: a person", row.id, row.status)
            return
        await jobs.retry(job, self.id, delay, error)

    async def _unknown_to_operator(
        self, job: JobRecord, row: PaymentRecord, answer: operator.Answer, age: float
    ) -> None:
        """The operator has no record of the payment: it never arrived."""
        if row.status != "unknown" or age < self.schedule.resolve_after:
            await self._poll_later(job, row, age, answer.describe())
            return
        assert answer.error is not None
        await payments.never_received(self.gateway, row, "poll", answer.error)
        await jobs.finish(job, self.id, "unknown to the operator")  # open if rescheduled

    async def _job_reversal(self, job: JobRecord) -> None:
        """A reversal the operator left pending (or whose outcome is unknown): ask it."""
        row = await self._payment(job)
        reversal = await reversals.open_of(row.id) if row is not None else None
        if row is None or reversal is None:
            await jobs.finish(job, self.id, "no open reversal")
            return
        if reversal.status == "in_progress":
            age = _age(reversal.updated_at)
            if age < self.schedule.resolve_after:  # the route is still calling the operator
                await jobs.retry(job, self.id, self.schedule.resolve_after - age, "in progress")
                return
            # the process that called the operator died before recording the answer
            reversal = await reversals.move(reversal.id, "unknown", error="interrupted")
            log.warning("payment %s: reversal %s was interrupted", row.id, reversal.id)
        provider = self.gateway.registry.get(row.provider)
        if not provider.implements("reversal_status"):
            await attention.flag(
                row.id,
                "reversal_cannot_ask",
                {"reversal": str(reversal.id), "status": reversal.status},
            )
            await jobs.finish(job, self.id, "the provider cannot be asked: settle by hand")
            return
        age = _age(reversal.created_at)
        answer = await operator.ask(
            self.gateway,
            row,
            "reversal_status",
            expect=StatusReport,
            payment=await payments.core_payment(row),
            reversal=reversals.to_core(reversal, row.currency),
        )
        never_arrived = answer.kind == "unknown_to_operator" and (
            reversal.status == "unknown" and age >= self.schedule.resolve_after
        )
        if never_arrived or (answer.ok and answer.value.status != "pending"):
            # known: done, refused, or it never reached the operator (so no effect)
            after = await reversals.answer(self.gateway, row, reversal, answer, "poll")
            await jobs.finish(job, self.id, f"reversal {after['status']}")
            return
        error = None if answer.ok else answer.describe()
        delay = self.schedule.poll(row.provider).after(
            job.attempts, age=age, retry_after=answer.retry_after
        )
        if delay is None:
            await attention.flag(
                row.id,
                "reversal_gave_up",
                {"reversal": str(reversal.id), "status": reversal.status, "last_answer": error},
            )
            await jobs.finish(job, self.id, "gave up: settle the reversal by hand")
            log.warning("payment %s: a reversal is still open after polling", row.id)
            return
        await jobs.retry(job, self.id, delay, error)

    async def _job_rematch(self, job: JobRecord) -> None:
        flag = await callbacks.rematch(self.gateway, uuid.UUID(job.target))
        if flag != "unmatched":
            await jobs.finish(job, self.id, f"now {flag or 'applied'}")
            return
        # the callback's first processing was its first try, each run one more
        delay = self.schedule.rematch.after(job.attempts + 1)
        if delay is None:
            await jobs.finish(job, self.id, "still unmatched: kept for a person")
            return
        await jobs.retry(job, self.id, delay, "still unmatched")

    async def _job_reconcile(self, job: JobRecord) -> None:
        from mmo_host.reconcile import reconcile

        report = await reconcile(self.gateway)
        note = (
            f"checked {report.checked}, changed {len(report.changed)}, "
            f"disagreements {len(report.disagreements)}, errors {len(report.errors)}"
        )
        for item in report.disagreements:
            log.error(
                "payment %s is %s here but %s at the operator",
                item["id"],
                item["ours"],
                item["operator"],
            )
        await jobs.finish(job, self.id, note)
        await schedule_reconcile(self.gateway.config.reconcile_every)

    # -- events ----------------------------------------------------------------------------

    async def _event(self, job: JobRecord) -> EventRecord:
        """The job's event (a foreign key: it exists while its job does). The event jobs of
        one claim start together, and their events are read in one statement."""
        loop = asyncio.get_running_loop()
        wanted = self._events_wanted
        if wanted is None:
            wanted = self._events_wanted = {}
            self._events_read = loop.create_task(self._read_events())
        future: asyncio.Future[EventRecord | None] = loop.create_future()
        wanted.setdefault(job.event_id, []).append(future)
        event = await future
        if event is None:
            raise LookupError(f"job {job.id}: no event {job.event_id}")
        return event

    async def _read_events(self) -> None:
        await asyncio.sleep(0)  # the other jobs of the claim ask for theirs meanwhile
        wanted, self._events_wanted = self._events_wanted or {}, None
        try:
            found = {
                event.id: event
                for event in await db.fetch_as(
                    EventRecord, "SELECT * FROM outbox_events WHERE id = ANY($1)", list(wanted)
                )
            }
        except Exception as exc:
            for futures in wanted.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for event_id, futures in wanted.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(event_id))

    async def _job_deliver(self, job: JobRecord) -> None:
        event = await self._event(job)
        body = events.event_body(event)
        headers = {
            "Content-Type": "application/json",
            events.SIGNATURE_HEADER: events.sign(body, self.gateway.config.event_secrets),
            "Mmo-Event-Id": str(event.id),
        }
        try:
            response = await self.gateway.event_http.post(
                job.target or "", content=body, headers=headers
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        metrics.delivery(self.gateway, job, event, error)
        if error is None:
            # the job finished (as jobs.finish does) and the event marked delivered in one
            # statement: the CTE's update runs whether or not the outer one matches
            await db.fetch(
                """WITH finished AS (
                       UPDATE jobs SET done_at = CASE WHEN rescheduled THEN NULL ELSE now() END,
                                       locked_by = NULL, locked_until = NULL,
                                       rescheduled = false
                       WHERE id = $1 AND locked_by = $2)
                   UPDATE outbox_events SET delivered_at = COALESCE(delivered_at, now())
                   WHERE id = $3""",
                job.id,
                self.id,
                event.id,
            )
            return
        delay = self.schedule.delivery.after(job.attempts)
        if delay is None:
            await jobs.finish(job, self.id, f"gave up: {error}")
            log.error(
                "event %s to %s: gave up after %s attempts",
                event.id,
                job.target,
                job.attempts,
            )
            return
        await jobs.retry(job, self.id, delay, error)

    async def _job_stream(self, job: JobRecord) -> None:
        store = self.gateway.store
        if store is None:
            await jobs.finish(job, self.id, "no Redis configured")
            return
        event = await self._event(job)
        await store._redis.xadd(
            self.gateway.config.event_stream,
            {"id": str(event.id), "type": event.type, "body": events.event_body(event)},
        )
        await jobs.finish(job, self.id)


async def schedule_reconcile(every: float) -> None:
    """Keep one periodic reconciliation job open (none when `every` is 0)."""
    if every <= 0:
        return
    await db.fetch(
        """INSERT INTO jobs (kind, run_at) VALUES ('reconcile', now() + make_interval(secs => $1))
           ON CONFLICT (kind) WHERE done_at IS NULL AND kind = 'reconcile' DO NOTHING""",
        float(every),
    )


async def resend_event(event_id: uuid.UUID, targets: tuple[str, ...]) -> int:
    """Deliver an event again to every target (admin), whatever happened before."""
    count = 0
    for target in targets:
        row = await db.fetchrow(
            """INSERT INTO jobs (kind, payment_id, event_id, target)
               SELECT 'deliver', payment_id, id, $2 FROM outbox_events WHERE id = $1
               ON CONFLICT (event_id, target) WHERE event_id IS NOT NULL
               DO UPDATE SET done_at = NULL, run_at = now(), attempts = 0, last_error = NULL,
                             locked_by = NULL, locked_until = NULL
               RETURNING id""",
            event_id,
            target,
        )
        count += row is not None
    return count


def _said(report: StatusReport) -> dict[str, Any]:
    """What the operator reported, for a person (amounts as text)."""
    return {
        "status": report.status,
        "amount": str(report.amount) if report.amount is not None else None,
        "provider_reference": report.provider_reference,
        "provider_transaction_id": report.provider_transaction_id,
    }


def _age(since: dt.datetime) -> float:
    return (dt.datetime.now(dt.UTC) - since).total_seconds()


__all__ = ["Worker", "resend_event"]
