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
        summary="Database reachable, migrations applied, providers loaded; shared state",
    )
    async def ready(self, request: Request) -> Response[dict[str, Any]]:
        """503 while the database, its migrations or every provider is missing.

        A Redis that does not answer leaves the host ready: `shared_state` says so, and
        which uses of Redis are done in this process meanwhile (docs/operations.md,
        Outages).
        """
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
            "shared_state": await _shared_state(gateway),
        }
        return Response(body, status_code=200 if ok else 503)


# what each use of Redis does while Redis does not answer (docs/operations.md, Outages)
WITHOUT_REDIS = {
    "rate_limits": "counted per process",
    "breakers": "judged per process",
    "tokens": "cached per process",
    "results": "seen only by the process that received them",
    "event_stream": "events wait in the outbox",
}


async def _shared_state(gateway: Any) -> dict[str, Any]:
    """Where the shared state lives now: Redis, or this process while Redis is down."""
    shared = gateway.redis
    if shared is None:
        return {"redis": "not_configured", "degraded": []}
    if await shared.ping():
        return {"redis": "ok", "degraded": []}
    return {
        "redis": "unreachable",
        "error": shared.last_error,
        "degraded": [{"use": use, "meanwhile": how} for use, how in WITHOUT_REDIS.items()],
    }
