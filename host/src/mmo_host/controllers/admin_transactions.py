"""`/api/v1/admin/mmo/transactions/{id}`: a payment's whole story, its kept callbacks, and
the two actions a person takes on it, a retry where one is safe and a reversal.

Admin keys see every client's payments. Both actions are written to the audit log
(mmo_host.audit). A retry never sends a payment twice where that could move money twice:

- `new` with a queued `send` job (every earlier try was certainly not taken): the job is
  claimed and run now, as the worker would run it;
- `new` without one, where the provider makes a resend safe (`resend_safe`: the operator
  refuses a second payment with our id): sent now;
- `pending` / `unknown`: its `poll` job (made when there is none, as after the worker
  gave up) is claimed and run now through the worker's own poll;
- anything else: 409 with the reason (final, or a first send that may be in flight).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody
from mmo_core.errors import InvalidRequest
from mmo_core.types import StatusReport

from mmo_host import audit, db, jobs, operator, payments, reversals
from mmo_host.controllers import operations
from mmo_host.controllers.admin_base import ADMIN_PATH, AdminMmoController, Conflict, NotFound
from mmo_host.controllers.payments import IdempotencyKey
from mmo_host.errors import API_ERRORS, OPERATOR_ERRORS, error_responses
from mmo_host.gateway import Gateway
from mmo_host.records import CallbackRecord, JobRecord, PaymentRecord
from mmo_host.schemas import PaymentResource
from mmo_host.worker import Worker

# how long a job claimed by a retry is held against the worker (the call's own timeout
# is shorter: operator.call)
_CLAIM_LEASE = 120.0


async def payment(payment_id: str) -> PaymentRecord:
    """Any client's payment (404 when there is none)."""
    pid = payments.parse_id(payment_id)
    row = (
        await db.fetchrow_as(PaymentRecord, "SELECT * FROM payments WHERE id = $1", pid)
        if pid
        else None
    )
    if row is None:
        raise NotFound(f"No transaction {payment_id!r}")
    return row


def callback_body(row: CallbackRecord, with_body: bool = True) -> dict[str, Any]:
    """A kept callback for a person: its outcome, and the request as received (headers
    redacted when stored; the body as text)."""
    body: dict[str, Any] = {
        "id": str(row.id),
        "provider": row.provider,
        "account": row.account,
        "kind": row.kind,
        "received_at": row.received_at,
        "remote_addr": row.remote_addr,
        "verified": row.verified,
        "processed": row.processed,
        "processed_at": row.processed_at,
        "flag": row.flag,
        "error": row.error,
        "payment_id": str(row.payment_id) if row.payment_id else None,
    }
    if with_body:
        body.update(
            method=row.method,
            path=row.path,
            query=row.query,
            headers=row.headers,
            body=bytes(row.body).decode("utf-8", errors="replace"),
        )
    return body


def _job(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "target": job.target,
        "run_at": job.run_at,
        "attempts": job.attempts,
        "running": job.locked_by is not None,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "done_at": job.done_at,
    }


async def _story(row: PaymentRecord) -> dict[str, Any]:
    history = await db.fetch(
        """SELECT id, from_status, to_status, source, callback_id, detail, created_at
           FROM payment_transitions WHERE payment_id = $1 ORDER BY id""",
        row.id,
    )
    events = await db.fetch(
        """SELECT id, type, created_at, delivered_at FROM outbox_events
           WHERE payment_id = $1 ORDER BY created_at, id""",
        row.id,
    )
    kept_jobs = await db.fetch_as(
        JobRecord, "SELECT * FROM jobs WHERE payment_id = $1 ORDER BY created_at, id", row.id
    )
    entries = await db.fetch(
        """SELECT id, reason, evidence, created_at, resolved_at, resolution FROM attention
           WHERE payment_id = $1 ORDER BY created_at""",
        row.id,
    )
    deliveries: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for job in kept_jobs:
        if job.event_id is not None:
            deliveries.setdefault(job.event_id, []).append(_job(job))
    return {
        "payment": payments.resource(row),
        "client_id": row.client_id,
        "routing": row.routing,
        "history": [
            {
                "id": h["id"],
                "from": h["from_status"],
                "to": h["to_status"],
                "source": h["source"],
                "callback_id": str(h["callback_id"]) if h["callback_id"] else None,
                "detail": db.loads(h["detail"]),
                "at": h["created_at"],
            }
            for h in history
        ],
        "reversals": [
            reversals.resource(r, row.currency) for r in await reversals.of_payment(row.id)
        ],
        "events": [
            {
                "id": str(e["id"]),
                "type": e["type"],
                "created_at": e["created_at"],
                "delivered_at": e["delivered_at"],
                "deliveries": deliveries.get(e["id"], []),
            }
            for e in events
        ],
        "jobs": [_job(j) for j in kept_jobs if j.event_id is None],
        "attention": [
            {
                "id": str(a["id"]),
                "reason": a["reason"],
                "evidence": db.loads(a["evidence"], {}),
                "created_at": a["created_at"],
                "resolved_at": a["resolved_at"],
                "resolution": a["resolution"],
            }
            for a in entries
        ],
    }


async def _claim_now(payment_id: uuid.UUID, kind: str, worker_id: str) -> JobRecord | None:
    """Take the payment's open `kind` job for this request, due now, as a worker claims a
    job (None when a worker holds it: it is running)."""
    return await db.fetchrow_as(
        JobRecord,
        """UPDATE jobs SET run_at = now(), locked_by = $3,
                           locked_until = now() + make_interval(secs => $4),
                           attempts = attempts + 1, rescheduled = false
           WHERE id = (SELECT id FROM jobs WHERE payment_id = $1 AND kind = $2
                         AND event_id IS NULL AND done_at IS NULL
                       ORDER BY run_at LIMIT 1)
             AND (locked_until IS NULL OR locked_until < now())
           RETURNING *""",
        payment_id,
        kind,
        worker_id,
        _CLAIM_LEASE,
    )


async def _open_job(payment_id: uuid.UUID, kind: str) -> JobRecord | None:
    return await db.fetchrow_as(
        JobRecord,
        """SELECT * FROM jobs WHERE payment_id = $1 AND kind = $2 AND event_id IS NULL
             AND done_at IS NULL ORDER BY run_at LIMIT 1""",
        payment_id,
        kind,
    )


async def retry(gateway: Gateway, row: PaymentRecord) -> dict[str, Any]:
    """The retry that is safe for the payment's state (see the module), or Conflict."""
    worker = Worker(gateway, worker_id=f"admin:{uuid.uuid4().hex[:8]}")
    if row.status == "new":
        queued = await _open_job(row.id, "send")
        if queued is not None:
            job = await _claim_now(row.id, "send", worker.id)
            if job is None:
                raise Conflict("The worker is sending it now", code="retry_running")
            await worker._job_send(job)
            done = "send"
        elif gateway.registry.get(row.provider).declaration.resend_safe:
            await payments.send_to_operator(gateway, row)
            done = "send"
        else:
            raise Conflict(
                "Its first send may be in flight or may have reached the operator, and "
                f"{row.provider} does not make a second send safe; the worker finds out",
                code="retry_unsafe",
            )
    elif row.status in ("pending", "unknown"):
        if await _open_job(row.id, "poll") is None:  # the worker gave up: one more poll
            await jobs.enqueue_payment_job("poll", row.id, 0)
        job = await _claim_now(row.id, "poll", worker.id)
        if job is None:
            raise Conflict("A poll of this payment is running now", code="retry_running")
        await worker._job_poll(job)
        done = "poll"
    else:
        raise Conflict(
            f"A {row.status} payment is final: there is nothing to retry",
            code="not_retryable",
        )
    after = await payment(str(row.id))
    job_after = await db.fetchrow_as(
        JobRecord,
        """SELECT * FROM jobs WHERE payment_id = $1 AND kind = $2 AND event_id IS NULL
           ORDER BY created_at DESC, id DESC LIMIT 1""",
        row.id,
        done,
    )
    return {
        "action": done,
        "payment": payments.resource(after),
        "job": _job(job_after) if job_after else None,
    }


async def reverse(
    gateway: Gateway, row: PaymentRecord, key: str | None, data: operations.ReversalCreate
) -> Response[PaymentResource]:
    """The reversal of `POST /api/v1/payments/{id}/reversal` for any client's payment, with
    its checks, state machine (mmo_host.reversals) and answers; 409 where the provider
    has no reversal."""
    provider = gateway.registry.get(row.provider)
    if not provider.implements("reverse") or "reversal" not in provider.declaration.operations:
        raise Conflict(
            f"{provider.declaration.display_name} offers no reversal: refund it another way",
            code="reversal_not_supported",
        )
    digest = operations._request_hash(data)
    replayed = operations._replay(row, await reversals.by_key(row.id, key), digest)
    if replayed is not None:
        return replayed
    operations._check_reversible(row, await reversals.open_of(row.id))
    async with db.transaction():
        row = await db.fetchone_as(
            PaymentRecord, "SELECT * FROM payments WHERE id = $1 FOR UPDATE", row.id
        )
        replayed = operations._replay(row, await reversals.by_key(row.id, key), digest)
        if replayed is not None:
            return replayed
        operations._check_reversible(row, await reversals.open_of(row.id))
        amount, minor = operations._check_amount(data, row, provider)
        reversal = await reversals.begin(
            gateway, row, key=key, digest=digest, minor=minor, reason=data.reason
        )
    answer = await operator.ask(
        gateway,
        row,
        "reverse",
        expect=StatusReport,
        payment=await payments.core_payment(row),
        amount=amount,
        reason=data.reason,
        reversal_id=str(reversal.id),
    )
    after = await reversals.answer(gateway, row, reversal, answer, "admin")
    row = await payment(str(row.id))
    if after.status in ("reversed", "pending"):
        return Response(
            payments.resource(row), status_code=200 if after.status == "reversed" else 202
        )
    raise operations._reversal_error(row.provider, answer)


class AdminTransactionsController(AdminMmoController):
    path = f"{ADMIN_PATH}/transactions"

    @get(
        "/{payment_id:str}",
        name="admin-mmo:transaction",
        operation_id="adminTransaction",
        responses=error_responses(*API_ERRORS, 403, 404),
        summary="A payment's whole story: resource, routing, history, reversals, events, jobs",
    )
    async def show(self, payment_id: FromPath[str]) -> dict[str, Any]:
        return await _story(await payment(payment_id))

    @get(
        "/{payment_id:str}/callbacks",
        name="admin-mmo:transaction-callbacks",
        operation_id="adminTransactionCallbacks",
        responses=error_responses(*API_ERRORS, 403, 404),
        summary="Every raw callback kept for a payment, with its verification and outcome",
    )
    async def callbacks(self, payment_id: FromPath[str]) -> dict[str, Any]:
        row = await payment(payment_id)
        kept = await db.fetch_as(
            CallbackRecord,
            "SELECT * FROM callbacks WHERE payment_id = $1 ORDER BY received_at, id",
            row.id,
        )
        return {"data": [callback_body(c) for c in kept]}

    @post(
        "/{payment_id:str}/retry",
        name="admin-mmo:transaction-retry",
        operation_id="adminTransactionRetry",
        responses=error_responses(*API_ERRORS, 403, 404, 409),
        summary="Send a queued payment now, or poll an open one now, where that is safe",
        status_code=200,
    )
    async def retry(self, request: Request, payment_id: FromPath[str]) -> dict[str, Any]:
        async with audit.action(request, "transaction.retry", f"payment:{payment_id}") as done:
            row = await payment(payment_id)
            return done(await retry(request.app.state.gateway, row))

    @post(
        "/{payment_id:str}/reverse",
        name="admin-mmo:transaction-reverse",
        operation_id="adminTransactionReverse",
        responses=error_responses(
            *API_ERRORS, 402, 403, 404, 409, 422, *OPERATOR_ERRORS, _202=operations.ACCEPTED
        ),
        summary="Reverse (refund) a succeeded payment through its operator, all or part",
        status_code=200,
        request_max_body_size=16 * 1024,
    )
    async def reverse(
        self,
        request: Request,
        payment_id: FromPath[str],
        idempotency_key: IdempotencyKey,
        data: JSONBody[operations.ReversalCreate],
    ) -> Response[PaymentResource]:
        """As `POST /api/v1/payments/{id}/reversal` (same body, Idempotency-Key and
        answers), for any client's payment; 409 `reversal_not_supported` where the
        provider has no reversal."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise InvalidRequest(
                "The Idempotency-Key header has 1 to 255 characters",
                code="idempotency_key_required",
                http_status=400,
            )
        body = {"reversal": data, "idempotency_key": idempotency_key}
        async with audit.action(
            request, "transaction.reverse", f"payment:{payment_id}", body
        ) as done:
            row = await payment(payment_id)
            return done(await reverse(request.app.state.gateway, row, idempotency_key, data))
