"""The hook implementations of Example Pay."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

import httpx
import msgspec
from mmo_core import failures, hookimpl, money, phones
from mmo_core.callbacks import constant_time_equals
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    CallbackVerificationFailed,
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
from mmo_core.types import (
    AmountLimit,
    CallbackOutcome,
    Failure,
    HealthReport,
    InboundCallback,
    InitiateResult,
    Market,
    Payment,
    PaymentUpdate,
    ProviderDeclaration,
    StatusReport,
    WebhookReply,
)

from mmo_example.settings import ExampleSettings
from mmo_example.wire import ErrorBody, PaymentCreate, PaymentView, TokenResponse

NAME = "example"
SIGNATURE_HEADER = "x-example-signature"

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name="Example Pay",
    description="A minimal provider with its own simulator, to copy when adding an operator.",
    countries=("KE", "UG", "GH", "CI"),
    currencies=("KES", "UGX", "GHS", "XOF"),
    operations=("collection", "disbursement"),
    limits=(
        AmountLimit(currency="KES", minimum=Decimal(1), maximum=Decimal(250_000)),
        AmountLimit(currency="UGX", minimum=Decimal(500), maximum=Decimal(5_000_000)),
        AmountLimit(currency="GHS", minimum=Decimal("0.10"), maximum=Decimal(10_000)),
        AmountLimit(currency="XOF", minimum=Decimal(100), maximum=Decimal(2_000_000)),
    ),
    markets=(
        Market("KE", "KES"),
        Market("UG", "UGX"),
        Market("GH", "GHS"),
        Market("CI", "XOF"),
    ),
    webhook_kinds=("payment",),
    settings=ExampleSettings,
    # Example Pay deduplicates on our reference (409), so a lost request can be resent.
    resend_safe=True,
    poll_after=5.0,
)

_STATUS = {
    "PENDING": "pending",
    "SUCCESSFUL": "succeeded",
    "FAILED": "failed",
    "EXPIRED": "expired",
}


def sign(secret: str, body: bytes) -> str:
    """Example Pay's callback signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(payment: Payment) -> None:
    if payment.currency not in DECLARATION.currencies:
        raise InvalidRequest(f"Example Pay does not take {payment.currency}", provider=NAME)
    if not DECLARATION.serves(phones.region_of(payment.msisdn), payment.currency):
        raise InvalidRequest(
            f"Example Pay does not take {payment.currency} for this number's country",
            provider=NAME,
        )


def _operator(context: ProviderContext) -> OperatorClient:
    """The core's operator client (token cache, one refresh on a 401, transport errors)
    with what is Example Pay's own: how to get a token."""
    settings: ExampleSettings = context.settings  # type: ignore[assignment]

    async def fetch() -> AccessToken:
        response = await request(
            context,
            "POST",
            "/oauth/token",
            "token",
            moves_money=False,
            auth=(settings.client_id, settings.client_secret),
        )
        if response.status_code == 401:
            raise ProviderAuthenticationError("Example Pay refused our credentials", provider=NAME)
        _raise_for(response, "token")
        body = msgspec.json.decode(response.content, type=TokenResponse)
        return AccessToken.lasting(body.access_token, body.expires_in)

    return OperatorClient(
        context, token_key=context.token_key(settings.client_id), fetch_token=fetch
    )


@honours_retry_after
def _raise_for(response: httpx.Response, operation: str) -> None:
    """The one place where Example Pay's answers become the core's errors."""
    if response.status_code < 400:
        return
    try:
        body = msgspec.json.decode(response.content, type=ErrorBody)
        code, text = body.error, body.message
    except msgspec.MsgspecError:
        code, text = str(response.status_code), response.text[:200]
    kwargs: dict[str, Any] = {"provider": NAME, "provider_code": code, "provider_message": text}
    if response.status_code == 429:
        raise RateLimited(f"Example Pay: {operation} rate limited", **kwargs)
    if response.status_code in (502, 503):
        raise ProviderUnavailable(f"Example Pay: {operation} unavailable", **kwargs)
    if response.status_code >= 500:
        raise OutcomeUnknown(
            f"Example Pay: {operation} failed with {response.status_code}", **kwargs
        )
    if response.status_code == 401:
        raise ProviderAuthenticationError(f"Example Pay: {operation} unauthorised", **kwargs)
    if response.status_code == 402:
        raise OperatorDeclined(text or "Declined", failure_code=VOCABULARY.code(code), **kwargs)
    raise InvalidRequest(f"Example Pay refused {operation}: {text or code}", **kwargs)


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    body = PaymentCreate(
        reference=payment.id,
        kind=payment.type,
        amount=str(payment.amount),
        currency=payment.currency,
        msisdn=phones.international_digits(payment.msisdn),
        callback_url=context.callback_url("payment", payment.id),
    )
    response = await _operator(context).send(
        "POST", "/v1/payments", "initiate", moves_money=True, content=msgspec.json.encode(body)
    )
    if response.status_code == 409:
        # Our reference was already taken: the first request got through. Read its state.
        view = await _view(context, payment)
        return InitiateResult(provider_reference=view.id)
    _raise_for(response, "initiate")
    view = msgspec.json.decode(response.content, type=PaymentView)
    return InitiateResult(provider_reference=view.id)


async def _view(context: ProviderContext, payment: Payment) -> PaymentView:
    path = f"/v1/payments/by-reference/{payment.id}"
    response = await _operator(context).send("GET", path, "status", moves_money=False)
    if response.status_code == 404:
        raise UnknownToOperator("Example Pay has no such payment", provider=NAME)
    _raise_for(response, "status")
    return msgspec.json.decode(response.content, type=PaymentView)


# Example Pay's reason codes -> the gateway's failure vocabulary (mmo_core.failures): the
# one table of this plugin. A code not here becomes `operator_error`, logged once.
VOCABULARY = failures.Vocabulary(
    NAME,
    {
        "INSUFFICIENT_FUNDS": failures.INSUFFICIENT_FUNDS,
        "CANCELLED": failures.PAYER_DECLINED,
        "TIMEOUT": failures.PROMPT_EXPIRED,
        "WRONG_PIN": failures.WRONG_PIN,
    },
)


def _failure(view: PaymentView) -> Failure | None:
    if view.reason_code is None:
        return None
    return VOCABULARY.failure(view.reason_code, view.reason or view.reason_code)


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    view = await _view(context, payment)
    return StatusReport(
        status=_STATUS[view.status],  # type: ignore[arg-type]
        provider_reference=view.id,
        failure=_failure(view),
        # an amount that is not money (text, negative, too many decimals) is InvalidRequest
        amount=money.reported_amount(view.amount, view.currency, provider=NAME),
    )


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    settings: ExampleSettings = context.settings  # type: ignore[assignment]
    payment_id = context.verify_callback(callback)
    given = callback.headers.get(SIGNATURE_HEADER, "")
    if not given or not constant_time_equals(given, sign(settings.webhook_secret, callback.body)):
        raise CallbackVerificationFailed("Bad Example Pay signature", provider=NAME)
    view = callback.json(PaymentView)
    if payment_id is not None and view.reference != payment_id:
        raise CallbackVerificationFailed("Callback is for another payment", provider=NAME)
    update = PaymentUpdate(
        status=_STATUS[view.status],  # type: ignore[arg-type]
        payment_id=view.reference,
        provider_reference=view.id,
        failure=_failure(view),
        # an amount that is not money (text, negative, too many decimals) is InvalidRequest
        amount=money.reported_amount(view.amount, view.currency, provider=NAME),
        msisdn=phones.to_e164(view.msisdn, strict=False),
    )
    return CallbackOutcome(
        reply=WebhookReply(body={"received": True}), update=update, authenticated=True
    )


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    # a new token, bypassing the cache: the probe must reach the operator every time
    return await _operator(context).probe("token ok")


@hookimpl
def simulator_app(settings: ExampleSettings, accounts: dict[str, ExampleSettings]):
    from mmo_example.simulator import create_simulator

    return create_simulator(settings, accounts)
