"""HTTP calls to Orange and the one translation of its answers into the core's errors.

The families live on different hosts in production (api.orange.com, api-s1.orange.cm,
api.orange-sonatel.com): each has its own optional absolute root; empty means the
context's base URL (the simulator in the sandbox), so paths here stay relative. Calls go
through the core's `OperatorClient` (token cache, one new token on an expired one,
transport errors); this module keeps each family's token request and `raise_for`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Any

import httpx
import msgspec
from mmo_core import failures
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.operator import OperatorClient, honours_retry_after, request
from mmo_core.tokens import AccessToken
from mmo_core.types import BODY_ERRORS, Failure, InboundCallback, ReportedStatus

from mmo_orange.settings import OrangeSettings
from mmo_orange.wire import TokenResponse, as_dict, decoder

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

# Sonatel's transaction statuses [O8 TransactionStatus, O9]; anything else is pending.
SONATEL_STATUS: dict[str, ReportedStatus] = {
    "PRE_INITIATED": "pending",
    "INITIATED": "pending",
    "PENDING": "pending",
    "ACCEPTED": "pending",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "REJECTED": "failed",
    "CANCELLED": "failed",
}

# Sonatel problem codes that refuse a payment for good: 2000 "Customer account does not
# exist" is in the sources [O9]; 2011 (insufficient balance) and 2040 (wrong or expired OTP)
# are the simulator's (derived). Any other problem code is an InvalidRequest.
SONATEL_DECLINED = frozenset({"2000", "2011", "2040"})

# Every refusal code and final status of the notes (WebPay, Cameroon, Sonatel) -> the
# gateway's failure code: this plugin's one mapping table (docs/api.md). A failure without a
# code is looked up by its status. A code not here becomes `operator_error`, logged once;
# those mapped to `prompt_expired` end the payment `expired`.
VOCABULARY = failures.Vocabulary(
    NAME,
    {
        # final statuses: WebPay [O1] (FAILED is all it says of a refusal), Cameroon [O6],
        # Sonatel [O8, O9]
        "FAILED": failures.OPERATOR_ERROR,
        "EXPIRED": failures.PROMPT_EXPIRED,
        "CANCELLED": failures.PAYER_DECLINED,
        "REJECTED": failures.OPERATOR_ERROR,
        # Orange Cameroon business codes: 60019 [O7]; 60011 and 00068 are the simulator's
        "60019": failures.INSUFFICIENT_FUNDS,
        "60011": failures.WRONG_PIN,
        "00068": failures.ACCOUNT_ERROR,  # the merchant's (channel user's) PIN
        # Sonatel problem codes: 2000 [O9]; 2011, 2040, 2041, 2050 are the simulator's
        "2000": failures.PAYER_NOT_FOUND,
        "2011": failures.INSUFFICIENT_FUNDS,
        "2040": failures.WRONG_PIN,
        "2041": failures.ACCOUNT_ERROR,  # the retailer's PIN
        "2050": failures.ACCOUNT_ERROR,  # the merchant code
        # Orange's API gateway [O3, O12]: our credentials or offer, never the payer
        "40": failures.ACCOUNT_ERROR,
        "41": failures.ACCOUNT_ERROR,
        "42": failures.ACCOUNT_ERROR,
        "50": failures.ACCOUNT_ERROR,
        "60": failures.ACCOUNT_ERROR,
    },
)

# Orange Cameroon's refusals that come as French text without a code [O6 constants], by a
# phrase of the text (accents and case ignored) -> the gateway code.
CAMEROON_TEXTS = (
    ("solde du compte du payeur est insuffisant", failures.INSUFFICIENT_FUNDS),
    ("beneficiaire introuvable", failures.PAYER_NOT_FOUND),
    ("utilisateur bloque", failures.PAYER_NOT_ALLOWED),
    ("montant superieur au montant maximum", failures.AMOUNT_OUT_OF_BOUNDS),
)

# "60019 :: Le solde du compte du payeur est insuffisant"
_CODED = re.compile(r"^\s*(\d+)\s*::\s*(.*)$", re.S)
CAMEROON_MSISDN = re.compile(r"^(69\d{7}|65[5-9]\d{6})$")


def webpay_status(value: str) -> ReportedStatus:
    return WEBPAY_STATUS.get(value.upper(), "pending")


def cameroon_status(value: str | None) -> ReportedStatus:
    return CAMEROON_STATUS.get((value or "").upper(), "pending")


def sonatel_status(value: str | None) -> ReportedStatus:
    return SONATEL_STATUS.get((value or "").upper(), "pending")


def split_coded(message: str) -> tuple[str | None, str]:
    """Orange Cameroon's `NNNNN :: text` messages as (code, text)."""
    match = _CODED.match(message or "")
    if match is None:
        return None, message
    return match.group(1), match.group(2).strip()


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
    if _is_problem(body):  # Sonatel RFC-7807: {type, title, status, code, detail, violations}
        text = str(body.get("detail") or body.get("title") or "")
        violations = body.get("violations")
        if isinstance(violations, list) and violations:
            text = f"{text} ({'; '.join(str(v) for v in violations[:3])})"
        return str(body.get("code") or body.get("status") or response.status_code), text
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
        found = body.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        code = code or data.get("inittxnstatus") or str(response.status_code)
        return str(code), text
    return str(response.status_code), response.text[:200]


def _is_problem(body: dict[str, Any]) -> bool:
    return "detail" in body or ("title" in body and "type" in body)


@honours_retry_after
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
    problem = _is_problem(as_dict(response.content) or {})
    if status == 417 and operation == "resend_prompt":
        # Cameroon `mp/push` on a payToken that is no longer pending (paid, failed, expired):
        # the request is refused, the payment itself is not
        raise InvalidRequest(
            f"Orange refused to prompt the payer again: {text or code}",
            code="not_pending",
            **kwargs,
        )
    if status == 417:  # Cameroon business errors: the payment is refused for good
        raise OperatorDeclined(
            text or "Declined by Orange Money", failure_code=declined_code(code, text), **kwargs
        )
    if problem and status in (400, 409, 422) and code in SONATEL_DECLINED:
        raise OperatorDeclined(
            text or "Declined by Orange Money", failure_code=VOCABULARY.code(code), **kwargs
        )
    if problem and status == 404 and operation == "status":
        # Sonatel's own "no such transaction" (a wrong base URL gives the gateway's 404/60)
        raise UnknownToOperator(f"Orange has no record of this transaction: {text}", **kwargs)
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
    """The one translation of an Orange code (or, without one, its status, or a known
    French text of Orange Cameroon) into the gateway's vocabulary, keeping Orange's code
    and text."""
    message = text or f"Orange Money reported {status}"
    if not code:
        known = text_code(text)
        if known is not None:
            return failures.failure(known, provider_code=status, provider_message=message)
    return VOCABULARY.failure(code or status, message)


def text_code(text: str | None) -> str | None:
    """The gateway code of an Orange Cameroon refusal told only in words, or None."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return next((code for phrase, code in CAMEROON_TEXTS if phrase in folded), None)


def declined_code(code: str | None, text: str | None) -> str:
    """The gateway code of a refusal raised as `OperatorDeclined` (its code, else its text)."""
    if code and code in VOCABULARY.table:
        return VOCABULARY.code(code)
    return text_code(text) or VOCABULARY.code(code)


# -- tokens and calls -----------------------------------------------------------------------


def decode(
    response: httpx.Response,
    into: Any,
    what: str,
    *,
    moves_money: bool,
) -> Any:
    """An Orange answer decoded into `into`; an unreadable one is `OutcomeUnknown` when the
    call moved money (it may have taken effect), else `ProviderUnavailable` (`what` names
    it in the message, e.g. "Orange WebPay: webpayment")."""
    try:
        return decoder(into).decode(response.content)
    except msgspec.MsgspecError:
        error = OutcomeUnknown if moves_money else ProviderUnavailable
        raise error(
            f"{what}: unreadable answer", provider=NAME, provider_message=response.text[:200]
        ) from None


def read_callback(callback: InboundCallback, into: Any) -> Any:
    """A notification's body decoded into `into` (numbers read where Orange documents
    strings); a malformed one is an InvalidRequest."""
    try:
        return decoder(into).decode(callback.body)
    except BODY_ERRORS as exc:
        raise InvalidRequest(
            f"Malformed Orange Money callback: {exc}", code="malformed_callback", provider=NAME
        ) from None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _fetch_token(
    context: ProviderContext, url: str, user: str, password: str, *, basic: bool = True
) -> AccessToken:
    """Client credentials: in a Basic header (Orange Developer, Cameroon) or, for Sonatel,
    as `client_id` / `client_secret` fields of the form body [O9]."""
    headers = {"Accept": "application/json"}
    form = {"grant_type": "client_credentials"}
    if basic:
        headers["Authorization"] = _basic(user, password)
    else:
        form |= {"client_id": user, "client_secret": password}
    response = await request(
        context, "POST", url, "token", moves_money=False, headers=headers, data=form
    )
    raise_for(response, "token")
    body = decode(response, TokenResponse, "Orange: token", moves_money=False)
    return AccessToken.lasting(body.access_token, body.expires_in)


def token_key(context: ProviderContext, family: str) -> str:
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    user = {
        "webpay": settings.client_id,
        "cameroon": settings.cameroon_consumer_key,
        "sonatel": settings.sonatel_client_id,
    }[family]
    return context.token_key(family, user)


def root(settings: OrangeSettings, family: str) -> str:
    return {
        "webpay": settings.webpay_base_url,
        "cameroon": settings.cameroon_base_url,
        "sonatel": settings.sonatel_base_url,
    }[family]


def _expired(family: str):
    """The family's test of a refused token that a fresh one may cure."""

    def refused(response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        if family != "webpay":
            return True  # the Cameroon gateway's fault, Sonatel's 401: a new token may cure it
        body = as_dict(response.content) or {}
        return str(body.get("code")) == "42"  # 401/42 "Expired credentials" [O3]

    return refused


def operator(context: ProviderContext, family: str) -> OperatorClient:
    """The core's operator client for one API family: its token endpoint and credentials,
    `Accept: application/json` (and Cameroon's `X-AUTH-TOKEN`) on every call."""
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    if family == "webpay":
        url = _url(settings.webpay_base_url, "/oauth/v3/token")
        user, password = settings.client_id, settings.client_secret
    elif family == "cameroon":
        url = _url(settings.cameroon_base_url, "/token")
        user, password = settings.cameroon_consumer_key, settings.cameroon_consumer_secret
    else:
        url = _url(settings.sonatel_base_url, settings.sonatel_token_path)
        user, password = settings.sonatel_client_id, settings.sonatel_client_secret

    async def fetch() -> AccessToken:
        return await _fetch_token(context, url, user, password, basic=family != "sonatel")

    headers = {"Accept": "application/json"}
    if family == "cameroon":
        headers["X-AUTH-TOKEN"] = settings.cameroon_auth_token
    return OperatorClient(
        context,
        token_key=token_key(context, family),
        fetch_token=fetch,
        headers=headers,
        token_refused=_expired(family),
    )


async def token(context: ProviderContext, family: str) -> str:
    """The family's bearer token, cached for its `expires_in`."""
    return await operator(context, family).token()


async def send(
    context: ProviderContext,
    family: str,
    method: str,
    path: str,
    operation: str,
    headers: dict[str, str] | None = None,
    *,
    moves_money: bool,
    **kwargs: Any,
) -> httpx.Response:
    """One authenticated call on the family's host (one new token on an expired one)."""
    settings: OrangeSettings = context.settings  # type: ignore[assignment]
    return await operator(context, family).send(
        method,
        _url(root(settings, family), path),
        operation,
        moves_money=moves_money,
        headers=headers,
        **kwargs,
    )


def settings_of(context: ProviderContext) -> OrangeSettings:
    return context.settings  # type: ignore[return-value]
