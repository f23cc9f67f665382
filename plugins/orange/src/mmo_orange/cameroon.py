"""Orange Cameroon `omcoreapis`: merchant payment (`mp`) and cash-in by USSD push [O6, O7].

`prepare` is `init` (a payToken; no money moves), which the host stores before it calls
`initiate`, the `pay` with that payToken (the USSD prompt): after a crash between the two,
`status` still reads `paymentstatus/{payToken}`. `update` reads the notification posted to
our `status` URL; `resend_prompt` is `mp/push/{payToken}`.
"""

from __future__ import annotations

import httpx
import msgspec
from mmo_core import phones
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    UnknownToOperator,
)
from mmo_core.types import InboundCallback, InitiateResult, Payment, PaymentUpdate, StatusReport

from mmo_orange import client, fields
from mmo_orange.client import NAME, raise_for
from mmo_orange.wire import MpEnvelope, MpNotification, MpPay, as_dict


def validate(payment: Payment) -> None:
    """Orange Cameroon numbers only; the payer message becomes `description` (printable
    ASCII, 100 characters). orderId and description are derived (`fields`), never refused."""
    fields.check_payer_message(payment, "cameroon")
    if not client.CAMEROON_MSISDN.match(phones.national_number(payment.msisdn)):
        raise InvalidRequest(
            "Orange Cameroon takes Orange numbers of 9 digits (69xxxxxxx, 655-659xxxxxx)",
            code="invalid_msisdn",
            provider=NAME,
        )


def path(context: ProviderContext, kind: str, endpoint: str) -> str:
    return f"/omcoreapis/{client.settings_of(context).cameroon_api_version}/{kind}/{endpoint}"


def _kind(payment: Payment) -> str:
    return "mp" if payment.type == "collection" else "cashin"


async def prepare(context: ProviderContext, payment: Payment) -> InitiateResult | None:
    """`init`: a fresh payToken for the payment (no money moves), for the host to store
    before `pay`; None when the payment already holds one (a queued send: the same
    payToken is paid, and Orange refuses a second pay of it)."""
    if payment.provider_data.get("pay_token"):
        return None
    kind = _kind(payment)
    response = await client.send(
        context,
        "cameroon",
        "POST",
        path(context, kind, "init"),
        "prepare",
        moves_money=False,
    )
    raise_for(response, "prepare")
    init = client.decode(response, MpEnvelope, "Orange Cameroon: init", moves_money=False)
    if init.data is None or not init.data.payToken:
        raise client.ProviderUnavailable(
            "Orange Cameroon: init gave no payToken", provider=NAME, provider_message=init.message
        )
    pay_token = init.data.payToken
    return InitiateResult(
        provider_reference=pay_token,
        provider_data={"family": "cameroon", "kind": kind, "pay_token": pay_token},
    )


async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = client.settings_of(context)
    kind = _kind(payment)
    pay_token = payment.provider_data.get("pay_token")
    if not pay_token:  # called without `prepare` (the host always prepares first)
        prepared = await prepare(context, payment)
        pay_token = prepared.provider_data["pay_token"] if prepared else None
    body = MpPay(
        notifUrl=context.callback_url("status", payment.id),
        channelUserMsisdn=settings.cameroon_channel_msisdn,
        amount=str(int(payment.amount)),
        subscriberMsisdn=phones.national_number(payment.msisdn),
        pin=settings.cameroon_pin,
        orderId=fields.cameroon_order_id(payment),
        description=fields.cameroon_description(payment),
        payToken=str(pay_token),
    )
    response = await client.send(
        context,
        "cameroon",
        "POST",
        path(context, kind, "pay"),
        "initiate",
        moves_money=True,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    if response.status_code == 400:
        # a payToken is paid once: a refused pay of a payToken Orange shows paid means an
        # earlier pay of this payment got through (its answer was lost), never a refusal
        await _not_paid_before(context, payment, body.payToken, kind)
    raise_for(response, "initiate")
    answer = client.decode(response, MpEnvelope, "Orange Cameroon: pay", moves_money=True)
    data = answer.data
    mapped = client.cameroon_status(data.status if data else None)
    if mapped in ("failed", "expired"):
        code, text = client.split_coded(answer.message)
        refused = (data.inittxnstatus if data else None) or code or mapped
        raise OperatorDeclined(
            text or "Declined by Orange Money",
            provider=NAME,
            provider_code=refused,
            provider_message=(data.inittxnmessage if data else None) or text,
            failure_code=client.declined_code(
                refused.upper(), (data.inittxnmessage if data else None) or text
            ),
        )
    return InitiateResult(
        status="succeeded" if mapped == "succeeded" else "pending",
        provider_reference=body.payToken,
        provider_transaction_id=data.txnid if data else None,
        provider_data={
            "family": "cameroon",
            "kind": kind,
            "pay_token": body.payToken,
            "order_id": body.orderId,
        },
    )


async def _not_paid_before(
    context: ProviderContext, payment: Payment, pay_token: str, kind: str
) -> None:
    """After a refused `pay`: raise OutcomeUnknown when Orange holds a payment for this
    payToken (an earlier pay got through: the host finds it out by `status`)."""
    try:
        report = await status(
            context,
            msgspec.structs.replace(payment, provider_data={**payment.provider_data, "kind": kind}),
            pay_token=pay_token,
        )
    except UnknownToOperator:
        return  # INITIATED or unknown: this pay was refused for itself
    raise OutcomeUnknown(
        f"Orange Cameroon: this payToken was already paid ({report.status})",
        provider=NAME,
        provider_code="ALREADY_PAID",
    )


async def status(
    context: ProviderContext, payment: Payment, pay_token: str | None = None
) -> StatusReport:
    data = payment.provider_data
    pay_token = pay_token or data.get("pay_token") or payment.provider_reference
    if not pay_token:
        # `prepare` stores the payToken before any pay: only a payment sent before that
        # (or never prepared) has none, and Orange is asked by payToken only
        raise NotSupported(
            "This payment has no Orange payToken: Orange Cameroon cannot be asked about it",
            code="cannot_ask",
            provider=NAME,
        )
    kind = str(data.get("kind") or "mp")
    response = await client.send(
        context,
        "cameroon",
        "GET",
        path(context, kind, f"paymentstatus/{pay_token}"),
        "status",
        moves_money=False,
    )
    if response.status_code == 404 and _own_answer(response):
        said, text = client.error_fields(response)
        raise UnknownToOperator(
            f"Orange Cameroon has no transaction for this payToken: {text}",
            provider=NAME,
            provider_code=said,
            provider_message=text,
        )
    raise_for(response, "status")
    answer = client.decode(
        response, MpEnvelope, "Orange Cameroon: paymentstatus", moves_money=False
    )
    found = answer.data
    raw = (found.status if found else None) or "PENDING"
    if raw.upper() == "INITIATED":
        # Orange's word for a payToken whose pay it never received
        raise UnknownToOperator(
            "Orange Cameroon never received a payment for this payToken (INITIATED)",
            provider=NAME,
            provider_code="INITIATED",
            provider_message=answer.message,
        )
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


def _own_answer(response: httpx.Response) -> bool:
    """An omcoreapis answer (`{"message", "data"}`), not the API gateway's fault or 404
    (a wrong base URL or version)."""
    body = as_dict(response.content)
    return body is not None and "message" in body and "fault" not in body and "code" not in body


def update(callback: InboundCallback, payment_id: str | None) -> PaymentUpdate:
    note: MpNotification = client.read_callback(callback, MpNotification)
    mapped = client.cameroon_status(note.status)
    failure = None
    if mapped in ("failed", "expired"):
        code, text = client.split_coded(note.message)
        failure = client.failure_of(code, text, note.status.upper())
    return PaymentUpdate(
        status=mapped, payment_id=payment_id, provider_reference=note.payToken, failure=failure
    )


async def resend_prompt(context: ProviderContext, payment: Payment) -> None:
    """`GET mp/push/{payToken}`: the payer's USSD prompt of a merchant payment, again."""
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
        path(context, "mp", f"push/{pay_token}"),
        "resend_prompt",
        moves_money=False,
    )
    raise_for(response, "resend_prompt")
