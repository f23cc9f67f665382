"""HTTP calls to the MoMo Open API, and the one translation of MoMo's answers.

Every call goes through `send`, the core's `OperatorClient` (token cache, one token
refresh and resend on a 401, transport errors) with MoMo's specifics: the per-product
token, `Ocp-Apim-Subscription-Key` and `X-Target-Environment` on every product call.
`raise_for` is the only place where MoMo's HTTP answers become the core's errors, and
`outcome` the only place where a transaction's `status` / `reason` become the core's
statuses.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from mmo_core import failures, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    MmoError,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
)
from mmo_core.operator import OperatorClient, honours_retry_after, request
from mmo_core.tokens import AccessToken
from mmo_core.types import BODY_ERRORS, Failure, Payment, ReportedStatus

from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.wire import (
    DECLINE_CODES,
    ENVIRONMENT_COUNTRY,
    EXPIRED_STATUSES,
    FINAL_FAILED,
    REASONS,
    MomoError,
    TokenResponse,
    Transaction,
    decode,
)

T = TypeVar("T")

NAME = "mtn_momo"
DISPLAY = "MTN MoMo"

# Every documented `ErrorReason`, extra `reason` and final status -> the gateway's failure
# code: this plugin's one mapping table (docs/api.md). A reason not here becomes
# `operator_error`, logged once; those mapped to `prompt_expired` end the payment `expired`.
# PAYMENT_NOT_APPROVED is what MTN's sandbox (and our simulator) answers for a wrong PIN.
VOCABULARY = failures.Vocabulary(
    NAME,
    {
        "NOT_ENOUGH_FUNDS": failures.INSUFFICIENT_FUNDS,
        "APPROVAL_REJECTED": failures.PAYER_DECLINED,
        "TRANSACTION_CANCELED": failures.PAYER_DECLINED,
        "EXPIRED": failures.PROMPT_EXPIRED,
        "TIMEOUT": failures.PROMPT_EXPIRED,
        "COULD_NOT_PERFORM_TRANSACTION": failures.PROMPT_EXPIRED,
        "PAYMENT_NOT_APPROVED": failures.WRONG_PIN,
        "PAYER_NOT_FOUND": failures.PAYER_NOT_FOUND,
        "PAYEE_NOT_FOUND": failures.PAYER_NOT_FOUND,
        "SENDER_ACCOUNT_NOT_ACTIVE": failures.PAYER_NOT_ALLOWED,
        "PAYER_LIMIT_REACHED": failures.PAYER_LIMIT_REACHED,
        "PAYEE_NOT_ALLOWED_TO_RECEIVE": failures.PAYEE_NOT_ALLOWED,
        "NOT_ALLOWED": failures.ACCOUNT_ERROR,
        "NOT_ALLOWED_TARGET_ENVIRONMENT": failures.ACCOUNT_ERROR,
        "INVALID_CALLBACK_URL_HOST": failures.ACCOUNT_ERROR,
        "INVALID_CURRENCY": failures.OPERATOR_ERROR,
        "RESOURCE_ALREADY_EXIST": failures.DUPLICATE,
        "RESOURCE_NOT_FOUND": failures.NOT_RECEIVED,
        "TRANSACTION_NOT_FOUND": failures.NOT_RECEIVED,
        "SERVICE_UNAVAILABLE": failures.PROVIDER_UNAVAILABLE,
        "INTERNAL_PROCESSING_ERROR": failures.OPERATOR_ERROR,
        "FAILED": failures.OPERATOR_ERROR,
        "REJECTED": failures.OPERATOR_ERROR,
        # the HTTP answers' codes (notes §7): a refused subscription key or bearer token
        # (401), a caller IP not on the list (403), refused API user credentials
        "ACCESS_DENIED": failures.ACCOUNT_ERROR,
        "FORBIDDEN_IP": failures.ACCOUNT_ERROR,
        "login_failed": failures.ACCOUNT_ERROR,
        "REQUEST_REJECTED": failures.OPERATOR_ERROR,
    },
)


def failure_for(code: str, text: str | None = None) -> Failure:
    """The one translation of a MoMo reason into the gateway's vocabulary, keeping MoMo's
    reason and its text (or the documented text of the reason)."""
    return VOCABULARY.failure(code, text or REASONS.get(code, code))


# Payment type -> the MoMo operations that make it (the first is the default).
MODES: dict[str, tuple[str, ...]] = {
    "collection": ("requesttopay", "requesttowithdraw"),
    "disbursement": ("transfer", "deposit"),
    "remittance": ("transfer",),
}
# Creates that exist in v1_0 and v2_0 (setting `create_version`); status reads are v1_0.
VERSIONED = frozenset({"requesttowithdraw", "deposit", "refund"})
VERSIONS = ("v1_0", "v2_0")
# A payment's metadata key choosing its collection mode.
COLLECTION_MODE_KEY = "mtn_momo_collection"


def settings_of(context: ProviderContext) -> MtnMomoSettings:
    return context.settings  # type: ignore[return-value]


def country_environments(settings: MtnMomoSettings) -> dict[str, str]:
    """Country -> target environment: MTN's names, then `country_environments` entries."""
    found = {country: env for env, country in ENVIRONMENT_COUNTRY.items()}
    for entry in settings.country_environments.split(","):
        country, _, env = entry.strip().partition("=")
        if country and env:
            found[country.strip().upper()] = env.strip()
    return found


def target_environment(context: ProviderContext, country: str | None = None) -> str:
    """`X-Target-Environment` of a call about a payment in `country`.

    A configured environment other than "sandbox" (a country's credentials) is always
    used. With "sandbox" and no `base_url` in the gateway's sandbox, calls go to the
    gateway's own simulator, which serves every country: a payment in one of MTN's
    countries goes to that country's environment, so its currency is taken. Pointed at
    MTN's own sandbox (a `base_url`), "sandbox" stays, with MTN's EUR-only rule.
    """
    settings = settings_of(context)
    configured = settings.target_environment
    if configured != "sandbox" or settings.base_url or context.environment != "sandbox":
        return configured
    if country is None:
        return configured
    return country_environments(settings).get(country, configured)


def mode_of(settings: MtnMomoSettings, payment: Payment) -> str:
    """The MoMo operation of a payment: what `initiate` used (provider_data), else what the
    payment's metadata and the settings choose."""
    chosen = payment.provider_data.get("mode")
    if chosen:
        return str(chosen)
    if payment.type == "collection":
        return str(payment.metadata.get(COLLECTION_MODE_KEY) or settings.collection_mode)
    if payment.type == "disbursement":
        return settings.disbursement_mode
    return "transfer"


def create_path(settings: MtnMomoSettings, product: str, mode: str) -> str:
    """`/{product}/{version}/{mode}`: v2_0 only for the versioned creates, when chosen."""
    version = settings.create_version if mode in VERSIONED else "v1_0"
    return f"/{product}/{version}/{mode}"


def refund_reference(payment_id: str, reversal_id: str | None = None) -> str:
    """The X-Reference-Id of a refund of a payment.

    With the host's `reversal_id` (unique per reversal, the same on its retries): that id
    when it is a UUID v4, as MoMo requires, else a UUID v4 derived from it. Without one:
    a UUID v4 derived from our payment id alone, so the payment has one refund. Either way
    the id is deterministic (16 bytes of SHA-256, with the v4 version and variant bits
    set), so a refund whose answer was lost is resent with the same id and MoMo's 409
    stops a second refund.
    """
    if reversal_id:
        try:
            parsed = uuid.UUID(reversal_id)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.version == 4:
            return str(parsed)
        seed = f"{payment_id}:refund:{reversal_id}"
    else:
        seed = f"{payment_id}:refund"
    raw = bytearray(hashlib.sha256(seed.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def msisdn(e164: str) -> str:
    """MoMo's MSISDN: country code and number, digits only, never a '+'."""
    return phones.international_digits(e164)


def amount_text(amount: Decimal) -> str:
    """MoMo's `amount` string: '1500' for whole amounts, '12.5' otherwise."""
    if amount == amount.to_integral_value():
        return str(amount.quantize(Decimal(1)))
    return format(amount.normalize(), "f")


# -- the one translation of MoMo's answers ------------------------------------------------------


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = decode(response.content, MomoError)
    except BODY_ERRORS:
        return None, (response.text[:200] or None)
    return (body.code or body.error), body.message


def read(response: httpx.Response, shape: type[T], operation: str) -> T:
    """A MoMo answer's body as `shape` (numbers read as text, `wire.decode`); a body that
    is not of that shape is OutcomeUnknown."""
    try:
        return decode(response.content, shape)
    except BODY_ERRORS as exc:
        raise OutcomeUnknown(
            f"{DISPLAY}: unreadable {operation} answer", provider=NAME, raw=response.text[:200]
        ) from exc


@honours_retry_after
def raise_for(response: httpx.Response, operation: str) -> None:
    """Raise the core's error for a MoMo error answer; return for 2xx."""
    status = response.status_code
    if status < 400:
        return
    code, text = _error_body(response)
    code = code or {400: "REQUEST_REJECTED", 401: "ACCESS_DENIED", 403: "FORBIDDEN_IP"}.get(
        status, f"HTTP_{status}"
    )
    text = text or REASONS.get(code, code)
    kwargs: dict[str, Any] = {
        "provider": NAME,
        "provider_code": code,
        "provider_message": text,
        "failure_code": VOCABULARY.code(code),
    }
    where = f"{DISPLAY} {operation}"
    if code == "login_failed" or status in (401, 403):
        raise ProviderAuthenticationError(f"{where}: credentials refused ({code})", **kwargs)
    if code == "NOT_ALLOWED_TARGET_ENVIRONMENT":
        raise ProviderAuthenticationError(f"{where}: {text}", **kwargs)
    if status == 429:
        raise RateLimited(f"{where}: rate limited", **kwargs)
    if code == "SERVICE_UNAVAILABLE" or status in (502, 503):
        raise ProviderUnavailable(f"{where}: unavailable", **kwargs)
    if code in DECLINE_CODES:
        raise OperatorDeclined(text, **kwargs)
    if code in ("INVALID_CURRENCY", "INVALID_CALLBACK_URL_HOST"):
        raise InvalidRequest(f"{where} refused: {text}", **kwargs)
    if status == 404:
        raise InvalidRequest(f"{where}: not found", code="not_found", **kwargs)
    if status == 409:
        raise InvalidRequest(f"{where}: {text}", code="duplicate", **kwargs)
    if status >= 500:
        raise OutcomeUnknown(f"{where} failed with {status} ({code})", **kwargs)
    raise InvalidRequest(f"{where} refused: {text}", **kwargs)


def outcome(tx: Transaction) -> tuple[ReportedStatus, Failure | None]:
    """A transaction's `status` and `reason` as the core's status and failure.

    Only SUCCESSFUL is paid. FAILED keeps MoMo's reason (a string or `{code, message}`);
    EXPIRED and COULD_NOT_PERFORM_TRANSACTION (no PIN within the window) are `expired`.
    Any other status (PENDING, CREATED, an undocumented one) is still pending.
    """
    state = tx.status.upper()
    if state == "SUCCESSFUL":
        return "succeeded", None
    code = tx.reason_code
    failure = None
    if code:
        failure = failure_for(code, tx.reason_message)
    if state in FINAL_FAILED:
        failure = failure or failure_for(state, "The transaction failed")
        return ("expired" if failure.code in failures.EXPIRED_CODES else "failed"), failure
    if state in EXPIRED_STATUSES:
        return "expired", failure or failure_for(state, REASONS["EXPIRED"])
    return "pending", None


# -- tokens and sending -------------------------------------------------------------------------


def token_key(context: ProviderContext, product: str) -> str:
    _, user, _ = settings_of(context).credentials(product)
    return context.token_key(product, user)


def operator(
    context: ProviderContext, product: str, environment: str | None = None
) -> OperatorClient:
    """The core's operator client for one product: its token (`POST /{product}/token/`,
    Basic auth), and `Ocp-Apim-Subscription-Key` / `X-Target-Environment` (`environment`,
    by default the configured one) on every call."""
    settings = settings_of(context)
    key, user, secret = settings.credentials(product)
    product_headers = {
        "Ocp-Apim-Subscription-Key": key,
        "X-Target-Environment": environment or settings.target_environment,
    }

    async def fetch() -> AccessToken:
        basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
        response = await request(
            context,
            "POST",
            f"/{product}/token/",
            "token",
            moves_money=False,
            headers={"Authorization": f"Basic {basic}", **product_headers},
        )
        raise_for(response, f"{product} token")
        body = read(response, TokenResponse, "token")
        return AccessToken.lasting(body.access_token, body.expires_in)

    return OperatorClient(
        context,
        token_key=token_key(context, product),
        fetch_token=fetch,
        headers=product_headers,
    )


async def token(context: ProviderContext, product: str) -> str:
    """The product's bearer token, cached."""
    return await operator(context, product).token()


async def send(
    context: ProviderContext,
    product: str,
    method: str,
    path: str,
    operation: str,
    *,
    moves_money: bool,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    environment: str | None = None,
) -> httpx.Response:
    """One product call through the core's operator client (one token refresh on a 401)."""
    extra = dict(headers or {})
    if content is not None:
        extra["Content-Type"] = "application/json"
    return await operator(context, product, environment).send(
        method, path, operation, moves_money=moves_money, headers=extra, content=content
    )


async def get_transaction(
    context: ProviderContext,
    product: str,
    mode: str,
    reference: str,
    environment: str | None = None,
) -> Transaction | None:
    """`GET /{product}/v1_0/{mode}/{reference}`; None when MoMo does not know it (404)."""
    path = f"/{product}/v1_0/{mode}/{reference}"
    response = await send(
        context, product, "GET", path, "status", moves_money=False, environment=environment
    )
    if response.status_code == 404:
        return None
    raise_for(response, "status")
    return read(response, Transaction, "status")


def is_resendable(exc: MmoError) -> bool:
    """A create that may be sent again with the same X-Reference-Id. Not a 429: the
    gateway pauses the whole account for its Retry-After and queues the payment."""
    if isinstance(exc, RateLimited):
        return False
    return isinstance(exc, OutcomeUnknown | ProviderUnavailable)
