"""Payments: `POST /v1/payments` (our reference is the idempotency key: a reused one answers
409), `GET /v1/payments/{id}` and `/v1/payments/by-reference/{reference}`; the signed
callback to the payment's callback URL."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_example.plugin import sign
from mmo_example.simulator.errors import error
from mmo_example.simulator.state import ExampleSandbox, Sandbox
from mmo_example.wire import DECLINES, PaymentCreate, PaymentView


def _unauthorised() -> Response[Any]:
    return error(401, "invalid_token", "The access token is missing or expired")


def _finish(sandbox: ExampleSandbox, view: PaymentView, body: PaymentCreate, account: str) -> None:
    """Decide the outcome now; tell the caller by callback after the delay."""
    last4 = body.msisdn[-4:]
    if last4 in DECLINES:
        code, text, final = DECLINES[last4]
        done = msgspec.structs.replace(view, status=final, reason_code=code, reason=text)
    else:
        done = msgspec.structs.replace(view, status="SUCCESSFUL")
    sandbox.payments[view.id] = done
    sandbox.ledger.record(view.id, status=done.status)
    raw = msgspec.json.encode(done)
    sandbox.notify(
        body.callback_url,
        raw,
        case=scenario(body.msisdn),
        delay=sandbox.accounts[account].callback_delay,
        headers={"X-Example-Signature": sign(sandbox.accounts[account].webhook_secret, raw)},
    )


@post("/v1/payments", status_code=202)
async def create(request: Request, sandbox: Sandbox) -> Response[Any]:
    account = sandbox.authorised(request)
    refused = await sandbox.gate(
        lambda: None if account is not None else _unauthorised(),
        lambda status: error(status, "internal_error", "Simulated failure"),
    )
    if refused is not None or account is None:
        return refused or _unauthorised()
    try:
        body = msgspec.json.decode(await request.body(), type=PaymentCreate)
    except msgspec.MsgspecError as exc:
        return error(400, "invalid_request", str(exc))
    if (account, body.reference) in sandbox.by_reference:
        return error(409, "duplicate_reference", "This reference was already used")
    view = PaymentView(
        id="EX" + uuid.uuid4().hex[:16].upper(),
        reference=body.reference,
        status="PENDING",
        amount=body.amount,
        currency=body.currency,
        msisdn=body.msisdn,
    )
    sandbox.payments[view.id] = view
    sandbox.owner[view.id] = account
    sandbox.by_reference[(account, body.reference)] = view.id
    sandbox.ledger.record(
        view.id,
        account=account,
        reference=body.reference,
        kind=body.kind,
        amount=body.amount,
        currency=body.currency,
        status="PENDING",
    )
    _finish(sandbox, view, body, account)
    await sandbox.hang()
    return Response(msgspec.to_builtins(view), status_code=202)


async def _read(request: Request, sandbox: ExampleSandbox, payment_id: str) -> Response[Any]:
    await sandbox.injector.latency()
    account = sandbox.authorised(request)
    if account is None:
        return _unauthorised()
    view = sandbox.payments.get(payment_id)
    if view is None or sandbox.owner.get(payment_id) != account:  # not this account's
        return error(404, "not_found", "No such payment")
    return Response(msgspec.to_builtins(view))


@get("/v1/payments/{payment_id:str}")
async def read(request: Request, payment_id: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    return await _read(request, sandbox, payment_id)


@get("/v1/payments/by-reference/{reference:str}")
async def read_by_reference(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    account = sandbox.authorised(request) or ""
    return await _read(request, sandbox, sandbox.by_reference.get((account, reference), ""))


ROUTES = [create, read, read_by_reference]
