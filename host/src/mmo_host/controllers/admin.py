from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get
from mmo_core.types import HealthReport

from mmo_host.auth import api_key_guard


class AdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [api_key_guard]
    security = [{"BearerToken": []}]

    @get(
        "/providers",
        name="admin:providers",
        operation_id="listProviders",
        summary="Installed providers: version, countries, currencies, operations, hooks",
    )
    async def providers(self, request: Request) -> dict[str, Any]:
        registry = request.app.state.gateway.registry
        return {
            "data": registry.describe(),
            "failures": [{"name": f.name, "error": f.error} for f in registry.failures],
        }

    @get(
        "/providers/health",
        name="admin:providers-health",
        operation_id="providersHealth",
        summary="Ask every provider whether its operator is reachable",
    )
    async def health(self, request: Request) -> dict[str, Any]:
        gateway = request.app.state.gateway

        async def one(name: str) -> dict[str, Any]:
            provider = gateway.registry.get(name)
            try:
                report: HealthReport = await asyncio.wait_for(
                    provider.call("health", context=gateway.context(name)), timeout=10
                )
                return {
                    "name": name,
                    "ok": report.ok,
                    "detail": report.detail,
                    "latency_ms": report.latency_ms,
                }
            except Exception as exc:
                return {"name": name, "ok": False, "detail": type(exc).__name__}

        return {"data": [await one(name) for name in sorted(gateway.registry.providers)]}
