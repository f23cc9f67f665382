"""`/api/v1/admin/mmo/callbacks`: the kept callbacks, to find the unmatched, rejected and
failed ones, and the replay of one after a fix (mmo_host.callbacks.replay)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from mmo_host import audit, callbacks, db, payments
from mmo_host.controllers.admin_base import ADMIN_PATH, AdminMmoController, Conflict, NotFound
from mmo_host.controllers.admin_transactions import callback_body
from mmo_host.errors import API_ERRORS, error_responses
from mmo_host.records import CallbackRecord


async def _kept(callback_id: str) -> CallbackRecord:
    cid = payments.parse_id(callback_id)
    row = (
        await db.fetchrow_as(CallbackRecord, "SELECT * FROM callbacks WHERE id = $1", cid)
        if cid
        else None
    )
    if row is None:
        raise NotFound(f"No callback {callback_id!r}")
    return row


class AdminCallbacksController(AdminMmoController):
    path = f"{ADMIN_PATH}/callbacks"

    @get(
        "/",
        name="admin-mmo:callbacks",
        operation_id="adminListCallbacks",
        responses=error_responses(*API_ERRORS, 403),
        summary="Kept callbacks, newest first, by provider, verification, processing and flag",
    )
    async def list_callbacks(
        self,
        provider: Annotated[str | None, QueryParameter(max_length=64)] = None,
        verified: Annotated[bool | None, QueryParameter()] = None,
        processed: Annotated[bool | None, QueryParameter()] = None,
        flag: Annotated[str | None, QueryParameter(max_length=32)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        after: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> dict[str, Any]:
        """`flag=none` lists those without a flag; `after` is the previous page's `next`."""
        clauses = ["true"]
        args: list[Any] = []
        for column, value in (("provider", provider), ("verified", verified)):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if processed is not None:
            args.append(processed)
            clauses.append(f"processed = ${len(args)}")
        if flag == "none":
            clauses.append("flag IS NULL")
        elif flag is not None:
            args.append(flag)
            clauses.append(f"flag = ${len(args)}")
        if after:
            at, cid = db.decode_cursor(after, http_status=400)
            args.extend([at, cid])
            clauses.append(f"(received_at, id) < (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        rows = await db.fetch_as(
            CallbackRecord,
            f"SELECT * FROM callbacks WHERE {' AND '.join(clauses)} "  # noqa: S608 - placeholders
            f"ORDER BY received_at DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        page = rows[:limit]
        return {
            "data": [callback_body(r, with_body=False) for r in page],
            "next": (
                db.encode_cursor(page[-1].received_at, page[-1].id) if len(rows) > limit else None
            ),
        }

    @get(
        "/{callback_id:str}",
        name="admin-mmo:callback",
        operation_id="adminCallback",
        responses=error_responses(*API_ERRORS, 403, 404),
        summary="One kept callback: the request as received and its outcome",
    )
    async def show(self, callback_id: FromPath[str]) -> dict[str, Any]:
        return callback_body(await _kept(callback_id))

    @post(
        "/{callback_id:str}/replay",
        name="admin-mmo:callback-replay",
        operation_id="adminReplayCallback",
        responses=error_responses(*API_ERRORS, 403, 404, 409),
        summary="Process a kept callback again (after a fix), unless it already took effect",
        status_code=200,
    )
    async def replay(self, request: Request, callback_id: FromPath[str]) -> dict[str, Any]:
        """Every check of a new callback runs again (route, account, source allow-list,
        token or signature) before it is parsed and applied. 409 `callback_applied` when it
        already took effect."""
        async with audit.action(request, "callback.replay", f"callback:{callback_id}") as done:
            before = await _kept(callback_id)
            try:
                after = await callbacks.replay(request.app.state.gateway, before.id)
            except callbacks.NotReplayable as exc:
                raise Conflict(exc.message, code="callback_applied") from None
            if after is None:  # kept callbacks are never deleted
                raise NotFound(f"No callback {callback_id!r}")
            return done(
                {
                    "before": callback_body(before, with_body=False),
                    "after": callback_body(after, with_body=False),
                }
            )
