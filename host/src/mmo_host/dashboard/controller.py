"""The dashboard's pages: overview, recent payments, a payment's story, unmatched callbacks.

Server-rendered (templates/ through Litestar's Jinja engine, autoescaped); the charts are
uPlot (static/, vendored) drawn by static/dashboard.js from JSON rendered into the page.
Every page but the login page needs an admin key (access.py). Pages are HTML, so their
refusals are pages or redirects too, not the API's JSON errors.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap
from mmo_core import money, phones
from mmo_core.errors import MmoError

from mmo_host import attention, audit, callbacks, payments
from mmo_host.breaker import breaker_key
from mmo_host.dashboard import access, queries
from mmo_host.gateway import Gateway
from mmo_host.keys import Principal

log = logging.getLogger("mmo.dashboard")

LOGIN = "/dashboard/login"
# the pages load nothing but the host's own files and run no inline script
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not `no-referrer`: with it, a browser sends `Origin: null` on the pages' own forms
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(
    name: str,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Template:
    return Template(
        template_name=name,
        context=context,
        status_code=status_code,
        headers=dict(HEADERS),
        cookies=cookies,
    )


def redirect(path: str, cookies: list[Cookie] | None = None) -> Redirect:
    return Redirect(path=path, status_code=303, headers=dict(HEADERS), cookies=cookies)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


# -- refusals --------------------------------------------------------------------------------


def _login_required(request: Request, exc: access.LoginRequired) -> Response:
    if exc.reason:  # a cookie with a key that no longer works: forget it
        return redirect(f"{LOGIN}?expired=1", cookies=[access.cleared_cookie(request)])
    return redirect(LOGIN)


def _admin_required(request: Request, _: access.AdminRequired) -> Response:
    return page(
        "refused.html",
        status_code=403,
        cookies=[access.cleared_cookie(request)],
        message=(
            "This key has no admin scope: the dashboard needs an admin key "
            "(MMO_ADMIN_KEYS, or mmo keys create --scope admin). A payments key is refused."
        ),
    )


def _foreign_origin(_: Request, __: access.ForeignOrigin) -> Response:
    return page("refused.html", status_code=403, message="That form was sent from another site.")


def _mmo_error(_: Request, exc: MmoError) -> Response:
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    return page("refused.html", status_code=status, message=exc.message)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    access.LoginRequired: _login_required,
    access.AdminRequired: _admin_required,
    access.ForeignOrigin: _foreign_origin,
    MmoError: _mmo_error,
}


# -- view helpers --------------------------------------------------------------------------


def amount(row: Any) -> str:
    return f"{money.format_amount(row.amount_minor, row.currency)} {row.currency}"


async def _accounts(gateway: Gateway, now: dt.datetime) -> list[dict[str, Any]]:
    """Every provider account with its breaker(s) and its last hour."""
    counts = {(c.provider, c.account): c for c in await queries.hour_counts(now)}
    found = []
    for name in sorted(gateway.registry.providers):
        provider = gateway.registry.get(name)
        for account in gateway.accounts.get(name, {}):
            keys = [breaker_key(provider, None, account)]
            if provider.declaration.breaker_per_country:
                keys = [breaker_key(provider, c, account) for c in provider.declaration.countries]
            breakers = [
                {"key": key, "state": (await gateway.breakers.state(key)).state} for key in keys
            ]
            hour = counts.get((name, account))
            found.append(
                {
                    "provider": name,
                    "display_name": provider.declaration.display_name,
                    "account": account,
                    "breakers": breakers,
                    "worst": _worst(b["state"] for b in breakers),
                    "payments": hour.payments if hour else 0,
                    "decided": hour.decided if hour else 0,
                    "success_rate": hour.success_rate if hour else None,
                }
            )
    return found


def _worst(states: Any) -> str:
    order = {"closed": 0, "half_open": 1, "open": 2}
    return max(states, key=lambda s: order.get(s, 3), default="closed")


class DashboardController(Controller):
    path = "/dashboard"
    include_in_schema = False
    guards = [access.admin_only]
    exception_handlers = EXCEPTION_HANDLERS

    # -- logging in and out --------------------------------------------------------------

    @get("/login", name="dashboard:login", opt={"public": True})
    async def login_page(self, request: Request, expired: FromQuery[str | None] = None) -> Template:
        message = "That key no longer works: enter an admin key." if expired else None
        return page("login.html", message=message)

    @post("/login", name="dashboard:login-submit", opt={"public": True}, status_code=303)
    async def login(self, request: Request) -> Response:
        access.same_origin(request)
        form = await request.form()
        key = str(form.get("key") or "").strip()
        principal = await access.principal_of(request, key)
        if principal is None:
            return page(
                "login.html", status_code=401, message="That key is not known, revoked or expired."
            )
        if "admin" not in principal.scopes:
            raise access.AdminRequired()
        log.info("dashboard: signed in with key %s", principal.key_id or "of the environment")
        return redirect("/dashboard", cookies=[access.session_cookie(request, key)])

    @post("/logout", name="dashboard:logout", status_code=303)
    async def logout(self, request: Request) -> Response:
        return redirect(LOGIN, cookies=[access.cleared_cookie(request)])

    # -- pages ---------------------------------------------------------------------------

    @get("/", name="dashboard:overview")
    async def overview(self, request: Request) -> Template:
        gateway = _gateway(request)
        now = dt.datetime.now(dt.UTC)
        charts = await queries.charts(now, sorted(gateway.registry.providers))
        return page(
            "overview.html",
            nav="overview",
            principal=_principal(request),
            accounts=await _accounts(gateway, now),
            problems=sorted(gateway.configuration_errors.items()),
            attention=await attention.count_open(),
            charts=msgspec.to_builtins(charts),
            now=now,
        )

    @get("/payments", name="dashboard:payments")
    async def recent(self, request: Request, q: FromQuery[str | None] = None) -> Template:
        problem = None
        try:
            search = queries.read_search(q)
        except queries.BadSearch as exc:
            search, problem = None, str(exc)
        rows = [] if problem else await queries.recent_payments(search)
        return page(
            "payments.html",
            nav="payments",
            principal=_principal(request),
            q=(q or "").strip()[: queries.MAX_QUERY],
            search=search,
            problem=problem,
            payments=[
                {
                    "id": str(r.id),
                    "created_at": r.created_at,
                    "status": r.status,
                    "type": r.type,
                    "provider": r.provider,
                    "account": r.account,
                    "amount": amount(r),
                    "msisdn": phones.mask(r.msisdn),
                    "reference": r.reference,
                    "client": r.client_id,
                    "failure": r.failure_code,
                }
                for r in rows
            ],
        )

    @get("/payments/{payment_id:str}", name="dashboard:payment")
    async def payment(self, request: Request, payment_id: FromPath[str]) -> Template:
        pid = payments.parse_id(payment_id)
        found = await queries.story(pid) if pid else None
        if found is None:
            raise payments.PaymentNotFound(f"No payment {payment_id!r}")
        resource = msgspec.to_builtins(payments.resource(found.payment))
        resource["msisdn"] = phones.mask(found.payment.msisdn)
        return page(
            "payment.html",
            nav="payments",
            principal=_principal(request),
            story=found,
            resource=resource,
            client=found.payment.client_id,
            amount=amount(found.payment),
            reversals=[
                {
                    "row": r,
                    "amount": f"{money.format_amount(r.amount_minor, found.payment.currency)}",
                }
                for r in found.reversals
            ],
        )

    @get("/callbacks", name="dashboard:callbacks")
    async def unmatched(self, request: Request) -> Template:
        return await self._callbacks_page(request, None)

    @post("/callbacks/{callback_id:str}/replay", name="dashboard:replay", status_code=200)
    async def replay(self, request: Request, callback_id: FromPath[str]) -> Template:
        """Process an unmatched callback again (`callbacks.replay`, as the admin API's
        replay does, recorded in the audit log as `callback.replay`) and show its flag
        afterwards."""
        cid = payments.parse_id(callback_id)
        before = await queries.callback(cid) if cid else None
        if before is None:
            return await self._callbacks_page(
                request, {"id": callback_id, "error": "No such callback"}, status_code=404
            )
        result: dict[str, Any] = {"id": str(before.id), "before": before.flag}
        if before.flag != "unmatched":
            result["error"] = f"It is not unmatched (flag {before.flag or 'none'}): nothing done"
            return await self._callbacks_page(request, result)
        target = f"callback:{before.id}"
        async with audit.action(request, "callback.replay", target, {"via": "dashboard"}) as done:
            try:
                after = await callbacks.replay(_gateway(request), before.id)
            except callbacks.NotReplayable as exc:  # applied meanwhile (by a job, a person)
                result["error"] = exc.message
                done({"error": {"code": "callback_applied", "message": exc.message}}, 409)
            else:
                result["flag"] = after.flag if after else None
                result["payment_id"] = str(after.payment_id) if after and after.payment_id else None
                done({"before": {"flag": before.flag}, "after": {"flag": result["flag"]}})
        return await self._callbacks_page(request, result)

    async def _callbacks_page(
        self, request: Request, replayed: dict[str, Any] | None, status_code: int = 200
    ) -> Template:
        return page(
            "callbacks.html",
            status_code=status_code,
            nav="callbacks",
            principal=_principal(request),
            callbacks=await queries.unmatched_callbacks(),
            replayed=replayed,
        )
