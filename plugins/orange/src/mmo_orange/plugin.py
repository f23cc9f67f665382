"""The hook implementations of Orange Money (WebPay and Orange Cameroon omcoreapis)."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec
from mmo_core import hookimpl, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import InvalidRequest, MmoError, NotSupported, OperatorDeclined
from mmo_core.types import (
    AmountLimit,
    CallbackOutcome,
    HealthReport,
    InboundCallback,
    InitiateResult,
    Market,
    NextAction,
    Payment,
    PaymentUpdate,
    ProviderDeclaration,
    StatusReport,
    WebhookReply,
)

from mmo_orange import client
from mmo_orange.client import NAME, raise_for
from mmo_orange.settings import OrangeSettings
from mmo_orange.wire import (
    MpEnvelope,
    MpNotification,
    MpPay,
    Notification,
    TransactionStatus,
    WebPayment,
    WebPaymentCreated,
)

# Where Orange Money runs, with the currency its wallets hold there [notes §6].
MARKETS = (
    Market("CI", "XOF"),
    Market("ML", "XOF"),
    Market("SN", "XOF"),
    Market("NE", "XOF"),
    Market("GW", "XOF"),
    Market("CM", "XAF"),
    Market("CF", "XAF"),
    Market("GN", "GNF"),
    Market("MG", "MGA"),
    Market("CD", "CDF"),
    Market("BW", "BWP"),
    Market("SL", "SLE"),
    Market("LR", "LRD"),
)
_MAXIMUM = {"XOF": 2_000_000, "XAF": 2_000_000, "GNF": 30_000_000}

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name="Orange Money",
    description=(
        "Orange Money by country: WebPay (redirect to Orange's payment page) and Orange "
        "Cameroon merchant payment (USSD push) with cash-in."
    ),
    countries=tuple(dict.fromkeys(m.country for m in MARKETS)),
    currencies=tuple(dict.fromkeys(m.currency for m in MARKETS)),
    markets=MARKETS,
    operations=("collection", "disbursement"),
    # WebPay's documented amounts are integers; decimals are unverified, so whole units only
    limits=tuple(
        AmountLimit(
            currency=currency,
            minimum=Decimal(1),
            maximum=Decimal(_MAXIMUM[currency]) if currency in _MAXIMUM else None,
            whole_units_only=True,
        )
        for currency in dict.fromkeys(m.currency for m in MARKETS)
    ),
    webhook_kinds=("callback", "status"),
    webhook_path="orange-money",
    settings=OrangeSettings,
)

URL_LIMIT = 120  # WebPay: return_url, cancel_url and notif_url [O1]
SIMULATOR_PAYER_HEADER = "X-Mmo-Simulator-Payer"


def _settings(context: ProviderContext) -> OrangeSettings:
    return context.settings  # type: ignore[return-value]


def _family(context: ProviderContext, payment: Payment) -> str:
    return str(
        payment.provider_data.get("family") or _settings(context).family_for(payment.country)
    )


def _simulated(context: ProviderContext) -> bool:
    """Talking to our own simulator (sandbox, no operator URL configured)."""
    settings = _settings(context)
    return context.environment == "sandbox" and not (settings.base_url or settings.webpay_base_url)


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(context: ProviderContext, payment: Payment) -> None:
    if not DECLARATION.serves(payment.country, payment.currency):
        raise InvalidRequest(
            f"Orange Money does not take {payment.currency} in {payment.country}", provider=NAME
        )
    settings = _settings(context)
    family = settings.family_for(payment.country)
    if family == "webpay":
        if payment.type != "collection":
            raise NotSupported(
                f"Orange WebPay only collects; no {payment.type} in {payment.country}",
                provider=NAME,
            )
        urls = {
            "notif_url": context.callback_url("callback"),
            "return_url": settings.return_url,
            "cancel_url": settings.cancel_url,
        }
        for name, url in urls.items():
            if len(url) > URL_LIMIT:
                raise InvalidRequest(
                    f"Orange WebPay takes a {name} of at most {URL_LIMIT} characters "
                    f"(this one has {len(url)}): shorten the public URL",
                    code="url_too_long",
                    provider=NAME,
                )
        return
    if payment.type == "remittance":
        raise NotSupported("Orange Cameroon has no remittance", provider=NAME)
    if not client.CAMEROON_MSISDN.match(phones.national_number(payment.msisdn)):
        raise InvalidRequest(
            "Orange Cameroon takes Orange numbers of 9 digits (69xxxxxxx, 655-659xxxxxx)",
            code="invalid_msisdn",
            provider=NAME,
        )


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    validate(context, payment)
    if _family(context, payment) == "webpay":
        return await _webpay_initiate(context, payment)
    return await _cameroon_initiate(context, payment)


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    if _family(context, payment) == "webpay":
        return await _webpay_status(context, payment)
    return await _cameroon_status(context, payment)


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    payment_id = context.verify_callback(callback)
    if callback.kind == "callback":
        update = _webpay_update(callback.json(Notification))
    else:
        update = _cameroon_update(callback.json(MpNotification), payment_id)
    # Orange signs nothing: the host confirms a final status with `status` before applying
    return CallbackOutcome(
        reply=WebhookReply(status_code=200, body={"status": "OK"}),
        update=update,
        authenticated=False,
    )


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    settings = _settings(context)
    families = sorted({settings.default_family, *settings.family_map().values()})
    started = time.perf_counter()
    try:
        for family in families:
            await client.token(context, family)
    except MmoError as exc:
        return HealthReport(ok=False, detail=f"{exc.code}: {exc.message}")
    return HealthReport(
        ok=True,
        detail=f"token ok ({', '.join(families)})",
        latency_ms=(time.perf_counter() - started) * 1000,
    )


@hookimpl
def simulator_app(settings: OrangeSettings):
    from mmo_orange.simulator import create_simulator

    return create_simulator(settings)


# -- WebPay ---------------------------------------------------------------------------------


def _webpay_path(cc: str, endpoint: str) -> str:
    return f"/orange-money-webpay/{cc}/v1/{endpoint}"


async def _webpay_initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = _settings(context)
    cc = (settings.webpay_country or payment.country).lower()
    currency = "OUV" if cc == "dev" else payment.currency
    body = WebPayment(
        merchant_key=settings.merchant_key,
        currency=currency,
        order_id=client.order_id(payment.id),
        amount=int(payment.amount),
        return_url=settings.return_url,
        cancel_url=settings.cancel_url,
        notif_url=context.callback_url("callback"),
        lang=settings.webpay_lang,
        reference=settings.merchant_name[:30],
    )
    headers = {"Content-Type": "application/json"}
    if _simulated(context):
        # the payer's number never reaches WebPay (it is typed on Orange's page); our own
        # simulator's auto-pay mode needs its last four digits to play the test numbers
        headers[SIMULATOR_PAYER_HEADER] = phones.last_digits(payment.msisdn)
    response = await client.send(
        context,
        "webpay",
        "POST",
        _webpay_path(cc, "webpayment"),
        "initiate",
        headers=headers,
        content=msgspec.json.encode(body),
    )
    raise_for(response, "initiate")
    try:
        created = msgspec.json.decode(response.content, type=WebPaymentCreated)
    except msgspec.MsgspecError:
        raise client.OutcomeUnknown(
            "Orange WebPay: unreadable webpayment answer", provider=NAME
        ) from None
    return InitiateResult(
        provider_reference=client.notif_reference(created.notif_token),
        provider_data={
            "family": "webpay",
            "cc": cc,
            "currency": currency,
            "order_id": body.order_id,
            "amount": body.amount,
            "pay_token": created.pay_token,
            "notif_token": created.notif_token,
        },
        next_action=NextAction("redirect", created.payment_url),
    )


async def _webpay_status(context: ProviderContext, payment: Payment) -> StatusReport:
    data = payment.provider_data
    if not data.get("pay_token") or not data.get("order_id"):
        raise InvalidRequest(
            "This payment has no Orange WebPay pay_token", code="not_found", provider=NAME
        )
    query = {
        "order_id": data["order_id"],
        "amount": int(data.get("amount") or int(payment.amount)),
        "pay_token": data["pay_token"],
    }
    response = await client.send(
        context,
        "webpay",
        "POST",
        _webpay_path(str(data.get("cc") or "dev"), "transactionstatus"),
        "status",
        json=query,
    )
    raise_for(response, "status")
    answer = msgspec.json.decode(response.content, type=TransactionStatus)
    mapped = client.webpay_status(answer.status)
    failure = None
    if mapped in ("failed", "expired"):
        failure = client.failure_of(answer.status, None, answer.status)
    return StatusReport(status=mapped, provider_transaction_id=answer.txnid, failure=failure)


def _webpay_update(note: Notification) -> PaymentUpdate:
    mapped = client.webpay_status(note.status)
    failure = None
    if mapped in ("failed", "expired"):
        failure = client.failure_of(note.status, None, note.status)
    # found by the digest of its notif_token: a wrong token matches no payment
    return PaymentUpdate(
        status=mapped,
        provider_reference=client.notif_reference(note.notif_token),
        provider_transaction_id=note.txnid,
        failure=failure,
    )


# -- Orange Cameroon omcoreapis -------------------------------------------------------------


def _cameroon_path(context: ProviderContext, kind: str, endpoint: str) -> str:
    return f"/omcoreapis/{_settings(context).cameroon_api_version}/{kind}/{endpoint}"


async def _cameroon_initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = _settings(context)
    kind = "mp" if payment.type == "collection" else "cashin"
    response = await client.send(
        context, "cameroon", "POST", _cameroon_path(context, kind, "init"), "initiate"
    )
    raise_for(response, "initiate")
    init = msgspec.json.decode(response.content, type=MpEnvelope)
    if init.data is None or not init.data.payToken:
        raise client.ProviderUnavailable(
            "Orange Cameroon: init gave no payToken", provider=NAME, provider_message=init.message
        )
    pay_token = init.data.payToken
    body = MpPay(
        notifUrl=context.callback_url("status", payment.id),
        channelUserMsisdn=settings.cameroon_channel_msisdn,
        amount=str(int(payment.amount)),
        subscriberMsisdn=phones.national_number(payment.msisdn),
        pin=settings.cameroon_pin,
        orderId=client.order_id(payment.id),
        description=(payment.description or payment.reference)[:100],
        payToken=pay_token,
    )
    response = await client.send(
        context,
        "cameroon",
        "POST",
        _cameroon_path(context, kind, "pay"),
        "initiate",
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    raise_for(response, "initiate")
    answer = msgspec.json.decode(response.content, type=MpEnvelope)
    data = answer.data
    mapped = client.cameroon_status(data.status if data else None)
    if mapped in ("failed", "expired"):
        code, text = client.split_coded(answer.message)
        raise OperatorDeclined(
            text or "Declined by Orange Money",
            provider=NAME,
            provider_code=(data.inittxnstatus if data else None) or code or mapped,
            provider_message=(data.inittxnmessage if data else None) or text,
        )
    return InitiateResult(
        status="succeeded" if mapped == "succeeded" else "pending",
        provider_reference=pay_token,
        provider_transaction_id=data.txnid if data else None,
        provider_data={
            "family": "cameroon",
            "kind": kind,
            "pay_token": pay_token,
            "order_id": body.orderId,
        },
    )


async def _cameroon_status(context: ProviderContext, payment: Payment) -> StatusReport:
    data = payment.provider_data
    pay_token = data.get("pay_token") or payment.provider_reference
    if not pay_token:
        raise InvalidRequest("This payment has no Orange payToken", code="not_found", provider=NAME)
    kind = str(data.get("kind") or "mp")
    response = await client.send(
        context,
        "cameroon",
        "GET",
        _cameroon_path(context, kind, f"paymentstatus/{pay_token}"),
        "status",
    )
    raise_for(response, "status")
    answer = msgspec.json.decode(response.content, type=MpEnvelope)
    found = answer.data
    raw = (found.status if found else None) or "PENDING"
    mapped = client.cameroon_status(raw)
    failure = None
    if mapped in ("failed", "expired") and found is not None:
        code = found.confirmtxnstatus if found.confirmtxnstatus not in (None, "200") else None
        failure = client.failure_of(code, found.confirmtxnmessage, raw.upper())
    return StatusReport(
        status=mapped,
        provider_reference=pay_token,
        provider_transaction_id=found.txnid if found else None,
        failure=failure,
    )


def _cameroon_update(note: MpNotification, payment_id: str | None) -> PaymentUpdate:
    mapped = client.cameroon_status(note.status)
    failure = None
    if mapped in ("failed", "expired"):
        code, text = client.split_coded(note.message)
        failure = client.failure_of(code, text, note.status.upper())
    return PaymentUpdate(
        status=mapped, payment_id=payment_id, provider_reference=note.payToken, failure=failure
    )


async def resend_prompt(context: ProviderContext, payment: Payment) -> str:
    """Orange Cameroon `mp/push/{payToken}`: send the USSD prompt to the payer again."""
    pay_token = payment.provider_data.get("pay_token") or payment.provider_reference
    response = await client.send(
        context, "cameroon", "GET", _cameroon_path(context, "mp", f"push/{pay_token}"), "push"
    )
    raise_for(response, "push")
    return response.text
