"""The hook implementations of Safaricom M-Pesa (Daraja).

Collection by STK push (M-Pesa Express) and STK query; disbursement by B2C v3 and
Transaction Status; reversal, account balance, and C2B URL registration (`setup`).
Daraja signs no callback: every URL handed to it carries the gateway's secret token, and
callbacks are `authenticated=False`, so the host confirms final states with `status`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import msgspec
from mmo_core import hookimpl, money, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    CallbackVerificationFailed,
    ConfigurationError,
    InvalidRequest,
    NoAnswerYet,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderUnavailable,
    UnknownToOperator,
)
from mmo_core.types import (
    BODY_ERRORS,
    AmountLimit,
    Balance,
    BalanceReport,
    CallbackOutcome,
    HealthReport,
    InboundCallback,
    InboundPayment,
    InitiateResult,
    Network,
    Payment,
    PaymentUpdate,
    ProviderDeclaration,
    Reversal,
    SetupReport,
    StatusReport,
    WebhookReply,
)

from mmo_mpesa import c2b, client, fields
from mmo_mpesa.client import NAME, decimal, result_status
from mmo_mpesa.fields import account_reference
from mmo_mpesa.settings import MpesaSettings
from mmo_mpesa.wire import (
    AccountBalanceRequest,
    AsyncAck,
    B2CRequest,
    C2BTransaction,
    RegisterUrlRequest,
    RegisterUrlResponse,
    Result,
    ResultEnvelope,
    ReversalRequest,
    StkCallbackEnvelope,
    StkPushRequest,
    StkPushResponse,
    StkQueryRequest,
    StkQueryResponse,
    TransactionStatusRequest,
)

STK_PUSH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY = "/mpesa/stkpushquery/v1/query"
B2C = "/mpesa/b2c/v3/paymentrequest"
TRANSACTION_STATUS = "/mpesa/transactionstatus/v1/query"
REVERSAL = "/mpesa/reversal/v1/request"
ACCOUNT_BALANCE = "/mpesa/accountbalance/v1/query"

KINDS = (
    "stk-callback",
    "c2b-confirmation",
    "c2b-validation",
    "timeout",
    "b2c-result",
    "status-result",
    "reversal-result",
    "balance-result",
)
B2C_COMMANDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
B2C_MINIMUM = Decimal(10)
# Words Daraja refuses in registered C2B URLs (any case).
C2B_SEGMENT = "daraja"
BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exe", "exec", "cmd", "sql", "query")

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name="M-Pesa (Safaricom Daraja)",
    description="Safaricom M-Pesa Kenya: STK push, B2C, reversal, balance and C2B.",
    countries=("KE",),
    currencies=("KES",),
    # M-Pesa wallets are Safaricom's: the host routes Safaricom Kenya numbers here
    networks=(Network("KE", "safaricom"),),
    operations=("collection", "disbursement", "reversal", "balance"),
    limits=(
        AmountLimit(
            currency="KES", minimum=Decimal(1), maximum=Decimal(250_000), whole_units_only=True
        ),
    ),
    webhook_kinds=KINDS,
    webhook_path="mpesa",
    # Daraja refuses C2B URLs containing "mpesa": `setup` registers these under the alias
    webhook_aliases=(C2B_SEGMENT,),
    settings=MpesaSettings,
)


def _settings(context: ProviderContext) -> MpesaSettings:
    return context.settings  # type: ignore[return-value]


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(context: ProviderContext, payment: Payment) -> None:
    if payment.currency != "KES":
        raise InvalidRequest("M-Pesa takes KES only", code="unsupported_currency", provider=NAME)
    client.msisdn(payment.msisdn)
    client.whole_shillings(payment.amount)
    # the reference and description are never refused: `fields` derives Daraja's limited
    # fields from them; a payer_message takes the payer-facing field as it is, so it must fit
    fields.check_payer_message(payment)
    if payment.type == "disbursement":
        if payment.amount < B2C_MINIMUM:
            raise InvalidRequest(
                "The minimum M-Pesa B2C amount is 10 KES", code="amount_too_small", provider=NAME
            )
    elif payment.type != "collection":
        raise NotSupported(f"M-Pesa does not offer {payment.type}", provider=NAME)


# -- initiate ---------------------------------------------------------------------------------


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    validate(context, payment)
    if payment.type == "disbursement":
        return await _b2c(context, payment)
    return await _stk_push(context, payment)


async def _stk_push(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = _settings(context)
    stamp = client.timestamp()
    phone = client.msisdn(payment.msisdn)
    buy_goods = settings.transaction_type == "CustomerBuyGoodsOnline"
    body = StkPushRequest(
        BusinessShortCode=settings.shortcode,
        Password=client.password(settings.shortcode, settings.passkey, stamp),
        Timestamp=stamp,
        TransactionType=settings.transaction_type,
        Amount=client.whole_shillings(payment.amount),
        PartyA=phone,
        PartyB=(settings.till_number or settings.shortcode) if buy_goods else settings.shortcode,
        PhoneNumber=phone,
        CallBackURL=context.callback_url("stk-callback", payment.id),
        AccountReference=account_reference(payment),
        TransactionDesc=fields.transaction_desc(payment, settings.transaction_desc),
    )
    response = await client.send(context, STK_PUSH, body, "initiate", moves_money=True)
    client.raise_for(response, "initiate")
    ack = _decode(response.content, StkPushResponse, "initiate")
    if ack.ResponseCode != "0":
        raise OperatorDeclined(
            ack.ResponseDescription or "M-Pesa declined the request",
            provider=NAME,
            provider_code=ack.ResponseCode,
            provider_message=ack.ResponseDescription,
            failure_code=client.VOCABULARY.code(ack.ResponseCode),
        )
    return InitiateResult(
        provider_reference=ack.CheckoutRequestID,
        provider_data={
            "MerchantRequestID": ack.MerchantRequestID,
            "CheckoutRequestID": ack.CheckoutRequestID,
        },
    )


def _credential(context: ProviderContext) -> str:
    return client.security_credential(_settings(context))


async def _b2c(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = _settings(context)
    command = payment.metadata.get("command_id", settings.b2c_command_id)
    if command not in B2C_COMMANDS:
        raise InvalidRequest(
            f"B2C CommandID must be one of {', '.join(B2C_COMMANDS)}", provider=NAME
        )
    body = B2CRequest(
        OriginatorConversationID=payment.id,
        InitiatorName=settings.initiator_name,
        SecurityCredential=_credential(context),
        CommandID=command,
        Amount=client.whole_shillings(payment.amount),
        PartyA=settings.b2c_shortcode,
        PartyB=client.msisdn(payment.msisdn),
        Remarks=fields.b2c_remarks(payment),
        QueueTimeOutURL=context.callback_url("timeout", payment.id),
        ResultURL=context.callback_url("b2c-result", payment.id),
        Occassion=fields.occasion(payment),
    )
    response = await client.send(context, B2C, body, "initiate", moves_money=True)
    if response.status_code >= 400 and "500.002.1001" in response.text:
        # Our OriginatorConversationID was taken: an earlier attempt got through.
        return InitiateResult(provider_data={"OriginatorConversationID": payment.id})
    client.raise_for(response, "initiate")
    ack = _ack(response.content, "initiate")
    return InitiateResult(
        provider_reference=ack.ConversationID or None,
        provider_data={
            "OriginatorConversationID": payment.id,
            "ConversationID": ack.ConversationID,
        },
    )


def _decode(data: bytes, type: Any, operation: str) -> Any:
    try:
        return client.decode(data, type)
    except msgspec.MsgspecError as exc:
        raise OutcomeUnknown(
            f"M-Pesa: unreadable {operation} answer: {exc}", provider=NAME
        ) from None


def _ack(data: bytes, operation: str) -> AsyncAck:
    ack: AsyncAck = _decode(data, AsyncAck, operation)
    if ack.ResponseCode != "0":
        raise OperatorDeclined(
            ack.ResponseDescription or "M-Pesa declined the request",
            provider=NAME,
            provider_code=ack.ResponseCode,
            provider_message=ack.ResponseDescription,
            failure_code=client.VOCABULARY.code(ack.ResponseCode),
        )
    return ack


# -- status -----------------------------------------------------------------------------------


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    if payment.type == "disbursement":
        return await _transaction_status(context, payment)
    report = await _stk_query(context, payment)
    if report.status == "succeeded" and payment.provider_transaction_id:
        return await _with_confirmed_receipt(context, payment, report)
    return report


async def _with_confirmed_receipt(
    context: ProviderContext, payment: Payment, report: StatusReport
) -> StatusReport:
    """STK Query tells the outcome but not the receipt: a receipt that a callback named
    (Daraja signs nothing) is returned only when Transaction Status says it is a completed
    payment of this amount, so a forged callback cannot pin another payment's receipt on
    this one (a reversal is sent by receipt)."""
    receipt = payment.provider_transaction_id
    try:
        checked = await _transaction_status(
            context, payment, party=_settings(context).shortcode, receipt=receipt
        )
    except (UnknownToOperator, NoAnswerYet):
        checked = StatusReport(status="pending")  # not confirmed
    if (
        checked.status == "succeeded"
        and checked.provider_transaction_id == receipt
        and (checked.amount is None or checked.amount == payment.amount)
    ):
        return msgspec.structs.replace(report, provider_transaction_id=receipt)
    context.log.warning(
        "payment %s: Transaction Status does not confirm its receipt (%s)",
        payment.id,
        checked.status,
    )
    return report


async def _stk_query(context: ProviderContext, payment: Payment) -> StatusReport:
    settings = _settings(context)
    checkout = payment.provider_reference or payment.provider_data.get("CheckoutRequestID")
    if not checkout:
        # STK Query takes the CheckoutRequestID only, which Daraja chooses and answers to
        # the push itself (no caller-chosen id): without it only the STK callback (its URL
        # names the payment) can tell the outcome, or a person
        raise NotSupported(
            "This payment has no CheckoutRequestID: M-Pesa cannot be asked about it",
            code="cannot_ask",
            provider=NAME,
        )
    stamp = client.timestamp()
    body = StkQueryRequest(
        BusinessShortCode=settings.shortcode,
        Password=client.password(settings.shortcode, settings.passkey, stamp),
        Timestamp=stamp,
        CheckoutRequestID=checkout,
    )
    response = await client.send(context, STK_QUERY, body, "status", moves_money=False)
    if client.is_being_processed(response):
        return StatusReport(status="pending", provider_reference=checkout)
    client.raise_for(response, "status")
    answer = _decode(response.content, StkQueryResponse, "status")
    if answer.ResultCode is None:
        return StatusReport(status="pending", provider_reference=checkout)
    state, failure = result_status(answer.ResultCode, answer.ResultDesc)
    return StatusReport(status=state, provider_reference=checkout, failure=failure)


# A Transaction Status Result that says M-Pesa has no such transaction (neither the
# receipt nor the OriginatorConversationID is known at that shortcode).
NO_SUCH_TRANSACTION = frozenset({"R000002"})

# TransactionStatus values of a Transaction Status Result.
_TRANSACTION_STATUS = {
    "completed": "succeeded",
    "failed": "failed",
    "declined": "failed",
    "cancelled": "failed",
    "expired": "expired",
    "reversed": "reversed",
}


async def _initiator_query(
    context: ProviderContext, path: str, body: Any, operation: str
) -> Result | None:
    """Send a request answered by a Result callback and wait briefly for that Result."""
    return (await _initiator_request(context, path, body, operation, moves_money=False))[1]


async def _initiator_request(
    context: ProviderContext, path: str, body: Any, operation: str, *, moves_money: bool
) -> tuple[AsyncAck, Result | None]:
    response = await client.send(context, path, body, operation, moves_money=moves_money)
    client.raise_for(response, operation)
    ack = _ack(response.content, operation)
    # the Result comes by callback, maybe to another process: `context.results` is shared
    key = _result_key(ack.ConversationID)
    found = await context.results.wait(key, _settings(context).result_wait)
    return ack, None if found is None else client.decode(found, Result)


def _result_key(conversation_id: str) -> str:
    return f"mpesa:result:{conversation_id}"


def _status_key(payment_id: str) -> str:
    """The latest Transaction Status Result about one payment (its ResultURL names it)."""
    return f"mpesa:status:{payment_id}"


async def _transaction_status(
    context: ProviderContext,
    payment: Payment,
    *,
    party: str | None = None,
    receipt: str | None = None,
) -> StatusReport:
    """Transaction Status of a B2C payment (by our OriginatorConversationID and its
    receipt), or of a collection's receipt at the STK shortcode (`party`)."""
    settings = _settings(context)
    body = TransactionStatusRequest(
        Initiator=settings.initiator_name,
        SecurityCredential=_credential(context),
        CommandID="TransactionStatusQuery",
        PartyA=party or settings.b2c_shortcode,
        IdentifierType="4",
        ResultURL=context.callback_url("status-result", payment.id),
        QueueTimeOutURL=context.callback_url("timeout"),
        Remarks="Status",
        TransactionID=receipt or payment.provider_transaction_id or "",
        OriginalConversationID=payment.id,
    )
    result = await _initiator_query(context, TRANSACTION_STATUS, body, "status")
    if result is None:
        # this query's Result has not come (yet): an earlier query's, come after that one
        # stopped waiting, is M-Pesa's latest word on the payment
        late = await context.results.wait(_status_key(payment.id), 0.0)
        result = None if late is None else client.decode(late, Result)
    reference = payment.provider_reference
    if result is not None and str(result.ResultCode).strip() in NO_SUCH_TRANSACTION:
        raise UnknownToOperator(
            "M-Pesa has no record of this transaction (Transaction Status)",
            provider=NAME,
            provider_code=str(result.ResultCode),
            provider_message=result.ResultDesc,
        )
    if result is None or str(result.ResultCode) != "0":
        # no answer yet (the Result comes by callback: late or lost), or the query itself
        # failed: M-Pesa told nothing, which is not "pending" (that says it holds it)
        raise NoAnswerYet(
            "M-Pesa has not answered the Transaction Status query yet"
            if result is None
            else f"M-Pesa's Transaction Status query failed ({result.ResultCode})",
            provider=NAME,
            provider_code=None if result is None else str(result.ResultCode),
            provider_message=None if result is None else result.ResultDesc,
        )
    params = result.parameters()
    state = _TRANSACTION_STATUS.get(str(params.get("TransactionStatus", "")).lower(), "pending")
    failure = None
    if state in ("failed", "expired"):
        reason = str(params.get("ReasonType") or params.get("TransactionStatus"))
        failure = client.failure_for(reason, str(params.get("TransactionReason") or reason))
    return StatusReport(
        status=state,  # type: ignore[arg-type]
        provider_reference=reference,
        provider_transaction_id=str(params.get("ReceiptNo") or "") or None,
        failure=failure,
        amount=decimal(params.get("Amount")),
    )


@hookimpl
async def inbound_status(context: ProviderContext, inbound: InboundPayment) -> StatusReport:
    """Transaction Status of a C2B payment's receipt at the C2B shortcode: Daraja signs no
    confirmation, so a reported payment is settled only once its receipt checks out."""
    probe = Payment(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mpesa:c2b:{inbound.provider_transaction_id}")),
        type="collection",
        amount=inbound.amount,
        currency=inbound.currency,
        msisdn=inbound.msisdn or "",
        reference=inbound.account_reference or inbound.provider_transaction_id,
        country=inbound.country,
        provider_transaction_id=inbound.provider_transaction_id,
    )
    return await _transaction_status(
        context,
        probe,
        party=_settings(context).c2b_shortcode,
        receipt=inbound.provider_transaction_id,
    )


# -- callbacks --------------------------------------------------------------------------------


def _reply(body: dict[str, Any] | None = None) -> WebhookReply:
    return WebhookReply(status_code=200, body=body or ACCEPTED)


def _callback_json(callback: InboundCallback, type: Any) -> Any:
    """The one place a callback's body is read: anything but a well-formed body of `type`
    (nested past the recursion limit, or not UTF-8, included) is an InvalidRequest."""
    try:
        return client.decode(callback.body, type)
    except BODY_ERRORS as exc:
        raise InvalidRequest(
            f"Malformed M-Pesa callback: {exc}", code="malformed_callback", provider=NAME
        ) from None


def _e164(value: Any) -> str | None:
    """A phone number Daraja sends back (a number or text; masked or hashed ones give None)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).split(" - ")[0].strip()
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return phones.to_e164(text, strict=False)
    except InvalidRequest:
        return None


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    payment_id = context.verify_callback(callback)
    kind = callback.kind
    if kind == "stk-callback":
        return _stk_callback(payment_id, callback)
    if kind == "c2b-validation":
        transaction = _callback_json(callback, C2BTransaction)
        return CallbackOutcome(reply=_reply(await c2b.validate(context, transaction)))
    if kind == "c2b-confirmation":
        transaction = _callback_json(callback, C2BTransaction)
        return CallbackOutcome(
            reply=_reply({"ResultCode": 0, "ResultDesc": "Success"}),
            inbound=c2b.inbound_payment(transaction, _e164(transaction.MSISDN)),
        )
    result = _callback_json(callback, ResultEnvelope).Result
    if payment_id is not None and kind in ("b2c-result", "timeout"):
        if result.OriginatorConversationID not in ("", payment_id):
            raise CallbackVerificationFailed("The Result is for another payment", provider=NAME)
        return CallbackOutcome(reply=_reply(), update=_b2c_update(kind, payment_id, result))
    # Results of Transaction Status, Reversal and Account Balance (and their timeouts)
    encoded = msgspec.json.encode(result)
    for key in (result.ConversationID, result.OriginatorConversationID):
        if key:
            await context.results.put(_result_key(key), encoded)
    if payment_id is not None and kind == "status-result":
        # also as the payment's latest answer: one that comes after its query stopped
        # waiting is read by the next query (`_transaction_status`)
        await context.results.put(_status_key(payment_id), encoded)
    return CallbackOutcome(reply=_reply())


def _stk_callback(payment_id: str | None, callback: InboundCallback) -> CallbackOutcome:
    stk = _callback_json(callback, StkCallbackEnvelope).Body.stkCallback
    state, failure = result_status(stk.ResultCode, stk.ResultDesc)
    metadata = stk.CallbackMetadata.Item if stk.CallbackMetadata is not None else []
    items = {item.Name: item.Value for item in metadata}
    receipt = items.get("MpesaReceiptNumber")
    data = {"MerchantRequestID": stk.MerchantRequestID, "ResultCode": str(stk.ResultCode)}
    if receipt:
        data["MpesaReceiptNumber"] = str(receipt)
    if items.get("TransactionDate") is not None:
        data["TransactionDate"] = str(items["TransactionDate"])
    update = PaymentUpdate(
        status=state,
        payment_id=payment_id,
        provider_reference=stk.CheckoutRequestID,
        provider_transaction_id=str(receipt) if receipt else None,
        failure=failure,
        amount=money.reported_amount(items.get("Amount"), "KES", provider=NAME),
        msisdn=_e164(items.get("PhoneNumber")),
        provider_data=data,
    )
    return CallbackOutcome(reply=_reply(), update=update)


def _b2c_update(kind: str, payment_id: str, result: Result) -> PaymentUpdate:
    if kind == "timeout":
        return PaymentUpdate(
            status="expired",
            payment_id=payment_id,
            failure=client.failure_for(
                "QueueTimeOut", result.ResultDesc or "The request timed out"
            ),
        )
    state, failure = result_status(result.ResultCode, result.ResultDesc)
    params = result.parameters()
    receipt = result.TransactionID or params.get("TransactionReceipt")
    return PaymentUpdate(
        status=state,
        payment_id=payment_id,
        provider_reference=result.ConversationID or None,
        provider_transaction_id=str(receipt) if receipt else None,
        failure=failure,
        amount=money.reported_amount(params.get("TransactionAmount"), "KES", provider=NAME),
        msisdn=_e164(params.get("ReceiverPartyPublicName")),
        provider_data={"ResultCode": str(result.ResultCode)},
    )


# -- reversal, balance, setup, health ---------------------------------------------------------


@hookimpl
async def reverse(
    context: ProviderContext, payment: Payment, amount: Decimal | None, reason: str | None
) -> StatusReport:
    if payment.type != "collection":
        raise NotSupported("M-Pesa does not reverse B2C payments through the API", provider=NAME)
    receipt = payment.provider_transaction_id
    if not receipt:
        raise InvalidRequest("Only a paid collection (with its receipt) is reversed", provider=NAME)
    settings = _settings(context)
    body = ReversalRequest(
        Initiator=settings.initiator_name,
        SecurityCredential=_credential(context),
        CommandID="TransactionReversal",
        TransactionID=receipt,
        Amount=client.whole_shillings(payment.amount if amount is None else amount),
        ReceiverParty=settings.shortcode,
        RecieverIdentifierType="11",
        ResultURL=context.callback_url("reversal-result", payment.id),
        QueueTimeOutURL=context.callback_url("timeout"),
        Remarks=fields.remarks(reason, "Reversal"),
    )
    ack, result = await _initiator_request(context, REVERSAL, body, "reverse", moves_money=True)
    if result is None:
        # the Result comes later: `reversal_status` looks for it by its ConversationID
        return StatusReport(
            status="pending",
            provider_transaction_id=receipt,
            provider_data={"ReversalConversationID": ack.ConversationID},
        )
    report = _reversal_report(result, receipt)
    if report.failure is not None:
        raise OperatorDeclined(
            report.failure.message,
            provider=NAME,
            provider_code=report.failure.provider_code,
            provider_message=report.failure.provider_message,
            failure_code=report.failure.code,
        )
    return report


def _reversal_report(result: Result, receipt: str | None) -> StatusReport:
    """A reversal Result: `reversed`, or `failed` with Daraja's code and text."""
    _, failure = result_status(result.ResultCode, result.ResultDesc)
    if failure is not None:
        return StatusReport(status="failed", provider_transaction_id=receipt, failure=failure)
    return StatusReport(
        status="reversed",
        provider_transaction_id=receipt,
        provider_data={"ReversalTransactionID": result.TransactionID},
    )


@hookimpl
async def reversal_status(
    context: ProviderContext, payment: Payment, reversal: Reversal
) -> StatusReport:
    """A reversal whose Result had not come when `reverse` returned.

    Its Result, once it came to `reversal-result`, is on `context.results` (by the
    ConversationID `reverse` kept). Without it, Transaction Status of the original
    receipt tells whether M-Pesa holds the payment as reversed; anything else is pending.
    """
    receipt = payment.provider_transaction_id
    conversation = reversal.provider_data.get("ReversalConversationID")
    if conversation:
        found = await context.results.wait(_result_key(str(conversation)), 0.0)
        if found is not None:
            return _reversal_report(client.decode(found, Result), receipt)
    if not receipt:
        raise InvalidRequest("Only a paid collection (with its receipt) is reversed", provider=NAME)
    try:
        report = await _transaction_status(context, payment)
    except (UnknownToOperator, NoAnswerYet):
        # M-Pesa not knowing (or not yet telling) the original says nothing of the
        # reversal: ask again later
        return StatusReport(status="pending", provider_transaction_id=receipt)
    if report.status == "reversed":
        return StatusReport(status="reversed", provider_transaction_id=receipt)
    return StatusReport(status="pending", provider_transaction_id=receipt)


def parse_balances(text: str) -> tuple[Balance, ...]:
    """`Working Account|KES|0.00|0.00|0.00|0.00&Utility Account|KES|98500.00|...`."""
    balances = []
    for account in filter(None, text.split("&")):
        parts = account.split("|")
        if len(parts) < 3:
            continue
        balances.append(
            Balance(
                account=parts[0],
                currency=parts[1],
                available=Decimal(parts[2]),
                current=decimal(parts[3]) if len(parts) > 3 else None,
            )
        )
    return tuple(balances)


@hookimpl
async def balance(context: ProviderContext) -> BalanceReport:
    settings = _settings(context)
    body = AccountBalanceRequest(
        Initiator=settings.initiator_name,
        SecurityCredential=_credential(context),
        CommandID="AccountBalance",
        PartyA=settings.b2c_shortcode,
        IdentifierType="4",
        Remarks="Balance",
        QueueTimeOutURL=context.callback_url("timeout"),
        ResultURL=context.callback_url("balance-result"),
    )
    result = await _initiator_query(context, ACCOUNT_BALANCE, body, "balance")
    if result is None:
        raise ProviderUnavailable("M-Pesa sent no balance Result in time", provider=NAME)
    if str(result.ResultCode) != "0":
        raise OperatorDeclined(
            result.ResultDesc or "M-Pesa refused the balance query",
            provider=NAME,
            provider_code=str(result.ResultCode),
            provider_message=result.ResultDesc,
        )
    return BalanceReport(balances=parse_balances(str(result.parameters().get("AccountBalance"))))


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    """Register the C2B confirmation and validation URLs (safe to run again)."""
    settings = _settings(context)
    urls = {
        "ConfirmationURL": context.callback_url("c2b-confirmation", segment=C2B_SEGMENT),
        "ValidationURL": context.callback_url("c2b-validation", segment=C2B_SEGMENT),
    }
    if settings.c2b_url_prefix:
        # a public alias (proxy) of the gateway's webhook routes
        ours = f"{context.public_url}/api/v1/webhooks/{C2B_SEGMENT}/"
        urls = {
            k: v.replace(ours, settings.c2b_url_prefix.rstrip("/") + "/") for k, v in urls.items()
        }
    for url in urls.values():
        word = next((w for w in BANNED_URL_WORDS if w in url.lower()), None)
        if word is not None:
            path, _, query = url.lower().partition("?")
            where = "the URL"
            if word not in path:
                named = f"account={context.account}".lower()
                where = "the account's name" if word in named and word in query else "its token"
            raise ConfigurationError(
                f"Daraja refuses C2B URLs containing {word!r} ({where} has it): change "
                "MMO_PUBLIC_URL or MMO_MPESA_C2B_URL_PREFIX, MMO_MPESA_CALLBACK_SECRET "
                "when the token has it, or the account's name",
                provider=NAME,
            )
    body = RegisterUrlRequest(
        ShortCode=settings.c2b_shortcode, ResponseType=settings.c2b_response_type, **urls
    )
    path = f"/mpesa/c2b/{settings.c2b_api_version}/registerurl"
    response = await client.send(context, path, body, "setup", moves_money=False)
    if response.status_code >= 400 and "already registered" in response.text.lower():
        return SetupReport(lines=(f"C2B URLs of {settings.c2b_shortcode} already registered",))
    client.raise_for(response, "setup")
    answer = _decode(response.content, RegisterUrlResponse, "setup")
    return SetupReport(
        lines=(
            f"C2B URLs registered for shortcode {settings.c2b_shortcode} "
            f"({settings.c2b_api_version}, ResponseType {settings.c2b_response_type}): "
            f"{answer.ResponseDescription}",
        )
    )


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    """A new OAuth token from Daraja, bypassing the cache (the core's probe)."""
    return await client.operator(context).probe("token ok")


@hookimpl
def simulator_app(settings: MpesaSettings, accounts: dict[str, MpesaSettings] | None = None):
    """One Daraja sandbox serving every account (app) at once; `settings` alone is the one
    account `default` (older callers)."""
    from mmo_mpesa.simulator import create_simulator

    return create_simulator(settings, accounts)
