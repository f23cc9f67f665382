"""Orange Money WebPay: the payer approves on Orange's payment page [O1-O4].

`prepare` creates the web payment (no money moves until the payer approves on Orange's
page), which the host stores before `initiate` hands back its redirect URL; `status` asks
`transactionstatus` with the stored pay_token; `update` reads WebPay's notification, found
by the digest of its `notif_token`.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from mmo_core import phones
from mmo_core.context import ProviderContext
from mmo_core.errors import InvalidRequest, NotSupported
from mmo_core.types import (
    InboundCallback,
    InitiateResult,
    NextAction,
    Payment,
    PaymentUpdate,
    StatusReport,
)

from mmo_orange import client, fields
from mmo_orange.client import NAME, raise_for
from mmo_orange.wire import Notification, TransactionStatus, WebPayment, WebPaymentCreated

URL_LIMIT = 120  # WebPay: return_url, cancel_url and notif_url [O1]
SIMULATOR_PAYER_HEADER = "X-Mmo-Simulator-Payer"


def validate(context: ProviderContext, payment: Payment) -> None:
    """WebPay only collects, and takes URLs of at most `URL_LIMIT` characters [O1]; the
    payer message becomes `reference` (30 characters). The order id and the reference are
    derived (`fields`), never refused."""
    settings = client.settings_of(context)
    if payment.type != "collection":
        raise NotSupported(
            f"Orange WebPay only collects; no {payment.type} in {payment.country}",
            provider=NAME,
        )
    fields.check_payer_message(payment, "webpay")
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


def simulated(context: ProviderContext) -> bool:
    """Talking to a sandbox: ours (mounted or `mmo simulate orange`) or Orange's own, which
    ignores the extra header."""
    return context.environment == "sandbox"


def path(cc: str, endpoint: str) -> str:
    return f"/orange-money-webpay/{cc}/v1/{endpoint}"


async def prepare(context: ProviderContext, payment: Payment) -> InitiateResult | None:
    """`webpayment`: Orange's pay_token, notif_token and page for the payment, kept by the
    host before `initiate`; None when the payment already holds them (a queued send)."""
    if payment.provider_data.get("pay_token"):
        return None
    settings = client.settings_of(context)
    # empty: Orange's sandbox offer ("dev") in the sandbox, the payment's country in production
    cc = (
        settings.webpay_country or ("dev" if context.environment == "sandbox" else payment.country)
    ).lower()
    currency = "OUV" if cc == "dev" else payment.currency
    body = WebPayment(
        merchant_key=settings.merchant_key,
        currency=currency,
        order_id=fields.webpay_order_id(payment),
        amount=int(payment.amount),
        return_url=settings.return_url,
        cancel_url=settings.cancel_url,
        notif_url=context.callback_url("callback"),
        lang=settings.webpay_lang,
        reference=fields.webpay_reference(payment),
    )
    headers = {"Content-Type": "application/json"}
    if simulated(context):
        # the payer's number never reaches WebPay (it is typed on Orange's page); our own
        # simulator's auto-pay mode needs its last four digits to play the test numbers
        headers[SIMULATOR_PAYER_HEADER] = phones.last_digits(payment.msisdn)
    response = await client.send(
        context,
        "webpay",
        "POST",
        path(cc, "webpayment"),
        "prepare",
        moves_money=False,
        headers=headers,
        content=msgspec.json.encode(body),
    )
    raise_for(response, "prepare")
    created = client.decode(
        response, WebPaymentCreated, "Orange WebPay: webpayment", moves_money=False
    )
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
            "payment_url": created.payment_url,
            # the pay_token's validity runs from here (`status`)
            "prepared_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )


async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    """The web payment `prepare` created (made now when it was not), handed back with its
    redirect URL: the payer approves on Orange's page, so no call moves money here."""
    data = payment.provider_data
    if not data.get("pay_token"):  # called without `prepare` (the host always prepares)
        prepared = await prepare(context, payment)
        data = prepared.provider_data if prepared else data
    return InitiateResult(
        provider_reference=payment.provider_reference
        or client.notif_reference(str(data["notif_token"])),
        provider_data=dict(data),
        next_action=NextAction("redirect", str(data["payment_url"])),
    )


async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    data = payment.provider_data
    if not data.get("pay_token") or not data.get("order_id"):
        # WebPay is asked by pay_token only, which `prepare` stores before the payer can
        # be sent to Orange's page: a payment without one cannot be asked about
        raise NotSupported(
            "This payment has no Orange WebPay pay_token: WebPay cannot be asked about it",
            code="cannot_ask",
            provider=NAME,
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
        path(str(data.get("cc") or "dev"), "transactionstatus"),
        "status",
        moves_money=False,
        json=query,
    )
    raise_for(response, "status")
    answer = client.decode(
        response, TransactionStatus, "Orange WebPay: transactionstatus", moves_money=False
    )
    reported = answer.status
    if reported.upper() == "INITIATED" and _past_validity(context, payment):
        # never confirmed, and the pay_token can no longer be: Orange will not end it
        reported = "EXPIRED"
    mapped = client.webpay_status(reported)
    failure = None
    if mapped in ("failed", "expired"):
        failure = client.failure_of(reported, None, reported)
    return StatusReport(status=mapped, provider_transaction_id=answer.txnid, failure=failure)


VALIDITY_MARGIN = 60.0  # seconds past the pay_token's validity before INITIATED is final


def _past_validity(context: ProviderContext, payment: Payment) -> bool:
    """WebPay leaves a payment INITIATED for good when the payer never confirms (or goes
    back to the merchant's site); a confirmation after the pay_token's validity is refused
    (EXPIRED). So INITIATED well past the validity means it was never paid and cannot be."""
    since = payment.provider_data.get("prepared_at")
    try:
        start = dt.datetime.fromisoformat(since) if isinstance(since, str) else payment.created_at
    except ValueError:
        start = payment.created_at
    if start is None:
        return False
    age = (dt.datetime.now(dt.UTC) - start).total_seconds()
    return age > client.settings_of(context).webpay_validity + VALIDITY_MARGIN


def update(callback: InboundCallback) -> PaymentUpdate:
    note: Notification = client.read_callback(callback, Notification)
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
