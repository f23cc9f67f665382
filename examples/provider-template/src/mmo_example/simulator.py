"""A simulator of Example Pay's sandbox, over real HTTP.

OAuth client credentials (`POST /oauth/token`, Basic auth), payments created with
`POST /v1/payments` (our reference is the idempotency key: a reused one answers 409),
read with `GET /v1/payments/{id}` or `/v1/payments/by-reference/{reference}`, and a signed
callback to the payment's callback URL after `callback_delay` seconds. Test numbers follow
shared/DESIGN.md.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import Simulation, scenario, simulator_routes

from mmo_example.plugin import sign
from mmo_example.settings import ExampleSettings
from mmo_example.wire import (
    DECLINES,
    DOUBLE_CALLBACK,
    LATE_CALLBACK,
    NO_CALLBACK,
    PaymentCreate,
    PaymentView,
)


def _error(status: int, code: str, message: str) -> Response[Any]:
    return Response({"error": code, "message": message}, status_code=status)


def create_simulator(settings: ExampleSettings) -> Litestar:
    sim = Simulation()
    tokens: set[str] = set()
    payments: dict[str, PaymentView] = {}
    by_reference: dict[str, str] = {}

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in tokens

    @post("/oauth/token", status_code=200)
    async def token(request: Request) -> Response[Any]:
        await sim.injector.latency()
        header = request.headers.get("authorization", "")
        try:
            user, _, password = (
                base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if user != settings.client_id or password != settings.client_secret:
            return _error(401, "invalid_client", "Client authentication failed")
        value = secrets.token_urlsafe(24)
        tokens.add(value)
        return Response({"access_token": value, "token_type": "Bearer", "expires_in": "3600"})

    @post("/v1/payments", status_code=202)
    async def create(request: Request) -> Response[Any]:
        await sim.injector.latency()
        if not authorised(request):
            return _error(401, "invalid_token", "The access token is missing or expired")
        failure = sim.injector.error_status()
        if failure is not None:
            return _error(failure, "internal_error", "Simulated failure")
        try:
            body = msgspec.json.decode(await request.body(), type=PaymentCreate)
        except msgspec.MsgspecError as exc:
            return _error(400, "invalid_request", str(exc))
        if body.reference in by_reference:
            return _error(409, "duplicate_reference", "This reference was already used")
        view = PaymentView(
            id="EX" + uuid.uuid4().hex[:16].upper(),
            reference=body.reference,
            status="PENDING",
            amount=body.amount,
            currency=body.currency,
            msisdn=body.msisdn,
        )
        payments[view.id] = view
        by_reference[body.reference] = view.id
        sim.ledger.record(
            view.id,
            reference=body.reference,
            kind=body.kind,
            amount=body.amount,
            currency=body.currency,
            status="PENDING",
        )
        _finish(view, body)
        await sim.injector.maybe_hang()
        return Response(msgspec.to_builtins(view), status_code=202)

    def _finish(view: PaymentView, body: PaymentCreate) -> None:
        """Decide the outcome now; tell the caller by callback after the delay."""
        case = scenario(body.msisdn)
        last4 = body.msisdn[-4:]
        if last4 in DECLINES:
            code, text, final = DECLINES[last4]
            done = msgspec.structs.replace(view, status=final, reason_code=code, reason=text)
        else:
            done = msgspec.structs.replace(view, status="SUCCESSFUL")
        payments[view.id] = done
        sim.ledger.record(view.id, status=done.status)
        if case == "no_callback" or last4 == NO_CALLBACK:
            return
        raw = msgspec.json.encode(done)
        delay = settings.callback_delay * (10 if last4 == LATE_CALLBACK else 1)
        sim.callbacks.schedule(
            body.callback_url,
            raw,
            headers={"X-Example-Signature": sign(settings.webhook_secret, raw)},
            delay=delay,
            copies=2 if last4 == DOUBLE_CALLBACK else 1,
        )

    @get("/v1/payments/{payment_id:str}")
    async def read(request: Request, payment_id: FromPath[str]) -> Response[Any]:
        await sim.injector.latency()
        if not authorised(request):
            return _error(401, "invalid_token", "The access token is missing or expired")
        view = payments.get(payment_id)
        if view is None:
            return _error(404, "not_found", "No such payment")
        return Response(msgspec.to_builtins(view))

    @get("/v1/payments/by-reference/{reference:str}")
    async def read_by_reference(request: Request, reference: FromPath[str]) -> Response[Any]:
        return await read.fn(request, by_reference.get(reference, ""))

    return Litestar(
        route_handlers=[token, create, read, read_by_reference, *simulator_routes(sim)],
        on_shutdown=[sim.callbacks.close],
        openapi_config=None,
    )
