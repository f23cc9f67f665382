"""HTTP calls to Orange and the one translation of its answers into the core's errors.

Both families live on different hosts in production (api.orange.com, api-s1.orange.cm):
each has its own optional absolute root; empty means the context's base URL (the
simulator in the sandbox), so paths here stay relative.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from typing import Any

import httpx
import msgspec
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
)
from mmo_core.http import transport_error
from mmo_core.tokens import AccessToken
from mmo_core.types import Failure, ReportedStatus

from mmo_orange.settings import OrangeSettings
from mmo_orange.wire import TokenResponse, as_dict

NAME = "orange"

# WebPay's transaction statuses [O1]; anything else is read as still pending.
WEBPAY_STATUS: dict[str, ReportedStatus] = {
    "INITIATED": "pending",
    "PENDING": "pending",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "EXPIRED": "expired",
}

# Orange Cameroon's statuses [O6]: `SUCCESSFULL` (sic) from USSD, `SUCCESS` from the web.
CAMEROON_STATUS: dict[str, ReportedStatus] = {
    "INITIATED": "pending",
    "PENDING": "pending",
    "SUCCESSFULL": "succeeded",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "failed",
    "EXPIRED": "expired",
}

# "60019 :: Le solde du compte du payeur est insuffisant"
_CODED = re.compile(r"^\s*(\d+)\s*::\s*(.*)$", re.S)
CAMEROON_MSISDN = re.compile(r"^(69\d{7}|65[5-9]\d{6})$")


def webpay_status(value: str) -> ReportedStatus:
    return WEBPAY_STATUS.get(value.upper(), "pending")


def cameroon_status(value: str | None) -> ReportedStatus:
    return CAMEROON_STATUS.get((value or "").upper(), "pending")


def split_coded(message: str) -> tuple[str | None, str]:
    """Orange Cameroon's `NNNNN :: text` messages as (code, text)."""
    match = _CODED.match(message or "")
    if match is None:
        return None, message
    return match.group(1), match.group(2).strip()


def order_id(payment_id: str) -> str:
    """A unique order id of at most 30 characters, derived from our payment id."""
    try:
        raw = uuid.UUID(payment_id).bytes
    except ValueError:
        raw = hashlib.sha256(payment_id.encode()).digest()[:16]
    return "MMO" + base64.b32encode(raw).decode().rstrip("=")


def notif_reference(notif_token: str) -> str:
    """What a WebPay payment is found by: a digest of its notif_token, never the token.

    The notification carries only `notif_token`; looking the payment up by this digest
    means a wrong token matches no payment, and the stored reference reveals nothing.
    """
    return "wp-" + hashlib.sha256(notif_token.encode()).hexdigest()[:48]


def _url(root: str, path: str) -> str:
    return root.rstrip("/") + path if root else path


# -- the one translation --------------------------------------------------------------------


def error_fields(response: httpx.Response) -> tuple[str, str]:
    """Orange's code and text from any of its error envelopes."""
    body = as_dict(response.content)
    if body is None:
        return str(response.status_code), response.text[:200]
    if isinstance(body.get("fault"), dict):  # Cameroon API gateway
        body = body["fault"]
    if "code" in body and ("message" in body or "description" in body):
        # {"code", "message", "description"} (Orange gateway); Sonatel-style "detail" too
        text = str(body.get("message") or "")
        if body.get("description"):
            text = f"{text}: {body['description']}" if text else str(body["description"])
        return str(body["code"]), text
    if "error" in body:  # OAuth server
        return str(body["error"]), str(body.get("error_description") or body["error"])
    if "message" in body:  # omcoreapis {"message": "60019 :: ...", "data": {...}}
        code, text = split_coded(str(body["message"]))
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        code = code or data.get("inittxnstatus") or str(response.status_code)
        return str(code), text
    return str(response.status_code), response.text[:200]


def raise_for(response: httpx.Response, operation: str) -> None:
    """The one place where Orange's answers become the core's errors."""
    status = response.status_code
    if status < 400:
        return
    code, text = error_fields(response)
    kwargs: dict[str, Any] = {
        "provider": NAME,
        "provider_code": code,
        "provider_message": text,
    }
    if status == 417:  # Cameroon business errors: the payment is refused for good
        raise OperatorDeclined(text or "Declined by Orange Money", **kwargs)
    if status == 429:
        raise RateLimited(f"Orange: {operation} rate limited", **kwargs)
    if status in (502, 503, 504):
        raise ProviderUnavailable(f"Orange: {operation} unavailable ({status})", **kwargs)
    if status >= 500:
        raise OutcomeUnknown(f"Orange: {operation} failed with {status}", **kwargs)
    if status in (401, 403):
        raise ProviderAuthenticationError(f"Orange refused our credentials: {text}", **kwargs)
    if status == 404:
        raise InvalidRequest(f"Orange: {operation}: not found: {text}", code="not_found", **kwargs)
    raise InvalidRequest(f"Orange refused {operation}: {text or code}", **kwargs)


def failure_of(code: str | None, text: str | None, status: str) -> Failure:
    return Failure(code=code or status, message=text or f"Orange Money reported {status}")


# -- tokens and calls -----------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _fetch_token(context: ProviderContext, url: str, user: str, password: str) -> AccessToken:
    try:
        response = await context.http.post(
            url,
            headers={"Authorization": _basic(user, password), "Accept": "application/json"},
            data={"grant_type": "client_credentials"},
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, NAME, "token") from exc
    raise_for(response, "token")
    try:
        body = msgspec.json.decode(response.content, type=TokenResponse)
    except msgspec.MsgspecError:
        raise ProviderUnavailable(
            "Orange: unreadable token answer", provider=NAME, provider_message=response.text[:200]
        ) from None
    return AccessToken.lasting(body.access_token, body.expires_in)


def token_key(context: ProviderContext, family: str) -> str:
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    user = settings.client_id if family == "webpay" else settings.cameroon_consumer_key
    return context.token_key(family, user)


async def token(context: ProviderContext, family: str) -> str:
    """The family's bearer token, cached for its `expires_in`."""
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    if family == "webpay":
        url = _url(settings.webpay_base_url, "/oauth/v3/token")
        user, password = settings.client_id, settings.client_secret
    else:
        url = _url(settings.cameroon_base_url, "/token")
        user, password = settings.cameroon_consumer_key, settings.cameroon_consumer_secret

    async def fetch() -> AccessToken:
        return await _fetch_token(context, url, user, password)

    return await context.tokens.get(token_key(context, family), fetch)


def _expired(response: httpx.Response, family: str) -> bool:
    """Is this a refusal of our token that a fresh one may cure?"""
    if response.status_code != 401:
        return False
    if family == "cameroon":
        return True  # the Cameroon gateway's invalid/expired token fault
    body = as_dict(response.content) or {}
    return str(body.get("code")) == "42"  # 401/42 "Expired credentials" [O3]


async def send(
    context: ProviderContext,
    family: str,
    method: str,
    path: str,
    operation: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One authenticated call; on an expired token, one new token and one retry."""
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    root = settings.webpay_base_url if family == "webpay" else settings.cameroon_base_url
    extra = {"Accept": "application/json", **(headers or {})}
    if family == "cameroon":
        extra["X-AUTH-TOKEN"] = settings.cameroon_auth_token
    response = None
    for attempt in range(2):
        bearer = await token(context, family)
        try:
            response = await context.http.request(
                method,
                _url(root, path),
                headers={**extra, "Authorization": f"Bearer {bearer}"},
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, NAME, operation) from exc
        if attempt == 0 and _expired(response, family):
            await context.tokens.invalidate(token_key(context, family))
            continue
        break
    return response  # type: ignore[return-value]
