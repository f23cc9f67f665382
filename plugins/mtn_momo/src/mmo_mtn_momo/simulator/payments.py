"""Payments: `requesttopay`, `requesttowithdraw` (collection), `transfer` (disbursement,
remittance), `deposit` and `refund` (disbursement): create -> 202, read by X-Reference-Id;
delivery notifications on collections."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_mtn_momo.simulator import numbers
from mmo_mtn_momo.simulator.common import (
    TEXT_LIMIT,
    TRANSFER_PRODUCTS,
    digits_of,
    error,
    is_uuid4,
    product_of,
)
from mmo_mtn_momo.simulator.state import Caller, Key, MomoSandbox, Resource, Sandbox
from mmo_mtn_momo.wire import (
    ENVIRONMENT_CURRENCY,
    DeliveryNotification,
    Refund,
    RequestToPay,
    Transfer,
)

BODIES: dict[str, type] = {
    "requesttopay": RequestToPay,
    "requesttowithdraw": RequestToPay,
    "transfer": Transfer,
    "deposit": Transfer,
    "refund": Refund,
}
Body = RequestToPay | Transfer | Refund


async def _admit(
    request: Request, sandbox: MomoSandbox, product: str, kind: str
) -> tuple[Key, Caller] | Response[Any]:
    """Key, reference, credentials, injected 5xx, a reference not used yet by the account:
    (key, caller)."""
    refused = sandbox.subscription(request, product)
    if refused is not None:
        await sandbox.injector.latency()
        return refused
    reference = request.headers.get("x-reference-id")
    if not is_uuid4(reference):
        return error(400, "REQUEST_REJECTED", "X-Reference-Id must be a UUID version 4")
    caller = await sandbox.product_call(request, product)
    if isinstance(caller, Response):
        return caller
    status = sandbox.injector.error_status()
    if status is not None:  # before doing anything: the reference stays free
        return error(status, "INTERNAL_PROCESSING_ERROR", "Simulated failure")
    key = (caller.account, product, kind, reference or "")
    if key in sandbox.resources:
        return error(409, "RESOURCE_ALREADY_EXIST")
    return key, caller


def _refusal(body: Body, env: str) -> Response[Any] | None:
    """MoMo's synchronous refusals of a well-formed body, or None."""
    for text in (body.payer_message, body.payee_note):
        if len(text) > TEXT_LIMIT or "'" in text or "&" in text:
            return error(400, "REQUEST_REJECTED", "payerMessage/payeeNote not accepted")
    try:
        if Decimal(body.amount) <= 0:
            raise ValueError(body.amount)
    except (ArithmeticError, ValueError):
        return error(400, "REQUEST_REJECTED", "amount is not valid")
    if isinstance(body, Refund) and not is_uuid4(body.reference_id_to_refund):
        return error(400, "REQUEST_REJECTED", "referenceIdToRefund must be a UUID")
    if body.currency != ENVIRONMENT_CURRENCY[env]:
        return error(500, "INVALID_CURRENCY")
    return None


def _outcome(
    sandbox: MomoSandbox, account: str, body: Body, kind: str, view: dict[str, Any]
) -> tuple[str, str | None, str, str | None]:
    """(outcome, reason, wallet digits, refunded collection) of a create."""
    if isinstance(body, Refund):
        outcome, reason, digits, payee = sandbox.refund_case(account, body)
        if payee is not None:  # the refund goes back to the collection's payer
            view["payee"] = msgspec.to_builtins(payee)
        return outcome, reason, digits, body.reference_id_to_refund
    party = body.payer if isinstance(body, RequestToPay) else body.payee
    digits = digits_of(party.party_id)
    outcome, reason = numbers.case(kind, digits)
    return outcome, reason, digits, None


def _settle(sandbox: MomoSandbox, key: Key, outcome: str, reason: str | None, digits: str) -> None:
    """Final now (callback as the test number wants), later (ongoing), or never (pending)."""
    if outcome == "ongoing":

        def later() -> None:
            sandbox.finish(key, "SUCCESSFUL", None)
            sandbox.callback(key, "success", 0.0)

        asyncio.get_running_loop().call_later(sandbox.settings.ongoing_seconds, later)
    elif outcome != "pending":
        if outcome == "success":
            sandbox.finish(key, "SUCCESSFUL", None)
        else:
            sandbox.finish(key, "FAILED", reason)
        sandbox.callback(key, scenario(digits), sandbox.settings.callback_delay)


async def create(request: Request, sandbox: MomoSandbox, product: str, kind: str) -> Response[Any]:
    admitted = await _admit(request, sandbox, product, kind)
    if isinstance(admitted, Response):
        return admitted
    key, caller = admitted
    try:
        body: Body = msgspec.json.decode(await request.body(), type=BODIES[kind])
    except msgspec.MsgspecError as exc:
        return error(400, "REQUEST_REJECTED", str(exc))
    refused = _refusal(body, caller.env)
    if refused is not None:
        return refused
    callback_url = request.headers.get("x-callback-url")
    host = sandbox.users[caller.user].host
    if callback_url and host is not None and urlsplit(callback_url).hostname != host:
        return error(500, "INVALID_CALLBACK_URL_HOST")
    view = msgspec.to_builtins(body)
    outcome, reason, digits, refund_of = _outcome(sandbox, caller.account, body, kind, view)
    if outcome == "error" and sandbox.settings.sandbox_errors == "sync":
        return error(503 if reason == "SERVICE_UNAVAILABLE" else 500, reason or "")
    view["status"] = "PENDING"
    sandbox.add(key, Resource(product, view, callback_url, refund_of=refund_of))
    extra = {"refund_of": refund_of} if refund_of else {}
    sandbox.ledger.record(
        sandbox.ledger_id(key),
        account=caller.account,
        product=product,
        kind=kind,
        reference=body.external_id,
        amount=body.amount,
        currency=body.currency,
        msisdn=digits,
        status="PENDING",
        **extra,
    )
    _settle(sandbox, key, outcome, reason, digits)
    await sandbox.hang()
    return Response(b"", status_code=202)


async def read(
    request: Request, sandbox: MomoSandbox, product: str, kind: str, reference: str
) -> Response[Any]:
    caller = await sandbox.product_call(request, product)
    if isinstance(caller, Response):
        return caller
    # only the account's own: another account's reference is one MoMo does not know
    resource = sandbox.resources.get((caller.account, product, kind, reference))
    if resource is None:
        return error(404, "RESOURCE_NOT_FOUND")
    return Response(resource.view)


@post("/collection/v1_0/requesttopay", status_code=202)
async def request_to_pay(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await create(request, sandbox, "collection", "requesttopay")


@get("/collection/v1_0/requesttopay/{reference:str}")
async def request_to_pay_status(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await read(request, sandbox, "collection", "requesttopay", reference)


@post(
    ["/collection/v1_0/requesttowithdraw", "/collection/v2_0/requesttowithdraw"],
    status_code=202,
)
async def request_to_withdraw(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await create(request, sandbox, "collection", "requesttowithdraw")


@get("/collection/v1_0/requesttowithdraw/{reference:str}")
async def request_to_withdraw_status(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await read(request, sandbox, "collection", "requesttowithdraw", reference)


@post([f"/{p}/v1_0/transfer" for p in TRANSFER_PRODUCTS], status_code=202)
async def transfer(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await create(request, sandbox, product_of(request), "transfer")


@get([f"/{p}/v1_0/transfer/{{reference:str}}" for p in TRANSFER_PRODUCTS])
async def transfer_status(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await read(request, sandbox, product_of(request), "transfer", reference)


@post(["/disbursement/v1_0/deposit", "/disbursement/v2_0/deposit"], status_code=202)
async def deposit(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await create(request, sandbox, "disbursement", "deposit")


@get("/disbursement/v1_0/deposit/{reference:str}")
async def deposit_status(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await read(request, sandbox, "disbursement", "deposit", reference)


@post(["/disbursement/v1_0/refund", "/disbursement/v2_0/refund"], status_code=202)
async def refund(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await create(request, sandbox, "disbursement", "refund")


@get("/disbursement/v1_0/refund/{reference:str}")
async def refund_status(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    return await read(request, sandbox, "disbursement", "refund", reference)


@post(
    [
        "/collection/v1_0/requesttopay/{reference:str}/deliverynotification",
        "/collection/v1_0/requesttowithdraw/{reference:str}/deliverynotification",
    ],
    status_code=200,
)
async def delivery_notification(
    request: Request, reference: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    """A message to the payer about a request (works around the 160-character note):
    the body's `notificationMessage`, or the header of that name; 200, empty."""
    caller = await sandbox.product_call(request, "collection")
    if isinstance(caller, Response):
        return caller
    kind = "requesttowithdraw" if "/requesttowithdraw/" in request.scope["path"] else "requesttopay"
    key = (caller.account, "collection", kind, reference)
    if key not in sandbox.resources:
        return error(404, "RESOURCE_NOT_FOUND")
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw, type=DeliveryNotification) if raw else None
    except msgspec.MsgspecError as exc:
        return error(400, "REQUEST_REJECTED", str(exc))
    message = (body.notification_message if body else None) or request.headers.get(
        "notificationmessage"
    )
    if not message or len(message) > TEXT_LIMIT:
        return error(400, "REQUEST_REJECTED", "notificationMessage not accepted")
    sandbox.ledger.record(sandbox.ledger_id(key), notification=message)
    return Response(b"", status_code=200)


ROUTES = [
    request_to_pay,
    request_to_pay_status,
    transfer,
    transfer_status,
    request_to_withdraw,
    request_to_withdraw_status,
    deposit,
    deposit_status,
    refund,
    refund_status,
    delivery_notification,
]
