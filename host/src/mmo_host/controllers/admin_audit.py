"""`/api/v1/admin/mmo/audit`: the audit log of admin actions (mmo_host.audit)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import QueryParameter

from mmo_host import audit
from mmo_host.controllers.admin_base import ADMIN_PATH, AdminMmoController
from mmo_host.errors import API_ERRORS, error_responses


class AdminAuditController(AdminMmoController):
    path = f"{ADMIN_PATH}/audit"

    @get(
        "/",
        name="admin-mmo:audit",
        operation_id="adminAudit",
        responses=error_responses(*API_ERRORS, 403),
        summary="Admin actions that changed something: who, which key, what, when, the answer",
    )
    async def list_entries(
        self,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        after: Annotated[int | None, QueryParameter(ge=1)] = None,
        action: Annotated[str | None, QueryParameter(max_length=64)] = None,
        target: Annotated[str | None, QueryParameter(max_length=255)] = None,
    ) -> dict[str, Any]:
        """Newest first. `after` is the previous page's `next` (an entry id: the older
        entries follow); `action` and `target` (`payment:<id>`, `callback:<id>`) filter.
        An entry whose `status` is null is an action still running, or whose process died."""
        found = await audit.entries(limit=limit + 1, before=after, action=action, target=target)
        page = found[:limit]
        return {"data": page, "next": page[-1].id if len(found) > limit else None}
