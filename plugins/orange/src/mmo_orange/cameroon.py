"""Orange Cameroon `omcoreapis`: merchant payment (`mp`) and cash-in by USSD push [O6, O7].

`initiate` is two calls (`init` gives a payToken, `pay` sends the prompt); `status` reads
`paymentstatus/{payToken}`; `update` reads the notification posted to our `status` URL;
`resend_prompt` is `mp/push/{payToken}`.
"""

from __future__ import annotations

import msgspec
from mmo_core import phones
from mmo_core.context import ProviderContext
from mmo_core.errors import InvalidRequest, NotSupported, OperatorDeclined
from mmo_core.types import InboundCallback, InitiateResult, Payment, PaymentUpdate, StatusReport

from mmo_orange import client, fields
from mmo_orange.client import NAME, raise_for
from mmo_orange.wire import MpEnvelope, MpNotification, MpPay


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


async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = client.settings_of(context)
    kind = "mp" if payment.type == "collection" else "cashin"
    response = await client.send(
        context,
        "cameroon",
        "POST",
        path(context, kind, "init"),
        "initiate",
        moves_money=True,
    )
    raise_for(response, "initiate")
    init = client.decode(response, MpEnvelope, "Orange Cameroon: init", moves_money=True)
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
        orderId=fields.cameroon_order_id(payment),
        description=fields.cameroon_description(payment),
        payToken=pay_token,
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
        provider_reference=pay_token,
        provider_transaction_id=data.txnid if data else None,
        provider_data={
            "family": "cameroon",
            "kind": kind,
            "pay_token": pay_token,
            "order_id": body.orderId,
        },
    )


async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    data = payment.provider_data
    pay_token = data.get("pay_token") or payment.provider_reference
    if not pay_token:
        raise InvalidRequest("This payment has no Orange payToken", code="not_found", provider=NAME)
    kind = str(data.get("kind") or "mp")
    response = await client.send(
        context,
        "cameroon",
        "GET",
        path(context, kind, f"paymentstatus/{pay_token}"),
        "status",
        moves_money=False,
    )
    raise_for(response, "status")
    answer = client.decode(
        response, MpEnvelope, "Orange Cameroon: paymentstatus", moves_money=False
    )
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
