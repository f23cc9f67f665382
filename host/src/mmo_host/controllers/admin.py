from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from mmo_core.types import HealthReport

from mmo_host import audit, db, payments
from mmo_host.auth import requires
from mmo_host.breaker import breaker_key
from mmo_host.errors import API_ERRORS, error_responses
from mmo_host.worker import resend_event


class AdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [requires("admin")]
    security = [{"BearerToken": []}]

    @get(
        "/providers",
        name="admin:providers",
        operation_id="listProviders",
        responses=error_responses(*API_ERRORS),
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
        responses=error_responses(*API_ERRORS),
        summary="Ask every provider whether its operator is reachable",
    )
    async def health(self, request: Request) -> dict[str, Any]:
        gateway = request.app.state.gateway

        async def one(name: str, account: str) -> dict[str, Any]:
            provider = gateway.registry.get(name)
            try:
                report: HealthReport = await asyncio.wait_for(
                    provider.call("health", context=gateway.context(name, account)), timeout=10
                )
                result = {
                    "name": name,
                    "account": account,
                    "ok": report.ok,
                    "detail": report.detail,
                    "latency_ms": report.latency_ms,
                }
            except Exception as exc:
                result = {
                    "name": name,
                    "account": account,
                    "ok": False,
                    "detail": type(exc).__name__,
                }
            state = await gateway.breakers.state(breaker_key(provider, None, account))
            result["breaker"] = msgspec.to_builtins(state)
            return result

        return {
            "data": [
                await one(name, account)
                for name in sorted(gateway.registry.providers)
                for account in gateway.accounts[name]
            ]
        }

    @get(
        "/breakers",
        name="admin:breakers",
        operation_id="listBreakers",
        responses=error_responses(*API_ERRORS),
        summary="Circuit-breaker state of every provider (and country where split)",
    )
    async def breakers(self, request: Request) -> dict[str, Any]:
        gateway = request.app.state.gateway
        keys = []
        for name, provider in sorted(gateway.registry.providers.items()):
            for account in gateway.accounts[name]:
                keys.append(breaker_key(provider, None, account))
                if provider.declaration.breaker_per_country:
                    countries = provider.declaration.countries
                    keys += [breaker_key(provider, c, account) for c in countries]
        states = [msgspec.to_builtins(await gateway.breakers.state(k)) | {"key": k} for k in keys]
        return {"data": states}

    @post(
        "/events/{event_id:str}/resend",
        name="admin:events-resend",
        operation_id="resendEvent",
        responses=error_responses(*API_ERRORS, 404),
        summary="Deliver an event again to every event URL",
        status_code=202,
    )
    async def resend(self, request: Request, event_id: FromPath[str]) -> dict[str, Any]:
        gateway = request.app.state.gateway
        async with audit.action(request, "event.resend", f"event:{event_id}", status=202) as done:
            eid = payments.parse_id(event_id)
            row = (
                await db.fetchrow("SELECT id FROM outbox_events WHERE id = $1", eid)
                if eid
                else None
            )
            if row is None:
                raise payments.PaymentNotFound(f"No event {event_id!r}")
            queued = await resend_event(row["id"], gateway.config.event_urls)
            return done({"event_id": str(row["id"]), "queued": queued})

    @get(
        "/payments/{payment_id:str}/events",
        name="admin:payment-events",
        operation_id="paymentEvents",
        responses=error_responses(*API_ERRORS, 404),
        summary="A payment's events and their delivery",
    )
    async def payment_events(self, request: Request, payment_id: FromPath[str]) -> dict[str, Any]:
        row = await payments.get(payment_id)
        events = await db.fetch(
            "SELECT id, type, created_at, delivered_at FROM outbox_events WHERE payment_id = $1 "
            "ORDER BY created_at",
            row["id"],
        )
        return {
            "data": [
                {
                    "id": str(e["id"]),
                    "type": e["type"],
                    "created_at": e["created_at"].isoformat(),
                    "delivered_at": e["delivered_at"].isoformat() if e["delivered_at"] else None,
                }
                for e in events
            ]
        }
