"""Operators' webhooks: keep the raw request first, then authenticate, parse, match, apply.

An operator that got a 2xx can rely on its callback being kept: the row is committed
before anything else happens. Every outcome is written back on the row (`verified`,
`processed`, `payment_id`, `flag`, `error`):

- flag `unknown_provider` / `unknown_kind` / `unknown_account`: no such webhook route
  (404);
- `unverified`: the token or signature did not match (401);
- `malformed`: the path, token or body is garbage, or the body could not be read (400,
  so the operator does not retry it; the row is kept, its text made storable);
- `error`: the provider raised unexpectedly on a readable request (503, so the operator
  retries; kept);
- `unmatched`: no payment for it; kept for a person;
- `mismatch`: amount or phone differ from the payment's; not applied;
- `duplicate`: the payment already had this status;
- `conflict`: it contradicts a final status; not applied;
- `unconfirmed`: unsigned, and the operator's status API did not confirm it (for a payment
  the operator reported, `inbound_status` did not show it: nothing was stored);
- `inbound`: a payment the gateway did not start (M-Pesa C2B), stored as a new collection;
  `matched` when it settled an open payment instead (see `payments.record_inbound`).

`replay` processes a kept callback again through the same steps (the admin API's
`POST /api/v1/admin/mmo/callbacks/{id}/replay`), unless it already took effect;
`rematch` is the worker's narrower retry of an unmatched one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.errors import CallbackVerificationFailed, MmoError
from mmo_core.types import CallbackOutcome, InboundCallback, WebhookReply

from mmo_host import db, hygiene, jobs, logs, metrics, payments, reports, sources
from mmo_host.gateway import Gateway
from mmo_host.records import CallbackRecord

log = logging.getLogger("mmo.callbacks")


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: Any
    media_type: str = "application/json"


def _error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


async def store_raw(segment: str, kind: str, request_info: dict[str, Any]) -> uuid.UUID:
    """Keep the request as received; text made storable (hygiene.storable), body as bytes."""
    callback_id = uuid.uuid4()
    await db.fetch(
        """INSERT INTO callbacks (id, provider, kind, method, path, query, headers, body,
                                  remote_addr)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)""",
        callback_id,
        hygiene.storable(segment, 64),
        hygiene.storable(kind, 64),
        request_info["method"],
        hygiene.storable(request_info["path"]),
        db.jsonb(hygiene.storable_mapping(request_info["query"])),
        db.jsonb(hygiene.storable_mapping(request_info["headers"])),
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
    metrics.callback(callback_id, fields)


async def receive(gateway: Gateway, segment: str, kind: str, info: dict[str, Any]) -> Reply:
    callback_id = await store_raw(segment, kind, info)
    return await _process(gateway, callback_id, segment, kind, info)


async def _process(
    gateway: Gateway,
    callback_id: uuid.UUID,
    segment: str,
    kind: str,
    info: dict[str, Any],
    first_time: bool = True,
) -> Reply:
    """Route, check the source, authenticate, parse and apply a kept callback; every
    outcome is written on its row. `first_time` is False for a replay (no rematch job)."""
    problem = info.get("problem")
    if problem:  # garbage in the path, token or body: kept, refused, never retried
        await _mark(callback_id, flag="malformed", error=problem)
        return _error_reply(400, "malformed_callback", problem)
    provider = gateway.registry.by_route_segment(segment)
    if provider is None:
        await _mark(callback_id, flag="unknown_provider")
        return _error_reply(404, "not_found", "No such webhook")
    if provider.declaration.webhook_kinds and kind not in provider.declaration.webhook_kinds:
        await _mark(callback_id, flag="unknown_kind")
        return _error_reply(404, "not_found", "No such webhook")
    # the account named in the URL we handed the operator (none: `default`)
    account = info["query"].get("account") or DEFAULT_ACCOUNT
    if account not in gateway.accounts.get(provider.name, {}):
        await _mark(callback_id, flag="unknown_account")
        return _error_reply(404, "not_found", "No such webhook")
    # the provider and account it is for: written with its outcome (one UPDATE, not two)
    routed = {"provider": provider.name, "account": account}
    source = sources.client_address(info["remote_addr"], info["headers"], gateway.trusted_proxies)
    if not sources.allowed(source, gateway.allowed_sources.get((provider.name, account), ())):
        await _mark(
            callback_id, **routed, verified=False, flag="unverified", error=f"source {source}"
        )
        log.warning("callback %s for %s from a source not allowed", callback_id, provider.name)
        return _error_reply(403, "forbidden", "This source may not send callbacks")
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
    context = gateway.context(provider.name, account)
    try:
        outcome: CallbackOutcome = await provider.call(
            "parse_callback", context=context, callback=inbound
        )
    except CallbackVerificationFailed as exc:
        await _mark(callback_id, **routed, verified=False, flag="unverified", error=exc.message)
        return _error_reply(401, exc.code, "Callback verification failed")
    except MmoError as exc:
        await _mark(
            callback_id, **routed, flag="malformed", error=hygiene.storable(exc.message, 1000)
        )
        return _error_reply(400, exc.code, exc.message)
    except (ValueError, RecursionError, msgspec.MsgspecError) as exc:
        # garbage the provider could not read (bad UTF-8, bad JSON): the operator's to fix
        log.warning("provider %s could not read a callback: %s", provider.name, type(exc).__name__)
        await _mark(callback_id, **routed, flag="malformed", error=type(exc).__name__)
        return _error_reply(400, "malformed_callback", "The callback body could not be read")
    except Exception as exc:
        log.exception("provider %s raised while parsing a callback", provider.name)
        await _mark(callback_id, **routed, processed=False, flag="error", error=type(exc).__name__)
        return _error_reply(503, "internal_error", "The callback could not be processed now")
    reply = _reply(outcome.reply)
    if outcome.update is None and outcome.inbound is None:
        await _mark(callback_id, **routed, verified=True)
        return reply
    try:
        if outcome.inbound is not None:
            row, flag = await payments.record_inbound(
                gateway, provider.name, outcome.inbound, callback_id, account
            )
            await _mark(
                callback_id, **routed, verified=True, payment_id=row.id if row else None, flag=flag
            )
        else:
            await _apply(
                gateway,
                provider.name,
                account,
                callback_id,
                outcome,
                first_time=first_time,
                routed=routed,
            )
    except MmoError as exc:  # what the provider reported cannot be a payment (its amount)
        await _mark(
            callback_id, **routed, verified=True, flag="malformed", error=exc.message[:1000]
        )
        return _error_reply(400, exc.code, exc.message)
    except Exception as exc:
        log.exception("callback %s could not be applied", callback_id)
        await _mark(
            callback_id,
            **routed,
            verified=True,
            processed=False,
            flag="error",
            error=type(exc).__name__,
        )
        return _error_reply(503, "internal_error", "The callback could not be processed now")
    return reply


async def rematch(gateway: Gateway, callback_id: uuid.UUID) -> str | None:
    """Parse a stored, unmatched callback again and apply it; return its flag afterwards."""
    row = await db.fetchrow_as(CallbackRecord, "SELECT * FROM callbacks WHERE id = $1", callback_id)
    if row is None or row.flag != "unmatched":
        return None if row is None else row.flag
    provider = gateway.registry.get(row.provider)
    inbound = InboundCallback(
        provider=provider.name,
        kind=row.kind,
        method=row.method,
        path=row.path,
        query=row.query,
        headers=row.headers,
        body=bytes(row.body),
        remote_addr=row.remote_addr,
    )
    account = row.account or DEFAULT_ACCOUNT
    outcome: CallbackOutcome = await provider.call(
        "parse_callback", context=gateway.context(provider.name, account), callback=inbound
    )
    if outcome.update is not None:
        await _apply(gateway, provider.name, account, callback_id, outcome, first_time=False)
    after = await db.fetchone_as(
        CallbackRecord, "SELECT * FROM callbacks WHERE id = $1", callback_id
    )
    return after.flag


# flags of a callback that took effect, or whose report the payment already had: a replay
# would apply it twice, or change nothing
APPLIED_FLAGS = frozenset({"duplicate", "inbound", "matched"})
WEBHOOK_PREFIX = "/api/v1/webhooks/"


class NotReplayable(Exception):
    """A kept callback that is not processed again (`reason` says why)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def applied_reason(row: CallbackRecord, applied: bool) -> str | None:
    """Why a kept callback must not be processed again (`applied`: a status change
    names it), or None."""
    if applied:
        return "applied"
    if row.flag in APPLIED_FLAGS:
        return row.flag
    if row.flag is None and row.processed and row.verified:
        return "applied"  # processed with nothing to flag: it took effect or had nothing to
    return None


async def replay(gateway: Gateway, callback_id: uuid.UUID) -> CallbackRecord | None:
    """Process a kept callback again, as if it had just arrived (after a fix of the
    configuration, the plugin or the payment); the row afterwards (None: no such row).

    Everything `receive` checks is checked again on what was kept: the route, the account,
    the source address against today's allow-list (a callback refused for its source is
    never let in by a replay), the token or signature, then parse and apply. A callback
    that took effect (a status change names it, or its flag says so) raises NotReplayable.
    An unmatched one is matched again, without another rematch job.
    """
    row = await db.fetchrow_as(CallbackRecord, "SELECT * FROM callbacks WHERE id = $1", callback_id)
    if row is None:
        return None
    named = await db.fetchrow(
        "SELECT 1 FROM payment_transitions WHERE callback_id = $1 LIMIT 1", callback_id
    )
    reason = applied_reason(row, named is not None)
    if reason is not None:
        raise NotReplayable(reason, f"The callback was already applied ({reason})")
    segment, kind = _route_of(gateway, row)
    body = bytes(row.body)
    scope: Any = {"type": "http", "path": row.path, "query_string": b"", "headers": []}
    info = {
        "method": row.method,
        "path": row.path,
        "query": row.query,
        "headers": row.headers,
        "body": body,
        "remote_addr": row.remote_addr,
        "problem": hygiene.webhook_problem(scope, segment, kind, row.query, body),
    }
    # the outcome is decided afresh: what the first processing wrote is in the audit log
    await db.fetch(
        "UPDATE callbacks SET verified = NULL, processed = false, flag = NULL, error = NULL "
        "WHERE id = $1",
        callback_id,
    )
    await _process(gateway, callback_id, segment, kind, info, first_time=False)
    return await db.fetchone_as(
        CallbackRecord, "SELECT * FROM callbacks WHERE id = $1", callback_id
    )


def _route_of(gateway: Gateway, row: CallbackRecord) -> tuple[str, str]:
    """The route segment and kind the callback came in by (from its kept path)."""
    rest = row.path[len(WEBHOOK_PREFIX) :] if row.path.startswith(WEBHOOK_PREFIX) else ""
    segment, _, kind = rest.partition("/")
    if segment and kind:
        return segment, kind
    provider = gateway.registry.providers.get(row.provider)
    return (provider.declaration.route_segment if provider else row.provider), row.kind


def _reply(reply: WebhookReply) -> Reply:
    return Reply(reply.status_code, reply.body, reply.media_type)


async def _apply(
    gateway: Gateway,
    provider: str,
    account: str,
    callback_id: uuid.UUID,
    outcome: CallbackOutcome,
    first_time: bool = True,
    routed: dict[str, str] | None = None,
) -> None:
    """Match the report to its payment and apply it; its outcome is written on the
    callback's row, with the `routed` columns (provider, account) not written yet."""
    routed = routed or {}
    update = outcome.update
    if update is None:
        return
    row = await payments.find_for_provider(
        provider,
        payment_id=update.payment_id,
        provider_reference=update.provider_reference,
        account=account,
    )
    if row is not None:
        logs.follow(row)  # this request's later lines name the payment and its request
    if row is None:
        await _mark(callback_id, **routed, verified=True, flag="unmatched")
        if first_time:
            # It may have overtaken the initiate answer that names the payment: look again.
            await jobs.enqueue_rematch(callback_id, _rematch_delay(gateway, 1))
        log.warning("callback %s from %s matches no payment (yet)", callback_id, provider)
        return
    applied = await reports.apply(
        gateway,
        row,
        update,
        source="callback",
        authenticated=outcome.authenticated,
        callback_id=callback_id,
        detail={"authenticated": outcome.authenticated},
    )
    fields: dict[str, Any] = {"verified": True, "payment_id": row.id, "flag": applied.flag}
    if applied.flag == "mismatch":
        fields["error"] = "amount or phone number differ from the payment's"
    elif applied.flag == "unconfirmed":
        said = applied.confirmed_by.status if applied.confirmed_by else "nothing"
        fields["error"] = f"status API says {said}"
    await _mark(callback_id, **routed, **fields)


def _rematch_delay(gateway: Gateway, tries: int) -> float:
    delay = gateway.schedule.rematch.after(tries)
    return 0.0 if delay is None else delay
