"""The hook implementations of Orange Money (WebPay, Orange Cameroon omcoreapis and the
Senegal Orange Money API of Sonatel)."""

from __future__ import annotations

import datetime as dt
import hmac
import re
import uuid
from decimal import Decimal, InvalidOperation

import msgspec
from mmo_core import hookimpl, phones
from mmo_core.context import ProviderContext
from mmo_core.crypto import load_public_key, rsa_encrypt_pkcs1v15
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
)
from mmo_core.operator import probe
from mmo_core.types import (
    AmountLimit,
    Balance,
    BalanceReport,
    CallbackOutcome,
    HealthReport,
    InboundCallback,
    InitiateResult,
    Market,
    NextAction,
    Payment,
    PaymentUpdate,
    ProviderDeclaration,
    SetupReport,
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
    SonatelMerchantCallback,
    SonatelMoney,
    SonatelNotification,
    SonatelParty,
    SonatelPublicKey,
    SonatelTransaction,
    SonatelTransactionResponse,
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
        "Orange Money by country: WebPay (redirect to Orange's payment page), Orange "
        "Cameroon merchant payment (USSD push) with cash-in, and the Senegal Orange Money "
        "API (merchant payment confirmed on #144# or by OTP, cash-in, balance)."
    ),
    countries=tuple(dict.fromkeys(m.country for m in MARKETS)),
    currencies=tuple(dict.fromkeys(m.currency for m in MARKETS)),
    markets=MARKETS,
    # balance: the Senegal (Sonatel) API only; `balance` raises NotSupported without it.
    # resend_prompt: Orange Cameroon merchant payments only (`mp/push`); NotSupported elsewhere
    operations=("collection", "disbursement", "balance", "resend_prompt"),
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
    """Talking to a sandbox: ours (mounted or `mmo simulate orange`) or Orange's own, which
    ignores the extra header."""
    return context.environment == "sandbox"


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
        raise NotSupported(f"Orange Money has no remittance in {payment.country}", provider=NAME)
    if family == "sonatel":
        if not SENEGAL_MSISDN.match(phones.national_number(payment.msisdn)):
            raise InvalidRequest(
                "Orange Senegal takes Orange numbers of 9 digits (77xxxxxxx, 78xxxxxxx)",
                code="invalid_msisdn",
                provider=NAME,
            )
        return
    if not client.CAMEROON_MSISDN.match(phones.national_number(payment.msisdn)):
        raise InvalidRequest(
            "Orange Cameroon takes Orange numbers of 9 digits (69xxxxxxx, 655-659xxxxxx)",
            code="invalid_msisdn",
            provider=NAME,
        )


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    validate(context, payment)
    family = _family(context, payment)
    if family == "webpay":
        return await _webpay_initiate(context, payment)
    if family == "sonatel":
        return await _sonatel_initiate(context, payment)
    return await _cameroon_initiate(context, payment)


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    family = _family(context, payment)
    if family == "webpay":
        return await _webpay_status(context, payment)
    if family == "sonatel":
        return await _sonatel_status(context, payment)
    return await _cameroon_status(context, payment)


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    payment_id = context.verify_callback(callback)
    if callback.kind == "callback" and _is_sonatel(callback):
        # the merchant callback registered with Sonatel: its echoed apiKey is checked first
        update = _sonatel_update(context, callback)
    elif callback.kind == "callback":
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
    """A new token of every enabled family, bypassing the cache (the core's probe)."""
    families = _settings(context).enabled_families()

    async def fresh_tokens() -> None:
        for family in families:
            await client.operator(context, family).fresh_token()

    return await probe(fresh_tokens, detail=f"token ok ({', '.join(families)})")


@hookimpl
async def balance(context: ProviderContext) -> BalanceReport:
    """The retailer wallet's balance: only the Senegal (Sonatel) API tells it."""
    settings = _settings(context)
    if not settings.uses("sonatel"):
        raise NotSupported(
            "Orange Money balance is offered only by the Senegal (Sonatel) API; WebPay and "
            "Orange Cameroon have none. Map a country to it (MMO_ORANGE_FAMILIES=SN:sonatel).",
            provider=NAME,
        )
    party = SonatelParty(
        idType="MSISDN",
        id=settings.sonatel_retailer_msisdn,
        encryptedPinCode=await _encrypted_pin(context),
        walletType="PRINCIPAL",
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        SONATEL_API + "/account/retailer/balance",
        "balance",
        moves_money=False,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(party),
    )
    raise_for(response, "balance")
    try:
        money = msgspec.json.decode(response.content, type=SonatelMoney)
        available = Decimal(str(money.value))
    except (msgspec.MsgspecError, InvalidOperation):
        raise client.ProviderUnavailable(
            "Orange Senegal: unreadable balance answer", provider=NAME
        ) from None
    return BalanceReport(
        balances=(
            Balance(
                account=phones.mask("+221" + settings.sonatel_retailer_msisdn),
                currency=money.unit,
                available=available,
            ),
        )
    )


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    """Register our callback URL and apiKey for the merchant code with Sonatel."""
    settings = _settings(context)
    if not settings.uses("sonatel"):
        return SetupReport(lines=("No country uses the Senegal (Sonatel) API: nothing to do.",))
    body = SonatelMerchantCallback(
        apiKey=settings.sonatel_api_key,
        code=settings.sonatel_merchant_code,
        name=settings.merchant_name[:30],
        callbackUrl=context.callback_url("callback"),
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        "/api/notification/v1/merchantcallback",
        "setup",
        moves_money=False,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    raise_for(response, "setup")
    return SetupReport(
        lines=(
            f"Sonatel merchant callback registered for merchant code "
            f"{settings.sonatel_merchant_code} (apiKey = MMO_ORANGE_SONATEL_API_KEY).",
        )
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
    # empty: Orange's sandbox offer ("dev") in the sandbox, the payment's country in production
    cc = (
        settings.webpay_country or ("dev" if context.environment == "sandbox" else payment.country)
    ).lower()
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
        moves_money=True,
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
        moves_money=False,
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
        context,
        "cameroon",
        "POST",
        _cameroon_path(context, kind, "init"),
        "initiate",
        moves_money=True,
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
        moves_money=True,
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
        moves_money=False,
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


@hookimpl
async def resend_prompt(context: ProviderContext, payment: Payment) -> None:
    """Send the payer's approval prompt again: Orange Cameroon `GET mp/push/{payToken}`.

    Only Orange Cameroon merchant payments have such an endpoint [O7, O15]. Orange refuses a
    push for a payToken that is no longer pending (paid, failed, expired): that refusal is an
    `InvalidRequest` (code `not_pending`), Orange's own code and text kept.
    """
    family = _family(context, payment)
    if family == "webpay":
        raise NotSupported(
            "Orange WebPay has no prompt to resend: the payer approves on Orange's payment "
            "page; send them the payment's redirect URL (next_action) again",
            provider=NAME,
        )
    if family == "sonatel":
        raise NotSupported(
            "Orange Senegal (Sonatel) has no endpoint to resend a payment prompt: the payer "
            "confirms the pending payment on #144#",
            provider=NAME,
        )
    if payment.type != "collection" or payment.provider_data.get("kind", "mp") != "mp":
        raise NotSupported(
            "Orange Cameroon resends the USSD prompt of merchant payments (collections) only",
            provider=NAME,
        )
    if payment.status in ("succeeded", "failed", "expired", "reversed"):
        raise InvalidRequest(
            f"This payment is {payment.status}: there is no prompt to resend",
            code="not_pending",
            provider=NAME,
        )
    pay_token = payment.provider_data.get("pay_token") or payment.provider_reference
    if not pay_token:
        raise InvalidRequest(
            "This payment has no Orange payToken to prompt for", code="not_found", provider=NAME
        )
    response = await client.send(
        context,
        "cameroon",
        "GET",
        _cameroon_path(context, "mp", f"push/{pay_token}"),
        "resend_prompt",
        moves_money=False,
    )
    raise_for(response, "resend_prompt")


# -- Orange Senegal "Orange Money API" (Sonatel) --------------------------------------------

SONATEL_API = "/api/eWallet/v1"
SENEGAL_MSISDN = re.compile(r"^7[78]\d{7}$")
# a payment's metadata key carrying the OTP the payer generated (#144#391#): one-step payment
OTP_KEY = "otp"


def _is_sonatel(callback: InboundCallback) -> bool:
    """Sonatel's callback carries `transactionId`; WebPay's carries `notif_token`."""
    return b'"transactionId"' in callback.body


async def _encrypted_pin(context: ProviderContext) -> str:
    """base64(RSA-PKCS#1-v1.5(PIN)) with the key Sonatel serves at publicKeys [O8]."""
    response = await client.send(
        context, "sonatel", "GET", "/api/account/v1/publicKeys", "public key", moves_money=False
    )
    raise_for(response, "public key")
    try:
        key = msgspec.json.decode(response.content, type=SonatelPublicKey)
    except msgspec.MsgspecError:
        raise client.ProviderUnavailable(
            "Orange Senegal: unreadable publicKeys answer", provider=NAME
        ) from None
    return rsa_encrypt_pkcs1v15(load_public_key(key.key), _settings(context).sonatel_pin)


async def _sonatel_initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = _settings(context)
    customer = SonatelParty(
        idType="MSISDN", id=phones.national_number(payment.msisdn), walletType="PRINCIPAL"
    )
    otp = str(payment.metadata.get(OTP_KEY) or "")
    if payment.type == "disbursement":
        path, kind, method = SONATEL_API + "/cashins", "cashin", None
        partner = SonatelParty(
            idType="MSISDN",
            id=settings.sonatel_retailer_msisdn,
            encryptedPinCode=await _encrypted_pin(context),
            walletType="PRINCIPAL",
        )
    else:
        partner = SonatelParty(idType="CODE", id=settings.sonatel_merchant_code)
        if otp:  # the payer's OTP: one step, no confirmation on the handset
            path, kind, method = SONATEL_API + "/payments/onestep", "onestep", None
            customer = SonatelParty(
                idType="MSISDN", id=customer.id, walletType="PRINCIPAL", otp=otp
            )
        else:  # the payer confirms on #144#
            path, kind, method = SONATEL_API + "/payments", "payment", "CLASSIC"
    body = SonatelTransaction(
        partner=partner,
        customer=customer,
        amount=SonatelMoney(value=int(payment.amount), unit=payment.currency),
        reference=payment.id,
        requestDate=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        receiveNotification=True,
        method=method,
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        path,
        "initiate",
        moves_money=True,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    raise_for(response, "initiate")
    try:
        answer = msgspec.json.decode(response.content, type=SonatelTransactionResponse)
    except msgspec.MsgspecError:
        raise client.OutcomeUnknown(
            "Orange Senegal: unreadable transaction answer", provider=NAME
        ) from None
    mapped = client.sonatel_status(answer.status)
    if mapped == "failed":
        raise OperatorDeclined(
            answer.description or f"Orange Money reported {answer.status}",
            provider=NAME,
            provider_code=answer.status.upper(),
            provider_message=answer.description,
        )
    return InitiateResult(
        status="succeeded" if mapped == "succeeded" else "pending",
        provider_reference=answer.transactionId,
        provider_transaction_id=answer.transactionId,
        provider_data={"family": "sonatel", "kind": kind, "transaction_id": answer.transactionId},
    )


async def _sonatel_status(context: ProviderContext, payment: Payment) -> StatusReport:
    transaction_id = payment.provider_data.get("transaction_id") or payment.provider_reference
    if not transaction_id:
        raise InvalidRequest(
            "This payment has no Orange Senegal transactionId", code="not_found", provider=NAME
        )
    response = await client.send(
        context,
        "sonatel",
        "GET",
        f"{SONATEL_API}/transactions/{transaction_id}/status",
        "status",
        moves_money=False,
    )
    raise_for(response, "status")
    answer = msgspec.json.decode(response.content, type=SonatelTransactionResponse)
    mapped = client.sonatel_status(answer.status)
    failure = None
    if mapped == "failed":
        failure = client.failure_of(answer.status.upper(), answer.description, answer.status)
    return StatusReport(
        status=mapped,
        provider_reference=transaction_id,
        provider_transaction_id=transaction_id,
        failure=failure,
    )


def _sonatel_update(context: ProviderContext, callback: InboundCallback) -> PaymentUpdate:
    note = callback.json(SonatelNotification)
    expected = _settings(context).sonatel_api_key.encode()
    given = (note.apiKey or callback.headers.get("apikey") or "").encode()
    if not hmac.compare_digest(given, expected):
        raise CallbackVerificationFailed(
            "Orange Senegal callback with a wrong apiKey", provider=NAME
        )
    mapped = client.sonatel_status(note.status)
    failure = None
    if mapped == "failed":
        failure = client.failure_of(note.status.upper(), None, note.status)
    amount = None
    if note.amount is not None:
        try:
            amount = Decimal(str(note.amount.value))
        except InvalidOperation:
            amount = None
    payment_id = None
    if note.reference:
        try:
            payment_id = str(uuid.UUID(note.reference))
        except ValueError:
            payment_id = None
    return PaymentUpdate(
        status=mapped,
        payment_id=payment_id,
        provider_reference=note.transactionId,
        provider_transaction_id=note.transactionId,
        failure=failure,
        amount=amount,
    )
