"""Payments: creation with idempotency, the one function that changes a status, reading.

Every status change goes through `apply_transition`: one transaction that locks the
payment row, checks the change is allowed, updates the row, writes the history row and
the outbox event. Terminal states never change, except succeeded -> reversed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from mmo_core import failures, money, phones
from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.errors import MmoError
from mmo_core.types import (
    FINAL_STATUSES,
    Failure,
    InboundPayment,
    InitiateResult,
    NextAction,
    Payment,
    Reversal,
    StatusReport,
)

from mmo_host import db, jobs, logs, metrics, operator, outbound, routing
from mmo_host.gateway import Gateway
from mmo_host.records import PaymentRecord, ReversalRecord
from mmo_host.schemas import (
    FailureBody,
    NextActionBody,
    PaymentCreate,
    PaymentResource,
    RoutingBody,
)

log = logging.getLogger("mmo.payments")

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"new"}),
    "new": frozenset({"pending", "succeeded", "failed", "expired", "unknown"}),
    "pending": frozenset({"succeeded", "failed", "expired", "unknown"}),
    "unknown": frozenset({"pending", "succeeded", "failed", "expired"}),
    "succeeded": frozenset({"reversed"}),
    "failed": frozenset(),
    "expired": frozenset(),
    "reversed": frozenset(),
}


class IdempotencyConflict(MmoError):
    code = "idempotency_key_reused"
    http_status = 409


class RequestInProgress(MmoError):
    code = "request_in_progress"
    http_status = 409


class PaymentNotFound(MmoError):
    code = "not_found"
    http_status = 404


@dataclass(frozen=True)
class Transition:
    row: PaymentRecord
    changed: bool
    previous: str | None


# -- reading -------------------------------------------------------------------------------


def resource(row: PaymentRecord) -> PaymentResource:
    """The payment resource of the API, from a `payments` row."""
    failure = (
        FailureBody(
            row.failure_code,
            row.failure_message or "",
            provider_code=row.failure_provider_code,
            provider_message=row.failure_provider_message,
        )
        if row.failure_code
        else None
    )
    next_action = row.next_action
    return PaymentResource(
        id=str(row.id),
        type=row.type,
        status=row.status,
        provider=row.provider,
        account=row.account,
        amount=money.format_amount(row.amount_minor, row.currency),
        amount_reversed=money.format_amount(row.amount_reversed_minor, row.currency),
        currency=row.currency,
        msisdn=row.msisdn,
        reference=row.reference,
        description=row.description,
        metadata=row.metadata,
        provider_reference=row.provider_reference,
        provider_transaction_id=row.provider_transaction_id,
        failure=failure,
        next_action=msgspec.convert(next_action, NextActionBody) if next_action else None,
        origin=row.origin,
        routing=(
            msgspec.convert({**row.routing, "account": row.account}, RoutingBody)
            if row.routing
            else None
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def resource_json(row: PaymentRecord) -> str:
    """The payment resource as a JSONB parameter (the kept first answer, event payloads)."""
    return msgspec.json.encode(resource(row)).decode()


async def core_payment(row: PaymentRecord) -> Payment:
    """The payment as handed to a provider's hooks, with the reversals the host made of it
    (read only for a collection that has any: `amount_reversed` or a reversal row)."""
    found: tuple[Reversal, ...] = ()
    if row.type == "collection" and row.status in ("succeeded", "reversed"):
        rows = await db.fetch_as(
            ReversalRecord,
            "SELECT * FROM reversals WHERE payment_id = $1 ORDER BY created_at, id",
            row.id,
        )
        found = tuple(reversal_to_core(r, row.currency) for r in rows)
    return msgspec.structs.replace(to_core(row), reversals=found)


def reversal_to_core(row: ReversalRecord, currency: str) -> Reversal:
    """A `reversals` row as handed to the provider's hooks."""
    return Reversal(
        id=str(row.id),
        amount=money.from_minor(row.amount_minor, currency),
        currency=currency,
        status=row.status,
        provider_reference=row.provider_reference,
        provider_transaction_id=row.provider_transaction_id,
        provider_data=row.provider_data,
    )


def to_core(row: PaymentRecord) -> Payment:
    """The payment as handed to a provider's hooks (without its reversals)."""
    return Payment(
        id=str(row.id),
        type=row.type,
        amount=money.from_minor(row.amount_minor, row.currency),
        currency=row.currency,
        msisdn=row.msisdn,
        reference=row.reference,
        country=row.country,
        description=row.description,
        payer_message=row.payer_message,
        metadata=row.metadata,
        status=row.status,
        provider_reference=row.provider_reference,
        provider_transaction_id=row.provider_transaction_id,
        provider_data=row.provider_data,
        created_at=row.created_at,
        amount_reversed=money.from_minor(row.amount_reversed_minor, row.currency),
    )


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


async def get(payment_id: str) -> PaymentRecord:
    pid = parse_id(payment_id)
    row = (
        await db.fetchrow_as(PaymentRecord, "SELECT * FROM payments WHERE id = $1", pid)
        if pid
        else None
    )
    if row is None:
        raise PaymentNotFound(f"No payment {payment_id!r}")
    return row


async def find_for_provider(
    provider: str,
    *,
    payment_id: str | None,
    provider_reference: str | None,
    account: str = DEFAULT_ACCOUNT,
) -> PaymentRecord | None:
    """The payment an operator's report is about, among one account's payments only."""
    if payment_id and (pid := parse_id(payment_id)) is not None:
        row = await db.fetchrow_as(
            PaymentRecord,
            "SELECT * FROM payments WHERE id = $1 AND provider = $2 AND account = $3",
            pid,
            provider,
            account,
        )
        if row is not None:
            return row
    if provider_reference:
        return await db.fetchrow_as(
            PaymentRecord,
            "SELECT * FROM payments WHERE provider = $1 AND account = $2"
            " AND provider_reference = $3",
            provider,
            account,
            provider_reference,
        )
    return None


async def held_by_another(row: PaymentRecord, column: str, value: str) -> bool:
    """Whether another payment of the provider holds this operator identifier."""
    if column not in ("provider_reference", "provider_transaction_id"):
        raise ValueError(column)
    found = await db.fetchrow(
        f"SELECT 1 FROM payments WHERE provider = $1 AND {column} = $2 AND id <> $3",  # noqa: S608
        row.provider,
        value,
        row.id,
    )
    return found is not None


async def list_payments(
    *,
    client_id: str,
    reference: str | None = None,
    status: str | None = None,
    provider: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Any], str | None]:
    """Newest first, `limit` at a time; `cursor` continues after the last page's end."""
    clauses = ["client_id = $1"]
    args: list[Any] = [client_id]
    for column, value in (("reference", reference), ("status", status), ("provider", provider)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if cursor:
        created, pid = db.decode_cursor(cursor)
        args.extend([created, pid])
        clauses.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (
        f"SELECT * FROM payments WHERE {' AND '.join(clauses)} "  # noqa: S608 - placeholders only
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"
    )
    rows = await db.fetch_as(PaymentRecord, sql, *args)
    page = rows[:limit]
    next_cursor = db.encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return page, next_cursor


# -- the one function that changes a status ---------------------------------------------


async def apply_transition(
    gateway: Gateway,
    payment_id: uuid.UUID,
    to_status: str,
    *,
    source: str,
    provider_reference: str | None = None,
    provider_transaction_id: str | None = None,
    provider_data: dict[str, Any] | None = None,
    failure: Failure | None = None,
    next_action: NextAction | None = None,
    callback_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    record_response: bool = False,
) -> Transition:
    """Move a payment to `to_status` with its history row and event, atomically.

    A change that is not allowed (a duplicate, or a late callback contradicting a final
    state) changes nothing but this: an operator identifier the payment does not have yet
    is filled in (a receipt that a confirmed late callback tells). Identifiers are never
    written over: the caller (`reports.apply`) flags a report whose identifiers differ.
    The reversed amount is not this function's: `reversals.complete` counts it before
    moving a payment to `reversed`.
    """
    async with db.transaction():
        # one round trip locks the row, reads its status and updates it: `allowed` is
        # decided in SQL from the status the lock saw (`old`), by the same ALLOWED table
        found = await db.fetchrow(
            """
            WITH old AS (SELECT status FROM payments WHERE id = $1 FOR UPDATE),
            change AS (SELECT old.status AS previous, old.status = ANY($9::text[]) AS allowed
                       FROM old)
            UPDATE payments SET
                status = CASE WHEN change.allowed THEN $2 ELSE payments.status END,
                provider_reference = COALESCE(provider_reference, $3),
                provider_transaction_id = COALESCE(provider_transaction_id, $4),
                provider_data = CASE WHEN change.allowed
                    THEN provider_data || COALESCE($5::jsonb, '{}'::jsonb)
                    ELSE provider_data END,
                failure_code = CASE WHEN change.allowed THEN COALESCE($6, failure_code)
                               ELSE failure_code END,
                failure_message = CASE WHEN change.allowed THEN COALESCE($7, failure_message)
                                  ELSE failure_message END,
                failure_provider_code = CASE WHEN change.allowed AND $6::varchar IS NOT NULL
                                        THEN $10 ELSE failure_provider_code END,
                failure_provider_message = CASE WHEN change.allowed AND $6::varchar IS NOT NULL
                                           THEN $11 ELSE failure_provider_message END,
                next_action = CASE WHEN change.allowed THEN COALESCE($8::jsonb, next_action)
                              ELSE next_action END,
                updated_at = CASE WHEN change.allowed THEN now() ELSE updated_at END,
                version = version + CASE WHEN change.allowed THEN 1 ELSE 0 END
            FROM change
            WHERE id = $1
            RETURNING payments.*, change.previous
            """,
            payment_id,
            to_status,
            provider_reference,
            provider_transaction_id,
            db.jsonb(provider_data) if provider_data else None,
            failure.code if failure else None,
            failure.message if failure else None,
            db.jsonb(msgspec.to_builtins(next_action)) if next_action else None,
            _allowed_from(to_status),
            failure.provider_code if failure else None,
            failure.provider_message if failure else None,
        )
        if found is None:
            raise PaymentNotFound(f"No payment {payment_id}")
        row = PaymentRecord.from_row(found)
        current: str = found["previous"]
        allowed = to_status in ALLOWED[current]
        batch = db.Batch()
        # the resource as the API shows it: the event's payload and the kept first answer
        body = resource_json(row) if allowed or record_response else ""
        if allowed:
            _record_into(batch, gateway, row, current, source, callback_id, detail, body)
        if record_response:
            batch.add(
                "UPDATE payments SET first_response = $2::jsonb WHERE id = $1", payment_id, body
            )
        await batch.run()
        if allowed and row.batch_id is not None and is_final(row.status) and not is_final(current):
            from mmo_host import batches  # batches builds on payments

            await batches.item_final(gateway.schedule, row.batch_id)
        if allowed:
            metrics.transition(gateway, row, current, source)
        return Transition(row, allowed, current)


def _allowed_from(to_status: str) -> list[str]:
    """The statuses a payment may move to `to_status` from (ALLOWED, read backwards)."""
    return _ALLOWED_FROM.get(to_status, [])


_ALLOWED_FROM: dict[str, list[str]] = {}
for _from, _tos in ALLOWED.items():
    for _to in _tos:
        if _from is not None:
            _ALLOWED_FROM.setdefault(_to, []).append(_from)


async def _record(
    gateway: Gateway, row: PaymentRecord, previous: str | None, source: str, callback_id, detail
) -> None:
    """The history row, the event and the follow-up jobs of a status change, in one round
    trip (inside the change's transaction)."""
    batch = db.Batch()
    _record_into(batch, gateway, row, previous, source, callback_id, detail)
    await batch.run()


def _record_into(
    batch: db.Batch,
    gateway: Gateway,
    row: PaymentRecord,
    previous: str | None,
    source: str,
    callback_id: uuid.UUID | None,
    detail: dict[str, Any] | None,
    payload: str | None = None,
) -> None:
    batch.add(
        """INSERT INTO payment_transitions
               (payment_id, from_status, to_status, source, callback_id, detail)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
        row.id,
        previous,
        row.status,
        source,
        callback_id,
        db.jsonb(detail),
    )
    event_type = "payment.created" if previous is None else f"payment.{row.status}"
    _event_into(batch, gateway, row, event_type, payload)
    jobs.add_after_transition(batch, gateway.schedule, row, previous)


async def emit_event(gateway: Gateway, row: PaymentRecord, event_type: str) -> None:
    """Write an event about the payment `row` to the outbox, with its delivery jobs."""
    batch = db.Batch()
    _event_into(batch, gateway, row, event_type)
    await batch.run()


def _event_into(
    batch: db.Batch,
    gateway: Gateway,
    row: PaymentRecord,
    event_type: str,
    payload: str | None = None,
) -> None:
    """The event as a part of `batch`; `payload` is `resource_json(row)` when the caller
    has it already."""
    event_id = uuid.uuid4()
    batch.add(
        "INSERT INTO outbox_events (id, payment_id, type, payload) VALUES ($1, $2, $3, $4::jsonb)",
        event_id,
        row.id,
        event_type,
        resource_json(row) if payload is None else payload,
    )
    jobs.add_event_jobs(batch, gateway.schedule, event_id, row.id)


# -- creation ------------------------------------------------------------------------------


def request_hash(body: PaymentCreate) -> str:
    fields = msgspec.to_builtins(body)
    for name in ("payer_message", "account"):
        if fields.get(name) is None:
            # absent, as before the field existed: a retry across an upgrade hashes the same
            fields.pop(name, None)
    canonical = msgspec.json.encode(fields, order="sorted")
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Accepted:
    """A payment request that passed every check and may be stored."""

    provider: str
    payment: Payment
    # the routing decision (routing.Decision), kept on the payment as `routing`
    decision: routing.Decision | None = None


def check_request(gateway: Gateway, body: PaymentCreate) -> Accepted:
    """Validate everything before anything is stored; raise InvalidRequest/NotSupported."""
    amount = money.parse_amount(body.amount, body.currency)
    msisdn = phones.to_e164(body.msisdn)
    decision = gateway.router.choose(
        requested=body.provider,
        operation=body.type,
        msisdn=msisdn,
        currency=body.currency,
        account=body.account,
    )
    provider = decision.provider
    country = decision.located.country
    provider.declaration.check_amount(amount, body.currency)
    payment = Payment(
        id=str(uuid.uuid4()),
        type=body.type,
        amount=amount,
        currency=body.currency,
        msisdn=msisdn,
        reference=body.reference,
        country=country,
        description=body.description,
        payer_message=body.payer_message,
        metadata=body.metadata,
    )
    if provider.implements("validate"):
        context = gateway.context(provider.name, decision.account)
        provider.call_sync("validate", context=context, payment=payment)
    return Accepted(provider.name, payment, decision)


JSONB_COLUMNS = frozenset({"metadata", "provider_data", "routing"})


async def _insert(columns: dict[str, Any], *, on_conflict: str = "") -> PaymentRecord | None:
    """INSERT one payment as `new` (JSONB columns given as Python values); its row, or None
    when `on_conflict` (`DO NOTHING`) skipped it."""
    names = list(columns)
    values = [db.jsonb(v) if n in JSONB_COLUMNS else v for n, v in columns.items()]
    placeholders = [
        f"${i}::jsonb" if n in JSONB_COLUMNS else f"${i}" for i, n in enumerate(names, start=1)
    ]
    sql = (
        f"INSERT INTO payments (status, {', '.join(names)}) "  # noqa: S608 - our column names
        f"VALUES ('new', {', '.join(placeholders)}) {on_conflict} RETURNING *"
    )
    return await db.fetchrow_as(PaymentRecord, sql, *values)


async def insert_new(
    gateway: Gateway, client_id: str, key: str, digest: str, accepted: Accepted
) -> tuple[Any, bool]:
    """Store the payment as `new` with its history and event; or return the key's payment."""
    p = accepted.payment
    async with db.transaction():
        row = await _insert(
            {
                "id": uuid.UUID(p.id),
                "client_id": client_id,
                "idempotency_key": key,
                "request_hash": digest,
                "type": p.type,
                "provider": accepted.provider,
                "account": accepted.decision.account if accepted.decision else DEFAULT_ACCOUNT,
                "country": p.country,
                "amount_minor": money.to_minor(p.amount, p.currency),
                "currency": p.currency,
                "msisdn": p.msisdn,
                "reference": p.reference,
                "description": p.description,
                "payer_message": p.payer_message,
                "metadata": p.metadata,
                "routing": accepted.decision.record() if accepted.decision else None,
                "request_id": logs.current("request_id"),
            },
            on_conflict="ON CONFLICT (client_id, idempotency_key) DO NOTHING",
        )
        if row is not None:
            await _record(gateway, row, None, "api", None, None)
            return row, True
    existing = await db.fetchrow_as(
        PaymentRecord,
        "SELECT * FROM payments WHERE client_id = $1 AND idempotency_key = $2",
        client_id,
        key,
    )
    return existing, False


OPEN_STATUSES = ("new", "pending", "unknown")


async def inbound_confirmed(
    gateway: Gateway, provider: str, inbound: InboundPayment, account: str = DEFAULT_ACCOUNT
) -> bool:
    """Whether the operator's own records show the payment it reported (`inbound_status`);
    True for a provider without that hook (its callback URL's token vouches alone)."""
    if not gateway.registry.get(provider).implements("inbound_status"):
        return True
    answer = await operator.ask(
        gateway,
        operator.Target(provider, inbound.country, account),
        "inbound_status",
        expect=StatusReport,
        inbound=inbound,
    )
    if not answer.ok:
        log.warning(
            "%s: a reported payment could not be confirmed: %s", provider, answer.describe()
        )
        return False
    said: StatusReport = answer.value
    return said.status == "succeeded" and (said.amount is None or said.amount == inbound.amount)


async def record_inbound(
    gateway: Gateway,
    provider: str,
    inbound: InboundPayment,
    callback_id: uuid.UUID,
    account: str = DEFAULT_ACCOUNT,
) -> tuple[PaymentRecord | None, str]:
    """Store a payment the operator reports but the gateway did not start; return its row
    and what happened: `matched` (it settled an open collection), `inbound` (stored as a
    new succeeded collection), `duplicate` (this receipt is already recorded) or
    `unconfirmed` (the operator's records do not show it: nothing is stored, no row).

    The operator is asked first (`inbound_confirmed`), outside any lock; then all under one
    advisory lock per receipt, so that two deliveries of the same report (operators
    resend) never make two payments.
    """
    amount_minor = money.to_minor(inbound.amount, inbound.currency)  # a malformed amount
    if not await inbound_confirmed(gateway, provider, inbound, account):
        return None, "unconfirmed"
    receipt = inbound.provider_transaction_id
    data = {**inbound.provider_data, "origin": inbound.origin}
    if inbound.payer_name:
        data["payer_name"] = inbound.payer_name
    if inbound.occurred_at:
        data["occurred_at"] = inbound.occurred_at
    detail = {"origin": inbound.origin, "receipt": receipt}
    async with db.transaction():
        await db.fetch("SELECT pg_advisory_xact_lock(hashtext($1))", f"{provider}:{receipt}")
        existing = await db.fetchrow_as(
            PaymentRecord,
            "SELECT * FROM payments WHERE provider = $1 AND provider_transaction_id = $2",
            provider,
            receipt,
        )
        if existing is not None:
            return existing, "duplicate"
        match = None
        if inbound.account_reference:
            match = await db.fetchrow_as(
                PaymentRecord,
                """SELECT * FROM payments
                   WHERE provider = $1 AND type = 'collection' AND status = ANY($2::text[])
                     AND reference = $3 AND amount_minor = $4 AND currency = $5
                     AND account = $6
                   ORDER BY created_at LIMIT 1 FOR UPDATE""",
                provider,
                list(OPEN_STATUSES),
                inbound.account_reference,
                amount_minor,
                inbound.currency,
                account,
            )
        if match is not None:
            transition = await apply_transition(
                gateway,
                match.id,
                "succeeded",
                source="callback",
                provider_transaction_id=receipt,
                provider_data={"inbound": data},
                callback_id=callback_id,
                detail={**detail, "matched_by": "account_reference"},
            )
            log.info("payment %s: settled by an operator-reported payment", match.id)
            return transition.row, "matched"
        payment_id = uuid.uuid4()
        msisdn = inbound.msisdn or ""
        row = await _insert(
            {
                "id": payment_id,
                "client_id": inbound_client(gateway),
                "idempotency_key": f"inbound:{provider}:{receipt}",
                "request_hash": hashlib.sha256(f"{provider}:{receipt}".encode()).hexdigest(),
                "type": "collection",
                "provider": provider,
                "account": account,
                "country": inbound.country,
                "amount_minor": amount_minor,
                "currency": inbound.currency,
                "msisdn": msisdn,
                "reference": (inbound.account_reference or receipt)[:128],
                "metadata": {},
                "provider_transaction_id": receipt,
                "provider_data": data,
                "origin": inbound.origin[:16],
            }
        )
        if row is None:  # no ON CONFLICT clause: an INSERT that returns nothing is a bug
            raise LookupError(f"payment {payment_id} was not stored")
        await _record(gateway, row, None, "callback", callback_id, detail)
        transition = await apply_transition(
            gateway,
            payment_id,
            "succeeded",
            source="callback",
            callback_id=callback_id,
            detail=detail,
        )
    log.info(
        "payment %s: stored a %s payment reported by %s (%s)",
        payment_id,
        inbound.origin,
        provider,
        phones.mask(msisdn) if msisdn else "no number",
    )
    return transition.row, "inbound"


def inbound_client(gateway: Gateway) -> str:
    """The API client that owns payments the gateway did not start (mmo_host.keys)."""
    return gateway.keys.inbound_client


def replay(existing: PaymentRecord, digest: str) -> PaymentResource:
    """The first response for a reused idempotency key, or the reason there is none."""
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body"
        )
    if existing.first_response is None:
        if existing.status != "new":
            # the first request died before answering; the worker settled the payment since
            return resource(existing)
        raise RequestInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly"
        )
    return msgspec.json.decode(existing.first_response, type=PaymentResource)


async def send_to_operator(gateway: Gateway, row: PaymentRecord, attempt: int = 0) -> PaymentRecord:
    """Send a `new` payment to its operator once and record the answer.

    Called by the API outside any transaction, and by the worker for queued payments.
    The answer (operator.ask) decides: taken -> `pending`/`succeeded`; refused -> `failed`;
    not sent (breaker open, operator unavailable) -> stays `new` and a `send` job tries
    again on the schedule until `queue_for` after its creation, then `failed` with
    `provider_unavailable`; anything else -> `unknown`, found out by polling.

    Persist before you pay: where the provider implements `prepare` (the step before the
    money-moving call), its identifiers are committed on the payment first, so that after
    a crash in `initiate` the operator can still be asked. A `prepare` that fails moved
    no money: the payment stays `new`, queued like a call that was not sent. A payment
    that already holds an operator reference (a queued send after `prepare`) is not
    prepared again.
    """
    if row.provider_reference is None and gateway.registry.get(row.provider).implements("prepare"):
        prepared = await operator.ask(
            gateway, row, "prepare", expect=(InitiateResult, type(None)), payment=to_core(row)
        )
        if prepared.kind == "declined" and prepared.error is not None:
            # refused for good (the operator's rule, our credential): as a refused initiate
            exc = prepared.error
            failure = failures.from_error(exc)
            return await _settle(
                gateway, row, "failed", failure=failure, detail={"error": exc.code}
            )
        if not prepared.ok:  # not sent, or unknown: prepare moves no money, so try again
            log.warning("payment %s: prepare failed (%s)", row.id, prepared.describe())
            return await _queue(gateway, row, attempt, prepared)
        if prepared.value is not None:
            stored = await store_prepared(row, prepared.value)
            if stored is None:  # no longer open to a send (settled meanwhile)
                return await get(str(row.id))
            row = stored
    answer = await operator.ask(
        gateway, row, "initiate", expect=InitiateResult, payment=to_core(row)
    )
    if answer.ok:
        ack: InitiateResult = answer.value
        return await _settle(
            gateway,
            row,
            ack.status,
            provider_reference=ack.provider_reference,
            provider_transaction_id=ack.provider_transaction_id,
            provider_data=ack.provider_data,
            next_action=ack.next_action,
        )
    if answer.kind == "declined" and answer.error is not None:
        exc = answer.error
        failure = failures.from_error(exc)
        return await _settle(gateway, row, "failed", failure=failure, detail={"error": exc.code})
    if answer.kind == "not_sent":
        return await _queue(gateway, row, attempt, answer)
    log.warning("payment %s: initiate outcome unknown (%s)", row.id, answer.reason)
    return await _settle(gateway, row, "unknown", detail={"error": answer.reason})


async def store_prepared(row: PaymentRecord, prepared: InitiateResult) -> PaymentRecord | None:
    """Commit what `prepare` returned on the payment, in its own transaction, before
    `initiate`; None when the payment is no longer `new` or `unknown` (nothing sent then).
    An identifier already stored is never written over."""
    async with db.transaction():
        return await db.fetchrow_as(
            PaymentRecord,
            """UPDATE payments SET
                   provider_reference = COALESCE(provider_reference, $2),
                   provider_data = provider_data || COALESCE($3::jsonb, '{}'::jsonb),
                   updated_at = now()
               WHERE id = $1 AND status IN ('new', 'unknown')
               RETURNING *""",
            row.id,
            prepared.provider_reference,
            db.jsonb(prepared.provider_data) if prepared.provider_data else None,
        )


async def never_received(
    gateway: Gateway, row: PaymentRecord, source: str, error: MmoError
) -> PaymentRecord:
    """The operator says it has no record of a payment whose outcome was unknown.

    Where the provider makes a resend safe, send it again (with the same id, so the operator
    would refuse a second one); otherwise it failed: it never reached the operator.
    """
    if gateway.registry.get(row.provider).declaration.resend_safe:
        row = await send_to_operator(gateway, row)
        if row.status == "unknown":  # still no answer: keep finding out
            async with db.transaction():
                await jobs.enqueue_payment_job("poll", row.id, gateway.schedule.unknown_first)
        return row
    transition = await apply_transition(
        gateway,
        row.id,
        "failed",
        source=source,
        failure=failures.failure(failures.NOT_RECEIVED, "The operator never received the payment"),
        detail={"error": error.code},
    )
    return transition.row


async def _queue(
    gateway: Gateway, row: PaymentRecord, attempt: int, answer: operator.Answer
) -> PaymentRecord:
    """Keep the payment `new` and send it later; past `queue_for`, fail it."""
    age = (dt.datetime.now(dt.UTC) - row.created_at).total_seconds()
    reason = answer.error.message if answer.error is not None else answer.reason
    if answer.reason == outbound.AT_SLOT and age < gateway.schedule.queue_for:
        # the account's outbound limit holds a slot for it: due just before that slot
        delay: float | None = answer.retry_after or 0.0
    else:
        delay = gateway.schedule.send.after(
            attempt, age=age, retry_after=answer.retry_after if answer.error is not None else None
        )
    if delay is None:
        failure = failures.failure(failures.PROVIDER_UNAVAILABLE, f"Not sent: {reason}")
        return await _settle(
            gateway, row, "failed", failure=failure, detail={"error": "queue_timeout"}
        )
    async with db.transaction():
        await jobs.enqueue_payment_job("send", row.id, delay)
        await db.fetch(
            "UPDATE payments SET first_response = COALESCE(first_response, $2::jsonb) "
            "WHERE id = $1",
            row.id,
            resource_json(row),
        )
    log.info("payment %s queued: %s", row.id, reason)
    return await get(str(row.id))


async def _settle(
    gateway: Gateway, row: PaymentRecord, status: str, **fields: Any
) -> PaymentRecord:
    transition = await apply_transition(
        gateway, row.id, status, source="api", record_response=True, **fields
    )
    return transition.row


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def amount_matches(row: PaymentRecord, amount: Decimal | None) -> bool:
    return amount is None or money.to_minor(amount, row.currency) == row.amount_minor
