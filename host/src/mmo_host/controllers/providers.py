"""What the gateway offers an orchestrator: the provider a number would get, and what is
active. Both answer from mmo_host.routing, the owner of the choice."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from mmo_core import phones

from mmo_host.auth import requires
from mmo_host.errors import API_ERRORS, error_responses


class PredictRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/providers/predict`: the number, E.164 or international digits."""

    msisdn: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]


class ProviderController(Controller):
    path = "/api/v1/providers"
    tags = ["providers"]
    security = [{"BearerToken": []}]
    guards = [requires("payments:read")]

    @post(
        "/predict",
        name="providers:predict",
        operation_id="predictProvider",
        summary="The country, network and provider of a number",
        responses=error_responses(*API_ERRORS, 403, 422),
        status_code=200,
        request_max_body_size=4 * 1024,
    )
    async def predict(self, request: Request, data: JSONBody[PredictRequest]) -> dict[str, Any]:
        """What a payment without `provider` for this number would get: its country and
        network, the provider, and the operations, currencies and limits it takes there.
        `provider` is null when no installed provider serves the number's network."""
        msisdn = phones.to_e164(data.msisdn)
        return request.app.state.gateway.router.predict(msisdn)

    @get(
        "/",
        name="providers:active",
        operation_id="listActiveProviders",
        summary="The active providers: markets, networks, operations, limits, breakers",
        responses=error_responses(*API_ERRORS, 403),
    )
    async def list(self, request: Request) -> dict[str, Any]:
        gateway = request.app.state.gateway
        return {"data": await gateway.router.catalogue(gateway.breakers)}
