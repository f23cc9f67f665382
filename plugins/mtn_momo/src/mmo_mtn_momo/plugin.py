"""The hook implementations of MTN MoMo (MoMo Open API)."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import msgspec
from mmo_core import hookimpl, money, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    MmoError,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    UnknownToOperator,
)
from mmo_core.operator import request
from mmo_core.types import (
    BODY_ERRORS,
    AccountInfo,
    Balance,
    BalanceReport,
    CallbackOutcome,
    Failure,
    HealthReport,
    InboundCallback,
    InitiateResult,
    Market,
    Network,
    Payment,
    PaymentUpdate,
    ProviderDeclaration,
    Reversal,
    SetupReport,
    StatusReport,
    WebhookReply,
)

from mmo_mtn_momo import client, fields
from mmo_mtn_momo.client import DISPLAY, MODES, NAME, settings_of
from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.wire import (
    ENVIRONMENT_COUNTRY,
    ENVIRONMENT_CURRENCY,
    PRODUCTS,
    Active,
    ApiKey,
    BasicUserInfo,
    Party,
    Refund,
    RequestToPay,
    Transaction,
    Transfer,
    decode,
)
from mmo_mtn_momo.wire import Balance as MomoBalance

# Sandbox (X-Target-Environment "sandbox", EUR only): MTN's test numbers are Swedish
# (4673312345x) and Chilean (56733123453) numbers.
SANDBOX_MARKETS = (Market("SE", "EUR"), Market("CL", "EUR"))
COUNTRY_MARKETS = tuple(
    Market(ENVIRONMENT_COUNTRY[env], currency)
    for env, currency in ENVIRONMENT_CURRENCY.items()
    if env != "sandbox"
)
MARKETS = COUNTRY_MARKETS + SANDBOX_MARKETS

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name=DISPLAY,
    description=(
        "MTN Mobile Money through the MoMo Open API: collection (request to pay or to "
        "withdraw), disbursement (transfer or deposit) and remittance transfers, refunds of "
        "collections, balances and account-holder checks."
    ),
    countries=tuple(dict.fromkeys(m.country for m in MARKETS)),
    currencies=tuple(dict.fromkeys(m.currency for m in MARKETS)),
    markets=MARKETS,
    # MTN in each country of a target environment; the sandbox's Swedish and Chilean test
    # numbers are no MTN network, so MoMo is chosen for them only when a payment names it
    networks=tuple(Network(m.country, "mtn") for m in COUNTRY_MARKETS),
    operations=("collection", "disbursement", "remittance", "reversal", "balance", "lookup"),
    # one route per product, and one for refunds (disbursement `refund` of a collection)
    webhook_kinds=(*PRODUCTS, "refund"),
    webhook_path="mtn-momo",
    settings=MtnMomoSettings,
    # X-Reference-Id is MoMo's idempotency key: a request lost in transit may be resent
    resend_safe=True,
)


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(context: ProviderContext, payment: Payment) -> None:
    settings = settings_of(context)
    environment = client.target_environment(context, payment.country)
    wanted = ENVIRONMENT_CURRENCY.get(environment)
    if wanted is None:
        raise InvalidRequest(
            f"MTN MoMo target environment {environment!r} is not one of MTN's target "
            "environments (MMO_MTN_MOMO_TARGET_ENVIRONMENT, MMO_MTN_MOMO_COUNTRY_ENVIRONMENTS)",
            provider=NAME,
        )
    if payment.currency != wanted:
        raise InvalidRequest(
            f"{DISPLAY} ({environment}) takes {wanted} only",
            code="unsupported_currency",
            provider=NAME,
        )
    if payment.type not in MODES:  # pragma: no cover - the core has three types
        raise NotSupported(f"{DISPLAY} does not do {payment.type}", provider=NAME)
    mode = client.mode_of(settings, payment)
    if mode not in MODES[payment.type]:
        raise InvalidRequest(
            f"{DISPLAY} makes a {payment.type} by {' or '.join(MODES[payment.type])}, not {mode!r}",
            code="unsupported_mode",
            provider=NAME,
        )
    if settings.create_version not in client.VERSIONS:
        raise InvalidRequest(
            f"MMO_MTN_MOMO_CREATE_VERSION must be v1_0 or v2_0, not {settings.create_version!r}",
            provider=NAME,
        )
    # the reference and description are never refused (`fields` derives MoMo's fields from
    # them); the payer_message is the orchestrator's words for the payer: checked, not changed
    if payment.payer_message is not None:
        problem = fields.payer_message_problem(payment.payer_message)
        if problem is not None:
            raise InvalidRequest(
                f"payer_message: {problem}", code="invalid_payer_message", provider=NAME
            )


# -- payments -----------------------------------------------------------------------------------


def _body(payment: Payment) -> bytes:
    party = Party(party_id_type="MSISDN", party_id=client.msisdn(payment.msisdn))
    common = {
        "amount": client.amount_text(payment.amount),
        "currency": payment.currency,
        "external_id": fields.external_id(payment),
        **fields.texts(payment),
    }
    if payment.type == "collection":
        return msgspec.json.encode(RequestToPay(payer=party, **common))
    return msgspec.json.encode(Transfer(payee=party, **common))


def _accepted(payment: Payment, product: str, mode: str) -> InitiateResult:
    return InitiateResult(
        provider_reference=payment.id,
        provider_data={"product": product, "mode": mode, "accepted": True},
    )


async def _submit(
    context: ProviderContext,
    product: str,
    path: str,
    headers: dict[str, str],
    content: bytes,
    operation: str,
    environment: str | None = None,
) -> bool:
    """POST a create with its X-Reference-Id, resending it while its answer is lost.

    True when MoMo took it (202); False on a 409 for our own reference: MoMo already has
    it (an earlier attempt), which the caller confirms by a status GET.
    """
    settings = settings_of(context)
    budget = (context.http.timeout.read or settings.timeout) + 2.0
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            response = await client.send(
                context,
                product,
                "POST",
                path,
                operation,
                moves_money=True,
                headers=headers,
                content=content,
                environment=environment,
            )
            if response.status_code == 409:
                return False
            client.raise_for(response, operation)
            return True
        except MmoError as exc:
            attempt += 1
            if (
                not client.is_resendable(exc)
                or attempt > settings.resend_attempts
                or time.monotonic() - started > budget
            ):
                raise
            context.log.info(
                "%s %s: %s, sending again with the same X-Reference-Id",
                operation,
                headers["X-Reference-Id"],
                exc.code,
            )
            await asyncio.sleep(0.1 * attempt)


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    """requesttopay or requesttowithdraw (collection), transfer or deposit (disbursement),
    transfer (remittance).

    `X-Reference-Id` is our payment id, MoMo's idempotency key: a create whose answer was
    lost is sent again with the same id, and a 409 means MoMo already has it, which a
    status GET then confirms. Never a second payment.
    """
    settings = settings_of(context)
    product = payment.type
    mode = client.mode_of(settings, payment)
    headers = {
        "X-Reference-Id": payment.id,
        "X-Callback-Url": context.callback_url(product, payment.id),
    }
    path = client.create_path(settings, product, mode)
    environment = client.target_environment(context, payment.country)
    if await _submit(context, product, path, headers, _body(payment), "initiate", environment):
        return _accepted(payment, product, mode)
    # 409 on our own reference: MoMo already has this request (an earlier attempt)
    return await _already_received(context, payment, product, mode)


def _declined(failure: Failure) -> OperatorDeclined:
    return OperatorDeclined(
        failure.message,
        provider=NAME,
        provider_code=failure.provider_code or failure.code,
        provider_message=failure.provider_message or failure.message,
        failure_code=failure.code,
    )


async def _already_received(
    context: ProviderContext, payment: Payment, product: str, mode: str
) -> InitiateResult:
    """A 409 on our own reference: MoMo has the request. Confirm it by a status GET."""
    environment = client.target_environment(context, payment.country)
    tx = await client.get_transaction(context, product, mode, payment.id, environment)
    if tx is None:
        raise OutcomeUnknown(
            f"{DISPLAY}: reference already used but not readable",
            provider=NAME,
            provider_code="RESOURCE_ALREADY_EXIST",
        )
    state, failure = client.outcome(tx)
    if state in ("failed", "expired") and failure is not None:
        raise _declined(failure)
    result = _accepted(payment, product, mode)
    if state == "succeeded":
        return msgspec.structs.replace(
            result, status="succeeded", provider_transaction_id=tx.financial_transaction_id
        )
    return result


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    reference = payment.provider_reference or payment.id
    mode = client.mode_of(settings_of(context), payment)
    environment = client.target_environment(context, payment.country)
    tx = await client.get_transaction(context, payment.type, mode, reference, environment)
    if tx is None:
        if payment.provider_data.get("accepted"):
            # MoMo answered 202: a 404 now is a late read, never a failure
            return StatusReport(status="pending", provider_reference=reference)
        # never acknowledged and unknown to MoMo: it never arrived (safe to send again)
        raise UnknownToOperator(
            f"{DISPLAY} does not know this payment",
            provider=NAME,
            provider_code="RESOURCE_NOT_FOUND",
            provider_message="Requested resource was not found.",
        )
    state, failure = client.outcome(tx)
    if state == "succeeded" and _may_be_refunded(context, payment):
        done = []
        for refund_id in _refund_ids(payment):
            refund = await client.get_transaction(
                context, "disbursement", "refund", refund_id, environment
            )
            if refund is not None and client.outcome(refund)[0] == "succeeded":
                done.append((refund_id, refund))
        if done:
            refund_id, last = done[-1]
            total = sum((Decimal(r.amount) for _, r in done if r.amount), Decimal(0))
            data = {**_refund_data(last, refund_id), "refund_total": client.amount_text(total)}
            # `reversed` is the whole payment: partial refunds leave it succeeded
            return StatusReport(
                status="reversed" if total >= payment.amount else "succeeded",
                provider_reference=reference,
                provider_transaction_id=tx.financial_transaction_id,
                amount=Decimal(tx.amount) if tx.amount else None,
                provider_data=data,
            )
    return StatusReport(
        status=state,
        provider_reference=reference,
        provider_transaction_id=tx.financial_transaction_id,
        failure=failure,
        amount=Decimal(tx.amount) if tx.amount else None,
    )


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    """MoMo's callback (PUT or POST): the status body, no reference id, no signature.

    Our payment id comes from the callback URL (`ref`), vouched for by its token; the host
    confirms any final status with `status` before applying it (`authenticated=False`).
    """
    payment_id = context.verify_callback(callback)
    if callback.kind not in DECLARATION.webhook_kinds:
        raise CallbackVerificationFailed("Unknown MTN MoMo callback kind", provider=NAME)
    try:
        tx = decode(callback.body, Transaction)
    except BODY_ERRORS as exc:
        raise InvalidRequest(
            f"Malformed MTN MoMo callback body: {exc}", code="malformed_callback", provider=NAME
        ) from None
    if payment_id is None:
        return CallbackOutcome(reply=WebhookReply())
    state, failure = client.outcome(tx)
    amount = _callback_amount(tx)
    if callback.kind == "refund":
        return _refund_callback(context, payment_id, tx, state, failure)
    party = tx.party
    msisdn = None
    if party is not None and party.party_id_type.upper() == "MSISDN":
        try:
            msisdn = phones.to_e164(party.party_id, strict=False)
        except InvalidRequest:
            msisdn = None
    update = PaymentUpdate(
        status=state,
        payment_id=payment_id,
        provider_reference=payment_id,
        provider_transaction_id=tx.financial_transaction_id,
        failure=failure,
        amount=amount,
        msisdn=msisdn,
    )
    return CallbackOutcome(reply=WebhookReply(), update=update, authenticated=False)


def _callback_amount(tx: Transaction) -> Decimal | None:
    """The callback's amount, checked against its currency: one that is not money (text,
    negative, zero, more decimals than the currency has, no currency) is InvalidRequest."""
    if not tx.amount:
        return None
    if not tx.currency:
        raise InvalidRequest(
            "MTN MoMo callback with an amount but no currency",
            code="malformed_callback",
            provider=NAME,
        )
    return money.reported_amount(tx.amount, tx.currency, provider=NAME)


def _refund_callback(
    context: ProviderContext,
    payment_id: str,
    tx: Transaction,
    state: str,
    failure: Failure | None,
) -> CallbackOutcome:
    """A refund's callback: a SUCCESSFUL refund makes the collection `reversed` (confirmed
    by `status`, which reads the refund); a pending or failed one changes nothing."""
    if state != "succeeded":
        context.log.info(
            "refund of payment %s is %s (%s)", payment_id, state, failure.code if failure else "-"
        )
        return CallbackOutcome(reply=WebhookReply())
    # the callback names no refund: keep what it says, not which refund it was
    data = {k: v for k, v in _refund_data(tx, "").items() if k != "refund_reference"}
    update = PaymentUpdate(
        status="reversed",
        payment_id=payment_id,
        provider_reference=payment_id,
        provider_data=data,
    )
    return CallbackOutcome(reply=WebhookReply(), update=update, authenticated=False)


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    """A new collection token from MoMo, bypassing the cache (the core's probe)."""
    environment = settings_of(context).target_environment
    return await client.operator(context, "collection").probe(
        f"collection token ok ({environment})"
    )


# -- optional operations ------------------------------------------------------------------------


def _configured(context: ProviderContext) -> tuple[str, ...]:
    settings = settings_of(context)
    return tuple(p for p in PRODUCTS if all(settings.credentials(p)))


def _may_be_refunded(context: ProviderContext, payment: Payment) -> bool:
    """Whether `status` should look for a refund: a succeeded collection (or one the host
    reversed) and disbursement credentials to read refunds with."""
    return (
        payment.type == "collection"
        and (payment.status in ("succeeded", "reversed") or bool(payment.reversals))
        and all(settings_of(context).credentials("disbursement"))
    )


def _refund_ids(payment: Payment) -> tuple[str, ...]:
    """The X-Reference-Ids of a payment's refunds, from the host's reversals (oldest
    first) whose status is not `failed`: each reversal id as `reverse` turned it into a
    refund id. Without any reversal, the id derived from the payment id alone (a refund
    made without a reversal id)."""
    if not payment.reversals:
        return (client.refund_reference(payment.id),)
    ids = (
        client.refund_reference(payment.id, reversal.id)
        for reversal in payment.reversals
        if reversal.status != "failed"
    )
    return tuple(dict.fromkeys(ids))


def _refund_data(refund: Transaction, refund_id: str) -> dict[str, str]:
    data = {"refund_reference": refund_id, "refund_status": refund.status}
    if refund.financial_transaction_id:
        data["refund_transaction_id"] = refund.financial_transaction_id
    if refund.amount:
        data["refund_amount"] = refund.amount
    return data


@hookimpl
async def reverse(
    context: ProviderContext,
    payment: Payment,
    amount: Decimal | None,
    reason: str,
    reversal_id: str | None,
) -> StatusReport:
    """Refund a succeeded collection: `POST /disbursement/{v1_0|v2_0}/refund`.

    The refund's X-Reference-Id is the host's `reversal_id` (unique per reversal, the same
    on its retries; `client.refund_reference`), so a payment may be refunded in several
    parts, and a refund whose answer was lost, or a retried reversal, is resent with the
    same id: MoMo's 409 is read as "already received", never a second refund. Without a
    reversal id the refund's id is derived from the payment id (one refund per payment).
    The refund is then read back (`GET /disbursement/v1_0/refund/{id}`): SUCCESSFUL is
    `reversed`, PENDING `pending`, FAILED an `OperatorDeclined` with MoMo's reason.
    `status` finds the refunds again from the host's `payment.reversals`, never from a
    list kept in `provider_data`.
    """
    if payment.type != "collection":
        raise NotSupported(f"{DISPLAY} refunds collections only", provider=NAME)
    value = payment.amount if amount is None else amount
    if value <= 0 or value > payment.amount:
        raise InvalidRequest(
            f"A refund is more than 0 and at most {payment.amount} {payment.currency}",
            code="invalid_amount",
            provider=NAME,
        )
    settings = settings_of(context)
    if not all(settings.credentials("disbursement")):
        raise ProviderAuthenticationError(
            f"{DISPLAY} refunds need the disbursement credentials", provider=NAME
        )
    refund_id = client.refund_reference(payment.id, reversal_id)
    note = fields.refund_text(payment, reason)
    body = Refund(
        amount=client.amount_text(value),
        currency=payment.currency,
        external_id=fields.external_id(payment),
        reference_id_to_refund=payment.provider_reference or payment.id,
        payer_message=note,
        payee_note=note,
    )
    headers = {
        "X-Reference-Id": refund_id,
        "X-Callback-Url": context.callback_url("refund", payment.id),
    }
    path = client.create_path(settings, "disbursement", "refund")
    environment = client.target_environment(context, payment.country)
    encoded = msgspec.json.encode(body)
    await _submit(context, "disbursement", path, headers, encoded, "refund", environment)
    # 202 (taken) or 409 (an earlier attempt was): read the refund back
    refund = await client.get_transaction(context, "disbursement", "refund", refund_id, environment)
    report = StatusReport(
        status="pending",
        provider_reference=payment.provider_reference or payment.id,
        provider_transaction_id=payment.provider_transaction_id,
        amount=value,
        provider_data={"refund_reference": refund_id},
    )
    if refund is None:  # taken but not readable yet: a late read, never a failure
        return report
    if refund.amount is not None and Decimal(refund.amount) != value:
        raise InvalidRequest(
            f"This refund was already made for {refund.amount} {payment.currency}",
            code="duplicate",
            provider=NAME,
            provider_code="RESOURCE_ALREADY_EXIST",
        )
    state, failure = client.outcome(refund)
    if state in ("failed", "expired"):
        raise _declined(failure or client.failure_for(refund.status, "The refund failed"))
    return msgspec.structs.replace(
        report,
        status="reversed" if state == "succeeded" else "pending",
        provider_data={**report.provider_data, **_refund_data(refund, refund_id)},
    )


@hookimpl
async def reversal_status(
    context: ProviderContext, payment: Payment, reversal: Reversal
) -> StatusReport:
    """A refund that `reverse` left pending (or whose answer was lost), read by its
    X-Reference-Id: `GET /disbursement/v1_0/refund/{id}`; a 404 means MoMo never got it."""
    refund_id = client.refund_reference(payment.id, reversal.id)
    environment = client.target_environment(context, payment.country)
    refund = await client.get_transaction(context, "disbursement", "refund", refund_id, environment)
    if refund is None:
        raise UnknownToOperator(
            f"{DISPLAY} does not know this refund",
            provider=NAME,
            provider_code="RESOURCE_NOT_FOUND",
            provider_message="Requested resource was not found.",
        )
    state, failure = client.outcome(refund)
    return StatusReport(
        status="reversed" if state == "succeeded" else state,
        provider_reference=payment.provider_reference or payment.id,
        provider_transaction_id=refund.financial_transaction_id or None,
        failure=failure,
        provider_data=_refund_data(refund, refund_id),
    )


@hookimpl
async def balance(context: ProviderContext) -> BalanceReport:
    """`GET /{product}/v1_0/account/balance` for every product with credentials."""
    balances = []
    for product in _configured(context):
        response = await client.send(
            context,
            product,
            "GET",
            f"/{product}/v1_0/account/balance",
            "balance",
            moves_money=False,
        )
        client.raise_for(response, "balance")
        body = client.read(response, MomoBalance, "balance")
        balances.append(
            Balance(
                account=product, currency=body.currency, available=Decimal(body.available_balance)
            )
        )
    return BalanceReport(balances=tuple(balances))


@hookimpl
async def lookup_account(context: ProviderContext, msisdn: str) -> AccountInfo:
    """Account-holder active check, then basic user info (name) when active."""
    digits = client.msisdn(msisdn)
    base = f"/collection/v1_0/accountholder/msisdn/{digits}"
    response = await client.send(
        context, "collection", "GET", f"{base}/active", "lookup", moves_money=False
    )
    if response.status_code == 404:  # the older docs answer 404 for an unknown holder
        return AccountInfo(msisdn=msisdn, active=False)
    client.raise_for(response, "lookup")
    active = client.read(response, Active, "lookup").result
    if not active:
        return AccountInfo(msisdn=msisdn, active=False)
    response = await client.send(
        context, "collection", "GET", f"{base}/basicuserinfo", "lookup", moves_money=False
    )
    if response.status_code >= 400:
        return AccountInfo(msisdn=msisdn, active=True)
    info = client.read(response, BasicUserInfo, "lookup")
    name = info.name or " ".join(p for p in (info.given_name, info.family_name) if p) or None
    details = {k: v for k, v in (("locale", info.locale), ("status", info.status)) if v is not None}
    return AccountInfo(msisdn=msisdn, active=True, name=name, details=details)


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    """Sandbox provisioning: an API user (with providerCallbackHost) and its API key, per
    product whose subscription key is set. Production users come from the Partner Portal."""
    settings = settings_of(context)
    if context.environment == "production" or settings.target_environment != "sandbox":
        return SetupReport(
            lines=(
                "MTN MoMo: API users and keys for production are created in MTN's Partner "
                "Portal; set MMO_MTN_MOMO_<PRODUCT>_API_USER / _API_KEY from there.",
            )
        )
    host = settings.callback_host or urlsplit(context.public_url).hostname or "localhost"
    lines = [f"MTN MoMo sandbox: providerCallbackHost {host}"]
    values: dict[str, str] = {}
    for product in PRODUCTS:
        key = getattr(settings, f"{product}_subscription_key")
        if not key:
            continue
        user = str(uuid.uuid4())
        headers = {"Ocp-Apim-Subscription-Key": key}
        created = await request(
            context,
            "POST",
            "/v1_0/apiuser",
            "setup",
            moves_money=False,
            headers={**headers, "X-Reference-Id": user, "Content-Type": "application/json"},
            content=msgspec.json.encode({"providerCallbackHost": host}),
        )
        client.raise_for(created, f"{product} API user")
        issued = await request(
            context,
            "POST",
            f"/v1_0/apiuser/{user}/apikey",
            "setup",
            moves_money=False,
            headers={**headers, "Content-Length": "0"},
        )
        client.raise_for(issued, f"{product} API key")
        api_key = client.read(issued, ApiKey, f"{product} API key").api_key
        prefix = f"MMO_MTN_MOMO_{product.upper()}"
        values[f"{prefix}_API_USER"] = user
        values[f"{prefix}_API_KEY"] = api_key
        lines.append(f"{product}: API user {user} created, API key issued")
    return SetupReport(lines=tuple(lines), settings=values)


@hookimpl
def simulator_app(settings: MtnMomoSettings, accounts: dict[str, MtnMomoSettings] | None = None):
    """One simulator for every account (`accounts`, `{"default": settings}` when not given):
    each account's credentials get tokens of that account, and its resources are its own."""
    from mmo_mtn_momo.simulator import create_simulator

    return create_simulator(settings, accounts)
