"""`/api/v1/admin/mmo/providers`: the installed providers, a live check of each account,
and what the gateway saw of a provider over a window (from Postgres)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter
from mmo_core.registry import Provider
from mmo_core.types import HealthReport

from mmo_host import db, operator
from mmo_host.breaker import breaker_key
from mmo_host.controllers.admin_base import ADMIN_PATH, AdminMmoController, NotFound
from mmo_host.errors import API_ERRORS, error_responses
from mmo_host.gateway import Gateway

# statuses a payment ends in, for the success rate (reversed ones had succeeded)
_DECIDED = ("succeeded", "reversed", "failed", "expired")
_PERCENTILES = (0.5, 0.9, 0.99)


def _provider(gateway: Gateway, name: str) -> Provider:
    provider = gateway.registry.providers.get(name)
    if provider is None:
        raise NotFound(f"No provider {name!r}")
    return provider


async def check_account(gateway: Gateway, provider: Provider, account: str) -> dict[str, Any]:
    """The provider's `health` hook for one account, through `operator.ask` (the breaker
    and the operator timeout), with the breaker's state afterwards."""
    answer = await operator.ask(
        gateway, operator.Target(provider.name, account=account), "health", expect=HealthReport
    )
    result: dict[str, Any] = {"account": account, "answer": answer.kind}
    if answer.ok:
        report: HealthReport = answer.value
        result.update(ok=report.ok, detail=report.detail, latency_ms=report.latency_ms)
    else:
        result.update(ok=False, detail=answer.describe(), latency_ms=None)
    state = await gateway.breakers.state(breaker_key(provider, None, account))
    result["breaker"] = msgspec.to_builtins(state)
    return result


class AdminProvidersController(AdminMmoController):
    path = f"{ADMIN_PATH}/providers"

    @get(
        "/",
        name="admin-mmo:providers",
        operation_id="adminListProviders",
        responses=error_responses(*API_ERRORS, 403),
        summary="Installed providers, their accounts, and those that failed to load",
    )
    async def list_providers(self, request: Request) -> dict[str, Any]:
        gateway: Gateway = request.app.state.gateway
        registry = gateway.registry
        return {
            "data": [
                {**described, "accounts": sorted(gateway.accounts.get(described["name"], {}))}
                for described in registry.describe()
            ],
            "failures": [{"name": f.name, "error": f.error} for f in registry.failures],
        }

    @get(
        "/{provider:str}/health",
        name="admin-mmo:provider-health",
        operation_id="adminProviderHealth",
        responses=error_responses(*API_ERRORS, 403, 404),
        summary="A live, harmless request to the operator for every account of a provider",
    )
    async def health(self, request: Request, provider: FromPath[str]) -> dict[str, Any]:
        """One `health` call per account (a fresh token, timed). `answer` is how the call
        ended (`answered`, or `not_sent` when the breaker is open, ...)."""
        gateway: Gateway = request.app.state.gateway
        found = _provider(gateway, provider)
        checks = [await check_account(gateway, found, a) for a in gateway.accounts[found.name]]
        return {"provider": found.name, "ok": all(c["ok"] for c in checks), "data": checks}

    @post(
        "/{provider:str}/test",
        name="admin-mmo:provider-test",
        operation_id="adminProviderTest",
        responses=error_responses(*API_ERRORS, 403, 404, 422),
        summary="A live check of one account: a new token and a harmless call, with the answer",
        status_code=200,
    )
    async def test(
        self,
        request: Request,
        provider: FromPath[str],
        account: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> dict[str, Any]:
        """`?account=` one of the provider's accounts (default: its first). The `health`
        hook asks the operator for a new token with the account's credentials, bypassing
        the cache, and makes its harmless call; the answer says what the operator said.
        It moves no money and is not written to the audit log."""
        gateway: Gateway = request.app.state.gateway
        found = _provider(gateway, provider)
        accounts = gateway.accounts[found.name]
        chosen = account or next(iter(accounts))
        if chosen not in accounts:
            raise NotFound(f"{found.declaration.display_name} has no account {chosen!r}")
        return {"provider": found.name, **await check_account(gateway, found, chosen)}

    @get(
        "/{provider:str}/stats",
        name="admin-mmo:provider-stats",
        operation_id="adminProviderStats",
        responses=error_responses(*API_ERRORS, 403, 404),
        summary="Payments, failures and callbacks of a provider over a window",
    )
    async def stats(
        self,
        request: Request,
        provider: FromPath[str],
        window: Annotated[int, QueryParameter(ge=60, le=30 * 86400)] = 3600,
    ) -> dict[str, Any]:
        """Over the last `window` seconds: payments created by status, the success rate of
        those decided, the gateway failure codes, the callbacks received and what became of
        them, and how long after a payment its first callback arrived (percentiles, ms).
        Operator call latency is measured by the metrics (`/metrics`), not here: null."""
        gateway: Gateway = request.app.state.gateway
        found = _provider(gateway, provider)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=window)
        return {
            "provider": found.name,
            "window": window,
            "since": since,
            "payments": await _payment_stats(found.name, since),
            "callbacks": await _callback_stats(found.name, since),
            "operator_latency_ms": None,
        }


async def _payment_stats(provider: str, since: dt.datetime) -> dict[str, Any]:
    by_status = {
        r["status"]: r["n"]
        for r in await db.fetch(
            """SELECT status, count(*) AS n FROM payments
               WHERE provider = $1 AND created_at >= $2 GROUP BY status""",
            provider,
            since,
        )
    }
    failures = {
        r["failure_code"]: r["n"]
        for r in await db.fetch(
            """SELECT failure_code, count(*) AS n FROM payments
               WHERE provider = $1 AND created_at >= $2 AND failure_code IS NOT NULL
               GROUP BY failure_code ORDER BY count(*) DESC""",
            provider,
            since,
        )
    }
    decided = sum(by_status.get(s, 0) for s in _DECIDED)
    succeeded = by_status.get("succeeded", 0) + by_status.get("reversed", 0)
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "success_rate": round(succeeded / decided, 4) if decided else None,
        "failure_codes": failures,
    }


async def _callback_stats(provider: str, since: dt.datetime) -> dict[str, Any]:
    counts = await db.fetchrow(
        """SELECT count(*) AS received,
                  count(*) FILTER (WHERE verified) AS verified,
                  count(*) FILTER (WHERE verified = false) AS rejected,
                  count(*) FILTER (WHERE flag = 'unmatched') AS unmatched
           FROM callbacks WHERE provider = $1 AND received_at >= $2""",
        provider,
        since,
    )
    flags = {
        r["flag"]: r["n"]
        for r in await db.fetch(
            """SELECT flag, count(*) AS n FROM callbacks
               WHERE provider = $1 AND received_at >= $2 AND flag IS NOT NULL GROUP BY flag""",
            provider,
            since,
        )
    }
    # the first callback of each payment created in the window: how long the operator took
    arrival = await db.fetchrow(
        """SELECT count(*) AS n,
                  percentile_cont($3::float8[]) WITHIN GROUP (ORDER BY ms) AS percentiles
           FROM (SELECT extract(epoch FROM min(c.received_at) - p.created_at) * 1000 AS ms
                 FROM callbacks c JOIN payments p ON p.id = c.payment_id
                 WHERE p.provider = $1 AND p.created_at >= $2
                 GROUP BY p.id, p.created_at) AS firsts""",
        provider,
        since,
        list(_PERCENTILES),
    )
    values = (arrival["percentiles"] if arrival else None) or [None] * len(_PERCENTILES)
    return {
        **(dict(counts) if counts else {}),
        "by_flag": flags,
        "arrival_ms": {
            "count": arrival["n"] if arrival else 0,
            **{
                f"p{int(q * 100)}": (round(v, 1) if v is not None else None)
                for q, v in zip(_PERCENTILES, values, strict=True)
            },
        },
    }
