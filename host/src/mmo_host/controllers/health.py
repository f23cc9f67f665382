from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from mmo_host import database


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", name="health:live", operation_id="live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        name="health:ready",
        operation_id="ready",
        responses={503: ResponseSpec(data_container=dict[str, Any], description="not ready")},
        summary="Database reachable, migrations applied, providers loaded",
    )
    async def ready(self, request: Request) -> Response[dict[str, Any]]:
        gateway = request.app.state.gateway
        db_ok = await database.ping()
        pending = await database.pending_migrations() if db_ok else []
        providers = sorted(gateway.registry.providers)
        failures = [{"name": f.name, "error": f.error} for f in gateway.registry.failures]
        failures += [{"name": n, "error": e} for n, e in gateway.configuration_errors.items()]
        ok = db_ok and not pending and bool(providers)
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if db_ok else "unreachable",
            "pending_migrations": pending,
            "providers": providers,
            "provider_failures": failures,
        }
        return Response(body, status_code=200 if ok else 503)
