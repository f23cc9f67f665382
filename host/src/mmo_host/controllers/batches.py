from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from mmo_core.errors import InvalidRequest
from mmo_core.types import PaymentStatus

from mmo_host import batches
from mmo_host.auth import requires
from mmo_host.batches import BatchCreate, BatchItemPage, BatchResource
from mmo_host.controllers.payments import IdempotencyKey
from mmo_host.errors import API_ERRORS, error_responses
from mmo_host.hygiene import BATCH_MAX_BODY


class BatchController(Controller):
    path = "/api/v1/payouts/batches"
    tags = ["payouts"]
    security = [{"BearerToken": []}]

    @post(
        "/",
        name="payouts:create-batch",
        operation_id="createPayoutBatch",
        responses=error_responses(*API_ERRORS, 409, 422),
        summary="Submit a batch of up to 10,000 disbursements",
        status_code=202,
        request_max_body_size=BATCH_MAX_BODY,
        guards=[requires("payments:write")],
    )
    async def create(
        self, request: Request, idempotency_key: IdempotencyKey, data: JSONBody[BatchCreate]
    ) -> Response[BatchResource]:
        """Check every item, store them all as `new` disbursements, answer with the batch.

        A batch with any bad item is refused whole (422 `invalid_batch`, every bad item
        named in `error.details.items`). The worker sends the items afterwards. The same
        Idempotency-Key with the same body returns the same batch; with another body 409.
        """
        if not idempotency_key or len(idempotency_key) > 255:
            raise InvalidRequest(
                "An Idempotency-Key header (1 to 255 characters) is required",
                code="idempotency_key_required",
                http_status=400,
            )
        gateway = request.app.state.gateway
        batch, _created = await batches.create(
            gateway, request.state.client_id, idempotency_key, data
        )
        return Response(await batches.resource(batch), status_code=202)

    @get(
        "/{batch_id:str}",
        name="payouts:get-batch",
        operation_id="getPayoutBatch",
        responses=error_responses(*API_ERRORS, 404),
        summary="A batch's progress: counts by status, amounts, failures and their codes",
        guards=[requires("payments:read")],
    )
    async def read(self, request: Request, batch_id: FromPath[str]) -> BatchResource:
        batch = await batches.get(request.state.client_id, batch_id)
        return await batches.resource(batch)

    @get(
        "/{batch_id:str}/items",
        name="payouts:list-batch-items",
        operation_id="listPayoutBatchItems",
        responses=error_responses(*API_ERRORS, 404, 422),
        summary="A batch's items, in the order submitted",
        guards=[requires("payments:read")],
    )
    async def list_items(
        self,
        request: Request,
        batch_id: FromPath[str],
        status: Annotated[PaymentStatus | None, QueryParameter(required=False)] = None,
        failures: Annotated[
            bool, QueryParameter(description="only the items that failed or expired")
        ] = False,
        cursor: Annotated[str | None, QueryParameter(required=False)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> BatchItemPage:
        """Pass `next_cursor` back as `cursor` for the next page."""
        batch = await batches.get(request.state.client_id, batch_id)
        page, next_cursor = await batches.items(
            batch, status=status, failures_only=failures, cursor=cursor, limit=limit
        )
        return BatchItemPage(data=page, next_cursor=next_cursor)
