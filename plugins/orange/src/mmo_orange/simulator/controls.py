"""Simulator-only controls: WebPay auto-pay, the settling delay, expiring every token."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post

from mmo_orange.simulator.state import Sandbox


@post("/_simulator/orange/webpay", status_code=200, include_in_schema=False)
async def webpay_mode(request: Request, sandbox: Sandbox) -> dict[str, Any]:
    wanted = msgspec.json.decode(await request.body(), type=dict[str, bool])
    sandbox.autopay = wanted.get("autopay", sandbox.autopay)
    return {"autopay": sandbox.autopay}


@post("/_simulator/orange/delay", status_code=200, include_in_schema=False)
async def set_delay(request: Request, sandbox: Sandbox) -> dict[str, float]:
    wanted = msgspec.json.decode(await request.body(), type=dict[str, float])
    default = sandbox.settings.callback_delay
    seconds = wanted.get("seconds", default)
    sandbox.delay = default if seconds < 0 else seconds
    return {"seconds": sandbox.delay}


@post("/_simulator/orange/expire-tokens", status_code=200, include_in_schema=False)
async def expire_tokens(sandbox: Sandbox) -> dict[str, Any]:
    for grant in sandbox.tokens.values():
        grant.expiry = 0.0
    return {"expired": len(sandbox.tokens)}


ROUTES = [webpay_mode, set_delay, expire_tokens]
