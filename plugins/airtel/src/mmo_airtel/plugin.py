"""The hook implementations of Airtel Money (Airtel Africa Open API)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
from mmo_core import failures, hookimpl, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    UnknownToOperator,
)
from mmo_core.money import exponent
from mmo_core.types import (
    AccountInfo,
    AmountLimit,
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
    SetupReport,
    StatusReport,
    WebhookReply,
)

from mmo_airtel import client, fields
from mmo_airtel.client import NAME, Answer
from mmo_airtel.codes import callback_failure, failure_for
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.wire import (
    MARKETS,
    TRANSACTION_STATUS,
    Callback,
    DisbursementRequest,
    DisbursementTransaction,
    Payee,
    PushRequest,
    PushTransaction,
    RefundRequest,
    RefundTransaction,
    Subscriber,
    TransactionList,
    TransactionListEnvelope,
    text,
)

WEBHOOK_KINDS = ("callback", "status")
CALLBACK_URL_HEADER = "X-Callback-Url"  # simulator only: Airtel takes the portal's URL
_CURRENCIES = tuple(dict.fromkeys(currency for _, currency in MARKETS))

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name="Airtel Money",
    description="Airtel Money in 14 African countries through the Airtel Africa Open API.",
    countries=tuple(dict.fromkeys(country for country, _ in MARKETS)),
    currencies=_CURRENCIES,
    markets=tuple(Market(country, currency) for country, currency in MARKETS),
    networks=tuple(Network(country, "airtel") for country in dict.fromkeys(c for c, _ in MARKETS)),
    operations=("collection", "disbursement", "reversal", "balance", "lookup"),
    # Airtel's own limits depend on the wallet's grade and are answered with
    # DP00800001003 / DP00900001003; we only refuse what can never pass.
    limits=tuple(
        AmountLimit(currency=currency, minimum=Decimal(1), whole_units_only=exponent(currency) == 0)
        for currency in _CURRENCIES
    ),
    webhook_kinds=WEBHOOK_KINDS,
    webhook_path="airtel-money",
    settings=AirtelSettings,
    # our payment id is the transaction id, and Airtel refuses a reused one (ESB000041):
    # a request lost in transit may be sent again
    resend_safe=True,
    breaker_per_country=True,
)


def _settings(context: ProviderContext) -> AirtelSettings:
    return context.settings  # type: ignore[return-value]


def _declined(answer: Answer, operation: str) -> OperatorDeclined:
    failure = answer.failure()
    return OperatorDeclined(
        f"Airtel refused the {operation}: {failure.message}",
        provider=NAME,
        provider_code=failure.provider_code,
        provider_message=failure.provider_message,
        failure_code=failure.code,
    )


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(context: ProviderContext, payment: Payment) -> None:
    country = phones.region_of(payment.msisdn)
    if not DECLARATION.serves(country, payment.currency):
        raise InvalidRequest(
            f"Airtel Money does not take {payment.currency} for this number's country",
            code="invalid_currency",
            provider=NAME,
        )
    if payment.type == "remittance":
        raise NotSupported("Airtel Money remittances are not offered", provider=NAME)
    served = _settings(context).application_countries()
    if served and country not in served:
        raise InvalidRequest(
            f"This Airtel application serves {', '.join(served)} only, not {country}",
            code="invalid_country",
            provider=NAME,
        )
    client.national_msisdn(payment.msisdn, country)
    # the reference is never refused: `fields` derives Airtel's reference and transaction
    # id from it; a payer_message is the payer's own text, so it is checked, never cut
    if payment.payer_message is not None:
        problem = fields.payer_message_problem(payment.payer_message, payment.type)
        if problem:
            raise InvalidRequest(problem, code="invalid_payer_message", provider=NAME)


def _sandbox_headers(context: ProviderContext, kind: str, payment_id: str) -> dict[str, str]:
    if context.environment != "sandbox":
        return {}
    return {CALLBACK_URL_HEADER: context.callback_url(kind, payment_id)}


def _country(payment: Payment) -> str:
    return payment.country or phones.region_of(payment.msisdn)


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    country = _country(payment)
    msisdn = client.national_msisdn(payment.msisdn, country)
    transaction_id = fields.transaction_id(payment.id)
    reference = fields.reference_for(payment.type, payment.reference, payment.payer_message)
    if payment.type == "collection":
        body: Any = PushRequest(
            reference=reference,
            subscriber=Subscriber(msisdn=msisdn, country=country, currency=payment.currency),
            transaction=PushTransaction(
                amount=payment.amount,
                id=transaction_id,
                country=country,
                currency=payment.currency,
            ),
        )
        collection = _settings(context).collection_version
        path = f"/merchant/{collection}/payments/"
        kind, signed = "callback", collection == "v2"
    elif payment.type == "disbursement":
        settings = _settings(context)
        version = settings.disbursement_version
        v2 = version in ("v2", "v3")
        body = DisbursementRequest(
            payee=Payee(msisdn=msisdn, wallet_type="NORMAL" if v2 else None),
            reference=reference,
            pin=await client.encrypted_pin(context, country, payment.currency),
            transaction=DisbursementTransaction(
                amount=payment.amount,
                id=transaction_id,
                type=settings.disbursement_type if v2 else None,
            ),
        )
        # v3 is signed and has no trailing slash (Airtel Tchad doc v3.0)
        path = (
            "/standard/v3/disbursements"
            if version == "v3"
            else f"/standard/{version}/disbursements/"
        )
        kind, signed = "status", version == "v3"
    else:
        raise NotSupported("Airtel Money remittances are not offered", provider=NAME)
    answer = await client.call(
        context,
        "POST",
        path,
        payment.type,
        country=country,
        currency=payment.currency,
        body=body,
        headers=_sandbox_headers(context, kind, payment.id),
        signed=signed,
    )
    data = {"country": country, "currency": payment.currency}
    if answer.kind == "duplicate":
        # The transaction id was already received: the first request got through.
        report = await _enquire(context, payment, transaction_id)
        if report.status in ("failed", "expired"):
            failure = report.failure or answer.failure()
            raise OperatorDeclined(
                f"Airtel refused the {payment.type}: {failure.message}",
                provider=NAME,
                provider_code=failure.provider_code,
                provider_message=failure.provider_message,
                failure_code=failure.code,
            )
        return InitiateResult(
            status="succeeded" if report.status == "succeeded" else "pending",
            provider_reference=transaction_id,
            provider_transaction_id=report.provider_transaction_id,
            provider_data=data | report.provider_data,
        )
    if answer.kind in ("failed", "expired"):
        raise _declined(answer, payment.type)
    if answer.kind == "not_found":
        raise OutcomeUnknown(
            f"Airtel {payment.type}: {answer.message}",
            provider=NAME,
            provider_code=answer.code,
            provider_message=answer.message,
        )
    airtel_id = answer.field("airtel_money_id")
    if airtel_id:
        data["airtel_money_id"] = airtel_id
    # A collection's answer only says the USSD prompt was sent ("SUCCESS"): never paid.
    # A disbursement may be done at once (TS).
    done = payment.type == "disbursement" and answer.field("status") == "TS"
    return InitiateResult(
        status="succeeded" if done else "pending",
        provider_reference=transaction_id,
        provider_transaction_id=airtel_id,
        provider_data=data,
    )


async def _enquire(
    context: ProviderContext, payment: Payment, transaction_id: str | None = None
) -> StatusReport:
    country = payment.provider_data.get("country") or _country(payment)
    currency = payment.provider_data.get("currency") or payment.currency
    transaction_id = (
        transaction_id or payment.provider_reference or fields.transaction_id(payment.id)
    )
    params: dict[str, str] | None = None
    if payment.type == "disbursement":
        settings = _settings(context)
        path = f"/standard/{settings.disbursement_version}/disbursements/{transaction_id}"
        if settings.disbursement_version in ("v2", "v3"):
            params = {"transactionType": settings.disbursement_type}
    else:
        path = f"/standard/v1/payments/{transaction_id}"
    answer = await client.call(
        context, "GET", path, "status", country=country, currency=currency, params=params
    )
    return _report(answer, payment, transaction_id)


def _ended(status: str, failure: Failure) -> tuple[str, Failure]:
    """The final status of a refusal: `expired` when it means the payer's prompt timed out
    (DP00800001024, DP00800001029, DP00800001005, TE, a TF callback saying so), with
    `prompt_expired`; else `failed`."""
    if status == "expired" and failure.code != failures.PROMPT_EXPIRED:
        failure = failures.failure(
            failures.PROMPT_EXPIRED,
            provider_code=failure.provider_code,
            provider_message=failure.provider_message,
        )
    return failures.status_of(failure.code), failure


def _report(answer: Answer, payment: Payment, transaction_id: str) -> StatusReport:
    airtel_id = answer.field("airtel_money_id")
    data = {"airtel_money_id": airtel_id} if airtel_id else {}
    if answer.kind == "not_found":
        # Never received: for a payment whose initiation had no answer, say so, and the
        # host resends it (our id is the transaction id: Airtel refuses a second one).
        if payment.status in ("unknown", "new"):
            missing = answer.failure()
            raise UnknownToOperator(
                f"Airtel has no transaction {payment.id}",
                provider=NAME,
                provider_code=missing.provider_code,
                provider_message=missing.provider_message,
            )
        return StatusReport(status="pending")
    status = TRANSACTION_STATUS.get(answer.field("status") or "")
    if status is None:
        if answer.kind in ("failed", "expired"):
            status = answer.kind
        elif answer.kind == "success" and (answer.code or "").endswith("0001001"):
            status = "succeeded"
        else:
            status = "pending"  # TA, TIP, an unknown value (TI): still processing
    failure: Failure | None = None
    if status in ("failed", "expired"):
        status, failure = _ended(
            status, failure_for(answer.code or "UNKNOWN", answer.field("message") or answer.message)
        )
    return StatusReport(
        status=status,  # type: ignore[arg-type]
        provider_reference=payment.provider_reference or transaction_id,
        provider_transaction_id=airtel_id,
        failure=failure,
        provider_data=data,
    )


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    return await _enquire(context, payment)


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    settings = _settings(context)
    payment_id = context.verify_callback(callback)
    raw: Any = callback.json()
    if not isinstance(raw, dict):
        raise InvalidRequest(
            "An Airtel callback is a JSON object", code="malformed_callback", provider=NAME
        )
    if settings.callback_auth:
        given = raw.get("hash") or callback.headers.get("hash") or ""
        if not isinstance(given, str) or not given:
            raise CallbackVerificationFailed("The Airtel callback has no hash", provider=NAME)
        if not client.verify_hash(settings.callback_private_key, callback.body, given):
            raise CallbackVerificationFailed("Bad Airtel callback hash", provider=NAME)
    try:
        body = msgspec.convert(raw, Callback)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(
            f"Malformed Airtel callback: {exc}", code="malformed_callback", provider=NAME
        ) from None
    transaction = body.transaction
    transaction_id = str(transaction.id)
    if payment_id is not None and transaction_id != fields.transaction_id(payment_id):
        raise CallbackVerificationFailed("The callback is for another payment", provider=NAME)
    status_code = str(transaction.status_code)
    airtel_id = text(transaction.airtel_money_id)
    status = TRANSACTION_STATUS.get(status_code, "pending")
    failure = None
    if status in ("failed", "expired"):
        # Airtel's callback has no response code: its status and text are kept.
        status, failure = _ended(status, callback_failure(status_code, text(transaction.message)))
    update = PaymentUpdate(
        status=status,  # type: ignore[arg-type]
        payment_id=payment_id or transaction_id,
        provider_reference=transaction_id,
        provider_transaction_id=airtel_id,
        failure=failure,
        provider_data={"airtel_money_id": airtel_id} if airtel_id else {},
    )
    return CallbackOutcome(
        reply=WebhookReply(status_code=200, body={"status": "OK"}),
        update=update,
        authenticated=settings.callback_auth,
    )


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    """A new token from Airtel, bypassing the cache (the core's probe)."""
    return await client.operator(context, _settings(context).country).probe("token ok")


@hookimpl
async def reverse(
    context: ProviderContext, payment: Payment, amount: Decimal | None, reason: str
) -> StatusReport:
    if payment.type != "collection":
        raise NotSupported("Airtel refunds collections only", provider=NAME)
    if amount is not None and amount != payment.amount:
        raise NotSupported("Airtel makes full refunds only", provider=NAME)
    airtel_id = payment.provider_transaction_id or payment.provider_data.get("airtel_money_id")
    if not airtel_id:
        report = await _enquire(context, payment)
        airtel_id = report.provider_transaction_id
        if report.status != "succeeded" or not airtel_id:
            raise InvalidRequest("Only a succeeded Airtel payment can be refunded", provider=NAME)
    version = _settings(context).collection_version
    answer = await client.call(
        context,
        "POST",
        f"/standard/{version}/payments/refund",
        "refund",
        country=payment.provider_data.get("country") or _country(payment),
        currency=payment.currency,
        body=RefundRequest(transaction=RefundTransaction(airtel_money_id=airtel_id)),
        signed=version == "v2",
    )
    if answer.kind in ("failed", "expired", "not_found", "duplicate"):
        raise _declined(answer, "refund")
    state = answer.field("status") or ""
    return StatusReport(
        status="reversed" if state in ("SUCCESS", "TS") else "pending",
        provider_reference=payment.provider_reference,
        provider_transaction_id=airtel_id,
    )


async def _wallet_balance(context: ProviderContext, wallet: str | None) -> Balance:
    """One `GET /standard/v1/users/balance`, or v2 with `?type=<wallet>`."""
    settings = _settings(context)
    answer = await client.call(
        context,
        "GET",
        "/standard/v2/users/balance" if wallet else "/standard/v1/users/balance",
        "balance",
        country=settings.country,
        currency=settings.currency,
        params={"type": wallet} if wallet else None,
    )
    if answer.kind != "success" or not isinstance(answer.data, dict):
        raise _declined(answer, "balance enquiry")
    try:
        available = Decimal(str(answer.data.get("balance", "0")))
    except ArithmeticError:
        raise OutcomeUnknown(
            "Airtel answered an unreadable balance", provider=NAME, provider_code=answer.code
        ) from None
    return Balance(
        account=f"{settings.country} {wallet or 'wallet'}",
        currency=str(answer.data.get("currency") or settings.currency),
        available=available,
    )


@hookimpl
async def balance(context: ProviderContext) -> BalanceReport:
    settings = _settings(context)
    if settings.balance_version == "v1":
        return BalanceReport(balances=(await _wallet_balance(context, None),))
    wallets = settings.wallet_types() or ("DISB",)
    return BalanceReport(
        balances=tuple([await _wallet_balance(context, wallet) for wallet in wallets])
    )


async def transaction_summary(
    context: ProviderContext,
    start: dt.datetime,
    end: dt.datetime,
    *,
    limit: int = 20,
    offset: int = 0,
) -> TransactionList:
    """One page of `GET /merchant/v1/transactions?from=&to=&limit=&offset=` (epoch ms).

    Not a hook: the core has no hook for an operator statement yet (see README).
    """
    settings = _settings(context)
    if limit < 1 or offset < 0 or end < start:
        raise InvalidRequest(
            "A transaction summary needs start <= end, limit >= 1 and offset >= 0",
            provider=NAME,
        )
    answer = await client.call(
        context,
        "GET",
        "/merchant/v1/transactions",
        "transaction summary",
        country=settings.country,
        currency=settings.currency,
        params={
            "from": str(int(start.timestamp() * 1000)),
            "to": str(int(end.timestamp() * 1000)),
            "limit": str(limit),
            "offset": str(offset),
        },
    )
    if answer.kind == "not_found":
        return TransactionList()
    if answer.kind != "success":
        raise _declined(answer, "transaction summary")
    try:
        page = msgspec.json.decode(answer.raw, type=TransactionListEnvelope).data
    except msgspec.MsgspecError as exc:
        raise OutcomeUnknown(
            f"Airtel answered an unreadable transaction summary: {exc}",
            provider=NAME,
            provider_code=answer.code,
        ) from None
    return page or TransactionList()


@hookimpl
async def lookup_account(context: ProviderContext, msisdn: str) -> AccountInfo:
    settings = _settings(context)
    country = phones.region_of(msisdn)
    national = client.national_msisdn(msisdn, country)
    currency = (
        settings.currency
        if country == settings.country
        else next(c for k, c in MARKETS if k == country)
    )
    answer = await client.call(
        context,
        "GET",
        f"/standard/v1/users/{national}",
        "user enquiry",
        country=country,
        currency=currency,
    )
    if answer.kind == "not_found":
        return AccountInfo(msisdn=msisdn, active=False, details={"code": answer.code})
    if answer.kind != "success" or not isinstance(answer.data, dict):
        raise _declined(answer, "user enquiry")
    data = answer.data
    name = " ".join(str(data[k]) for k in ("first_name", "last_name") if data.get(k)) or None
    return AccountInfo(
        msisdn=msisdn,
        active=not data.get("is_barred", False),
        name=name,
        details={
            k: data[k] for k in ("grade", "is_barred", "is_pin_set", "reg_status") if k in data
        },
    )


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    """Airtel takes its callback URL from the portal: print the one to register there."""
    settings = _settings(context)
    lines = [
        "Airtel: set this Callback URL in your application on developers.airtel.africa:",
        context.callback_url("callback"),
    ]
    if settings.callback_auth:
        lines.append(
            "Callback authentication is on: copy the application's private key "
            "into MMO_AIRTEL_CALLBACK_PRIVATE_KEY."
        )
    if not settings.encryption_public_key:
        key = await client.encryption_key(context, settings.country, settings.currency)
        lines.append(
            f"Disbursement PIN key fetched from /v1/rsa/encryption-keys ({len(key)} chars)."
        )
    return SetupReport(lines=tuple(lines))


@hookimpl
def simulator_app(settings: AirtelSettings, accounts: dict[str, AirtelSettings] | None = None):
    """One simulator for every account (`accounts`; `settings` alone: account `default`)."""
    from mmo_airtel.simulator import create_simulator

    return create_simulator(settings, accounts)
