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
import uuid
from typing import Any

import httpx
from mmo_core.errors import MmoError, ProviderUnavailable, UnknownToOperator
from mmo_core.types import FINAL_STATUSES, StatusReport

from mmo_host import callbacks, db, events, jobs, payments, reversals
from mmo_host.gateway import Gateway

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
    ) -> None:
        self.gateway = gateway
        self.concurrency = concurrency
        self.lease = lease
        self.idle_sleep = idle_sleep
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.handled = 0

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker %s started", self.id)
        await schedule_reconcile(self.gateway.config.reconcile_every)
        while not stop.is_set():
            try:
                done = await self.run_once()
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

    async def _run(self, job: Any) -> None:
        handler = getattr(self, f"_job_{job['kind']}", None)
        try:
            if handler is None:
                await jobs.finish(job, self.id, f"unknown job kind {job['kind']}")
            else:
                await handler(job)
        except Exception as exc:
            log.exception("job %s (%s) failed", job["id"], job["kind"])
            await jobs.retry(job, self.id, jobs.backoff(job["attempts"]), type(exc).__name__)
        self.handled += 1

    # -- payments --------------------------------------------------------------------------

    async def _payment(self, job: Any) -> Any:
        return await db.fetchrow("SELECT * FROM payments WHERE id = $1", job["payment_id"])

    async def _job_send(self, job: Any) -> None:
        row = await self._payment(job)
        if row is None or row["status"] not in ("new", "unknown"):
            await jobs.finish(job, self.id, "nothing to send")
            return
        await payments.send_to_operator(self.gateway, row, attempt=job["attempts"])
        await jobs.finish(job, self.id)  # stays open when it was queued again

    async def _job_resolve(self, job: Any) -> None:
        """A payment still `new` long after its initiate window: the host died mid-call."""
        row = await self._payment(job)
        if row is None or row["status"] != "new":
            await jobs.finish(job, self.id, "no longer new")
            return
        open_sends = [j for j in await jobs.open_jobs(row["id"]) if j["kind"] == "send"]
        if open_sends:  # queued on purpose (breaker open): the send job owns it
            await jobs.finish(job, self.id, "queued")
            return
        provider = self.gateway.registry.get(row["provider"])
        if provider.declaration.resend_safe:
            await payments.send_to_operator(self.gateway, row)
        else:
            # Never resend blind: find out through the status API.
            await payments.apply_transition(
                row["id"],
                "unknown",
                source="worker",
                detail={"reason": "initiate outcome was never recorded"},
            )
        # finished last: if anything above fails, the job is retried
        await jobs.finish(job, self.id)

    async def _job_poll(self, job: Any) -> None:
        row = await self._payment(job)
        if row is None or row["status"] in FINAL_STATUSES or row["status"] == "new":
            await jobs.finish(job, self.id, "nothing to poll")
            return
        age = (dt.datetime.now(dt.UTC) - row["created_at"]).total_seconds()
        try:
            report: StatusReport = await payments.call_operator(
                self.gateway, row, "status", payment=await payments.core_payment(row)
            )
        except payments.BreakerOpen:
            await jobs.retry(job, self.id, self.gateway.config.breaker_cooldown, "breaker open")
            return
        except UnknownToOperator as exc:
            await self._unknown_to_operator(job, row, exc, age)
            return
        except (MmoError, TimeoutError) as exc:
            await self._poll_later(job, row, age, f"{type(exc).__name__}: {exc}")
            return
        transition = await payments.apply_transition(
            row["id"],
            report.status,
            source="poll",
            provider_reference=report.provider_reference,
            provider_transaction_id=report.provider_transaction_id,
            provider_data=report.provider_data or None,
            failure=report.failure,
            detail={"poll_attempt": job["attempts"]},
        )
        status = transition.row["status"]
        if status in FINAL_STATUSES:
            await jobs.finish(job, self.id)
        elif report.status == "pending" or status in ("pending", "unknown"):
            await self._poll_later(job, row, age, None)
        else:
            await jobs.finish(job, self.id)

    async def _poll_later(self, job: Any, row: Any, age: float, error: str | None) -> None:
        if age > jobs.POLICY.poll_for:
            await jobs.finish(job, self.id, f"gave up after {job['attempts']} polls: reconcile")
            log.warning("payment %s still %s after polling: reconcile", row["id"], row["status"])
            return
        delay = jobs.POLICY.next_poll(row["provider"], job["attempts"])
        await jobs.retry(job, self.id, delay, error)

    async def _unknown_to_operator(self, job: Any, row: Any, exc: MmoError, age: float) -> None:
        """The operator has no record of the payment: it never arrived."""
        if row["status"] != "unknown" or age < jobs.POLICY.resolve_after:
            await self._poll_later(job, row, age, str(exc))
            return
        await payments.never_received(self.gateway, row, "poll", exc)
        await jobs.finish(job, self.id, "unknown to the operator")  # open if rescheduled

    async def _job_reversal(self, job: Any) -> None:
        """A reversal the operator left pending (or whose outcome is unknown): ask it."""
        row = await self._payment(job)
        reversal = await reversals.open_of(row["id"]) if row is not None else None
        if reversal is None:
            await jobs.finish(job, self.id, "no open reversal")
            return
        age = (dt.datetime.now(dt.UTC) - reversal["updated_at"]).total_seconds()
        if reversal["status"] == "in_progress":
            if age < jobs.POLICY.resolve_after:  # the route is still calling the operator
                await jobs.retry(job, self.id, jobs.POLICY.resolve_after - age, "in progress")
                return
            # the process that called the operator died before recording the answer
            reversal = await reversals.settle(reversal["id"], "unknown", error="interrupted")
            log.warning("payment %s: reversal %s was interrupted", row["id"], reversal["id"])
        provider = self.gateway.registry.get(row["provider"])
        if not provider.implements("reversal_status"):
            await jobs.finish(job, self.id, "the provider cannot be asked: settle by hand")
            return
        age = (dt.datetime.now(dt.UTC) - reversal["created_at"]).total_seconds()
        try:
            report: StatusReport = await payments.call_operator(
                self.gateway,
                row,
                "reversal_status",
                payment=await payments.core_payment(row),
                reversal=reversals.to_core(reversal, row["currency"]),
            )
        except payments.BreakerOpen:
            await jobs.retry(job, self.id, self.gateway.config.breaker_cooldown, "breaker open")
            return
        except UnknownToOperator as exc:
            if reversal["status"] == "unknown" and age >= jobs.POLICY.resolve_after:
                # it never reached the operator: known not to have taken effect
                await reversals.settle(reversal["id"], "failed", error=f"{exc.code}:never received")
                await jobs.finish(job, self.id, "unknown to the operator")
            else:
                await self._reversal_later(job, row, age, str(exc))
            return
        except (MmoError, TimeoutError) as exc:
            await self._reversal_later(job, row, age, f"{type(exc).__name__}: {exc}")
            return
        if report.status == "reversed":
            await reversals.complete(row["id"], reversal["id"], report, "poll")
            await jobs.finish(job, self.id)
        elif report.status in ("failed", "expired"):
            failure = report.failure
            error = f"declined:{failure.code}" if failure else report.status
            await reversals.settle(reversal["id"], "failed", error=error, **reversals.found(report))
            log.info("payment %s: reversal %s refused by the operator", row["id"], reversal["id"])
            await jobs.finish(job, self.id)
        else:
            await self._reversal_later(job, row, age, None)

    async def _reversal_later(self, job: Any, row: Any, age: float, error: str | None) -> None:
        if age > jobs.POLICY.poll_for:
            await jobs.finish(job, self.id, "gave up: settle the reversal by hand")
            log.warning("payment %s: a reversal is still open after polling", row["id"])
            return
        await jobs.retry(
            job, self.id, jobs.POLICY.next_poll(row["provider"], job["attempts"]), error
        )

    async def _job_rematch(self, job: Any) -> None:
        flag = await callbacks.rematch(self.gateway, uuid.UUID(job["target"]))
        if flag != "unmatched":
            await jobs.finish(job, self.id, f"now {flag or 'applied'}")
            return
        attempt = job["attempts"]
        if attempt >= len(callbacks.REMATCH_DELAYS):
            await jobs.finish(job, self.id, "still unmatched: kept for a person")
            return
        await jobs.retry(job, self.id, callbacks.REMATCH_DELAYS[attempt], "still unmatched")

    async def _job_reconcile(self, job: Any) -> None:
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

    async def _event(self, job: Any) -> Any:
        return await db.fetchrow("SELECT * FROM outbox_events WHERE id = $1", job["event_id"])

    async def _job_deliver(self, job: Any) -> None:
        event = await self._event(job)
        body = events.event_body(event)
        headers = {
            "Content-Type": "application/json",
            events.SIGNATURE_HEADER: events.sign(body, self.gateway.config.event_secrets),
            "Mmo-Event-Id": str(event["id"]),
        }
        try:
            response = await self.gateway.event_http.post(
                job["target"], content=body, headers=headers
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            await jobs.finish(job, self.id)
            await db.fetch(
                "UPDATE outbox_events SET delivered_at = COALESCE(delivered_at, now()) "
                "WHERE id = $1",
                event["id"],
            )
            return
        delay = events.next_delay(job["attempts"])
        if delay is None:
            await jobs.finish(job, self.id, f"gave up: {error}")
            log.error(
                "event %s to %s: gave up after %s attempts",
                event["id"],
                job["target"],
                job["attempts"],
            )
            return
        await jobs.retry(job, self.id, jobs.jittered(delay), error)

    async def _job_stream(self, job: Any) -> None:
        store = self.gateway.store
        if store is None:
            await jobs.finish(job, self.id, "no Redis configured")
            return
        event = await self._event(job)
        await store._redis.xadd(
            self.gateway.config.event_stream,
            {"id": str(event["id"]), "type": event["type"], "body": events.event_body(event)},
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


__all__ = ["ProviderUnavailable", "Worker", "resend_event"]
