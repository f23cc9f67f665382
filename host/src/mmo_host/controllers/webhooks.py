from __future__ import annotations

from litestar import Controller, Request, Response, route
from litestar.params import FromPath

from mmo_host import callbacks, hygiene
from mmo_host.errors import WEBHOOK_ERRORS, error_responses

# Header values never stored in clear (an operator might send credentials back to us).
REDACTED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @route(
        "/{segment:str}/{kind:str}",
        http_method=["POST", "PUT"],
        name="webhooks:receive",
        summary="Operators' callbacks (stored raw, then verified and applied)",
        status_code=200,
        responses=error_responses(*WEBHOOK_ERRORS),
    )
    async def receive(
        self, request: Request, segment: FromPath[str], kind: FromPath[str]
    ) -> Response:
        gateway = request.app.state.gateway
        body = await request.body()
        query = dict(request.query_params.items())
        info = {
            "method": request.method,
            "path": request.url.path,
            "query": query,
            "headers": {
                k.lower(): ("[redacted]" if k.lower() in REDACTED_HEADERS else v)
                for k, v in request.headers.items()
            },
            "body": body,
            "remote_addr": request.client.host if request.client else None,
            # decided before any database access; the row is kept all the same
            "problem": hygiene.webhook_problem(request.scope, segment, kind, query, body),
        }
        reply = await callbacks.receive(gateway, segment, kind, info)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
