from __future__ import annotations

import dataclasses
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from mmo_core.errors import InvalidRequest
from mmo_core.types import PaymentStatus

from mmo_host import payments
from mmo_host.auth import requires
from mmo_host.errors import API_ERRORS, OPERATOR_ERRORS, error_responses
from mmo_host.schemas import PaymentCreate, PaymentPage, PaymentResource

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=True,
        description="A unique key per payment; retries with the same key and body are safe.",
    ),
]


class PaymentController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]
    security = [{"BearerToken": []}]

    @post(
        "/",
        name="payments:create",
        operation_id="createPayment",
        responses=error_responses(*API_ERRORS, 409, 422, *OPERATOR_ERRORS),
        summary="Create a collection, disbursement or remittance",
        status_code=202,
        request_max_body_size=64 * 1024,
        guards=[requires("payments:write")],
    )
    async def create(
        self, request: Request, idempotency_key: IdempotencyKey, data: JSONBody[PaymentCreate]
    ) -> Response[PaymentResource]:
        """Validate, store as `new`, send to the operator once, answer with the payment.

        The same Idempotency-Key with the same body returns the first response again; with
        another body it is refused with 409.
        """
        if not idempotency_key or len(idempotency_key) > 255:
            raise InvalidRequest(
                "An Idempotency-Key header (1 to 255 characters) is required",
                code="idempotency_key_required",
                http_status=400,
            )
        body = data
        gateway = request.app.state.gateway
        client_id = request.state.client_id
        digest = payments.request_hash(body)
        accepted = payments.check_request(gateway, body)
        if accepted.decision is not None:  # another account, or a fail_fast 503, while down
            decision = await gateway.router.when_down(gateway.breakers, accepted.decision)
            accepted = dataclasses.replace(accepted, decision=decision)
        row, created = await payments.insert_new(
            gateway, client_id, idempotency_key, digest, accepted
        )
        if not created:
            return Response(payments.replay(row, digest), status_code=202)
        row = await payments.send_to_operator(gateway, row)
        return Response(payments.resource(row), status_code=202)

    @get(
        "/{payment_id:str}",
        name="payments:get",
        operation_id="getPayment",
        responses=error_responses(*API_ERRORS, 404),
        summary="Read a payment",
        guards=[requires("payments:read")],
    )
    async def read(self, request: Request, payment_id: FromPath[str]) -> PaymentResource:
        row = await payments.get(payment_id)
        if row["client_id"] != request.state.client_id:
            raise payments.PaymentNotFound(f"No payment {payment_id!r}")
        return payments.resource(row)

    @get(
        "/",
        name="payments:list",
        operation_id="listPayments",
        responses=error_responses(*API_ERRORS, 422),
        summary="List payments",
        guards=[requires("payments:read")],
    )
    async def list(
        self,
        request: Request,
        reference: Annotated[str | None, QueryParameter(required=False)] = None,
        # an unknown status is a 400 (invalid_request), never an empty page
        status: Annotated[PaymentStatus | None, QueryParameter(required=False)] = None,
        provider: Annotated[str | None, QueryParameter(required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(required=False)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> PaymentPage:
        """Newest first; pass `next_cursor` back as `cursor` for the next page."""
        rows, next_cursor = await payments.list_payments(
            client_id=request.state.client_id,
            reference=reference,
            status=status,
            provider=provider,
            cursor=cursor,
            limit=limit,
        )
        return PaymentPage(data=[payments.resource(row) for row in rows], next_cursor=next_cursor)
