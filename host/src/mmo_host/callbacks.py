"""Operators' webhooks: keep the raw request first, then authenticate, parse, match, apply.

An operator that got a 2xx can rely on its callback being kept: the row is committed
before anything else happens. Every outcome is written back on the row (`verified`,
`processed`, `payment_id`, `flag`, `error`):

- flag `unknown_provider` / `unknown_kind`: no such webhook route (404);
- `unverified`: the token or signature did not match (401);
- `malformed`: the body could not be read (400);
- `error`: the provider raised unexpectedly (503, so the operator retries; kept);
- `unmatched`: no payment for it; kept for a person;
- `mismatch`: amount or phone differ from the payment's; not applied;
- `duplicate`: the payment already had this status;
- `conflict`: it contradicts a final status; not applied;
- `unconfirmed`: unsigned, and the operator's status API did not confirm it;
- `inbound`: a payment the gateway did not start (M-Pesa C2B), stored as a new collection;
  `matched` when it settled an open payment instead (see `payments.record_inbound`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from mmo_core.errors import CallbackVerificationFailed, MmoError
from mmo_core.types import CallbackOutcome, InboundCallback, PaymentUpdate, WebhookReply

from mmo_host import db, jobs, payments
from mmo_host.gateway import Gateway

log = logging.getLogger("mmo.callbacks")


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: Any
    media_type: str = "application/json"


def _error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


async def store_raw(segment: str, kind: str, request_info: dict[str, Any]) -> uuid.UUID:
    callback_id = uuid.uuid4()
    await db.fetch(
        """INSERT INTO callbacks (id, provider, kind, method, path, query, headers, body,
                                  remote_addr)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)""",
        callback_id,
        segment,
        kind,
        request_info["method"],
        request_info["path"],
        db.jsonb(request_info["query"]),
        db.jsonb(request_info["headers"]),
        request_info["body"],
        request_info["remote_addr"],
    )
    return callback_id


async def _mark(callback_id: uuid.UUID, **fields: Any) -> None:
    fields.setdefault("processed", True)
    columns = list(fields)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
    await db.fetch(
        f"UPDATE callbacks SET {assignments}, processed_at = now() WHERE id = $1",  # noqa: S608
        callback_id,
        *[fields[name] for name in columns],
    )


async def receive(gateway: Gateway, segment: str, kind: str, info: dict[str, Any]) -> Reply:
    callback_id = await store_raw(segment, kind, info)
    provider = gateway.registry.by_route_segment(segment)
    if provider is None:
        await _mark(callback_id, flag="unknown_provider")
        return _error_reply(404, "not_found", "No such webhook")
    if provider.declaration.webhook_kinds and kind not in provider.declaration.webhook_kinds:
        await _mark(callback_id, flag="unknown_kind")
        return _error_reply(404, "not_found", "No such webhook")
    await db.fetch("UPDATE callbacks SET provider = $2 WHERE id = $1", callback_id, provider.name)
    inbound = InboundCallback(
        provider=provider.name,
        kind=kind,
        method=info["method"],
        path=info["path"],
        query=info["query"],
        headers=info["headers"],
        body=info["body"],
        remote_addr=info["remote_addr"],
    )
    context = gateway.context(provider.name)
    try:
        outcome: CallbackOutcome = await provider.call(
            "parse_callback", context=context, callback=inbound
        )
    except CallbackVerificationFailed as exc:
        await _mark(callback_id, verified=False, flag="unverified", error=exc.message)
        return _error_reply(401, exc.code, "Callback verification failed")
    except MmoError as exc:
        await _mark(callback_id, flag="malformed", error=exc.message[:1000])
        return _error_reply(400, exc.code, exc.message)
    except Exception as exc:
        log.exception("provider %s raised while parsing a callback", provider.name)
        await _mark(callback_id, processed=False, flag="error", error=type(exc).__name__)
        return _error_reply(503, "internal_error", "The callback could not be processed now")
    reply = _reply(outcome.reply)
    if outcome.update is None and outcome.inbound is None:
        await _mark(callback_id, verified=True)
        return reply
    try:
        if outcome.inbound is not None:
            row, flag = await payments.record_inbound(
                gateway, provider.name, outcome.inbound, callback_id
            )
            await _mark(callback_id, verified=True, payment_id=row["id"], flag=flag)
        else:
            await _apply(gateway, provider.name, callback_id, outcome)
    except MmoError as exc:  # what the provider reported cannot be a payment (its amount)
        await _mark(callback_id, verified=True, flag="malformed", error=exc.message[:1000])
        return _error_reply(400, exc.code, exc.message)
    except Exception as exc:
        log.exception("callback %s could not be applied", callback_id)
        await _mark(
            callback_id, verified=True, processed=False, flag="error", error=type(exc).__name__
        )
        return _error_reply(503, "internal_error", "The callback could not be processed now")
    return reply


# Seconds before each new attempt to match an unmatched callback (then a person looks).
REMATCH_DELAYS: tuple[float, ...] = (1, 3, 10, 30, 60, 300)


async def rematch(gateway: Gateway, callback_id: uuid.UUID) -> str | None:
    """Parse a stored, unmatched callback again and apply it; return its flag afterwards."""
    row = await db.fetchrow("SELECT * FROM callbacks WHERE id = $1", callback_id)
    if row is None or row["flag"] != "unmatched":
        return None if row is None else row["flag"]
    provider = gateway.registry.get(row["provider"])
    inbound = InboundCallback(
        provider=provider.name,
        kind=row["kind"],
        method=row["method"],
        path=row["path"],
        query=db.loads(row["query"], {}),
        headers=db.loads(row["headers"], {}),
        body=bytes(row["body"]),
        remote_addr=row["remote_addr"],
    )
    outcome: CallbackOutcome = await provider.call(
        "parse_callback", context=gateway.context(provider.name), callback=inbound
    )
    if outcome.update is not None:
        await _apply(gateway, provider.name, callback_id, outcome, first_time=False)
    after = await db.fetchrow("SELECT flag FROM callbacks WHERE id = $1", callback_id)
    return after["flag"]


def _reply(reply: WebhookReply) -> Reply:
    return Reply(reply.status_code, reply.body, reply.media_type)


async def _apply(
    gateway: Gateway,
    provider: str,
    callback_id: uuid.UUID,
    outcome: CallbackOutcome,
    first_time: bool = True,
) -> None:
    update: PaymentUpdate = outcome.update  # type: ignore[assignment]
    row = await payments.find_for_provider(
        provider, payment_id=update.payment_id, provider_reference=update.provider_reference
    )
    if row is None:
        await _mark(callback_id, verified=True, flag="unmatched")
        if first_time:
            # It may have overtaken the initiate answer that names the payment: look again.
            await jobs.enqueue_rematch(callback_id, REMATCH_DELAYS[0])
        log.warning("callback %s from %s matches no payment (yet)", callback_id, provider)
        return
    if not payments.amount_matches(row, update.amount) or (
        update.msisdn is not None and update.msisdn != row["msisdn"]
    ):
        await _mark(
            callback_id,
            verified=True,
            payment_id=row["id"],
            flag="mismatch",
            error="amount or phone number differ from the payment's",
        )
        log.warning("callback %s disagrees with payment %s; not applied", callback_id, row["id"])
        return
    status = update.status
    detail: dict[str, Any] = {"authenticated": outcome.authenticated}
    failure = update.failure
    confirm = gateway.context(provider).settings.confirm_callbacks
    detail["confirmation"] = "required" if confirm else "off"
    if not outcome.authenticated and payments.is_final(status) and confirm:
        report = await _confirm(gateway, provider, row, update)
        detail["confirmed_by_status"] = report.status if report else None
        if report is None or report.status != status:
            await _mark(
                callback_id,
                verified=True,
                payment_id=row["id"],
                flag="unconfirmed",
                error=f"status API says {report.status if report else 'nothing'}",
            )
            return
        # the status API's failure is the operator's fuller account (its own code)
        failure = report.failure or failure
    transition = await payments.apply_transition(
        row["id"],
        status,
        source="callback",
        provider_reference=update.provider_reference,
        provider_transaction_id=update.provider_transaction_id,
        provider_data=update.provider_data or None,
        failure=failure,
        callback_id=callback_id,
        detail=detail,
    )
    flag = None
    if not transition.changed:
        flag = "duplicate" if transition.previous == status else "conflict"
    await _mark(callback_id, verified=True, payment_id=row["id"], flag=flag)


async def _confirm(gateway: Gateway, provider: str, row: Any, update: PaymentUpdate):
    payment = await payments.core_payment(row)
    if payment.provider_reference is None and update.provider_reference:
        # the initiate answer was lost (timeout): the callback tells the operator's reference
        payment = msgspec.structs.replace(payment, provider_reference=update.provider_reference)
    try:
        return await asyncio.wait_for(
            gateway.registry.get(provider).call(
                "status", context=gateway.context(provider), payment=payment
            ),
            timeout=gateway.config.operator_timeout,
        )
    except (MmoError, TimeoutError) as exc:
        log.warning("could not confirm payment %s: %s", row["id"], type(exc).__name__)
        return None
