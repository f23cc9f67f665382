"""`/api/v1/admin/mmo/attention`: the payments the gateway could not decide alone
(mmo_host.attention), for a person to settle through the settle routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from mmo_host import attention
from mmo_host.auth import requires
from mmo_host.errors import API_ERRORS, error_responses


class AttentionController(Controller):
    path = "/api/v1/admin/mmo/attention"
    tags = ["admin"]
    security = [{"BearerToken": []}]
    guards = [requires("admin")]

    @get(
        "/",
        name="admin:attention",
        operation_id="listAttention",
        responses=error_responses(*API_ERRORS, 403),
        summary="Open payments that need a person, with the reason and the evidence",
    )
    async def list_open(
        self,
        request: Request,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        after: Annotated[dt.datetime | None, QueryParameter()] = None,
    ) -> dict[str, Any]:
        """Oldest first; `after` (the `created_at` of the last entry seen) pages on.
        `count` is every open entry, `unowned` the open payments with neither a job nor an
        entry (the invariant says 0)."""
        entries = await attention.open_entries(limit, after)
        return {
            "data": entries,
            "count": await attention.count_open(),
            "unowned": len(await attention.unowned()),
        }
