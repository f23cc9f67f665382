"""Operations beyond payments: reversals, operator balances, account lookups, prompts.

- `POST /api/v1/payments/{id}/reversal` reverses (refunds) a succeeded payment, all of it
  or part, through its provider's `reverse` hook; several partial reversals may follow one
  another until the whole amount is reversed. Each is a row of `reversals` whose id is the
  hook's `reversal_id`. The payment's status only changes through
  `payments.apply_transition` (`succeeded -> reversed`, once nothing is left to reverse).
- `GET /api/v1/payments/{id}/reversals` lists them.
- `POST /api/v1/payments/{id}/resend-prompt` sends the payer's approval prompt again.
- `GET /api/v1/admin/providers/{name}/balance` and
  `GET /api/v1/admin/providers/{name}/accounts/{msisdn}` call a provider's `balance` and
  `lookup_account` hooks.

Every operator call goes through `operator.ask` (the circuit breaker, the operator
timeout, one typed answer); every reversal change through `reversals`. At most one
reversal of a payment is open at a time (a unique index), and a reversal whose outcome
is unknown is never sent again blindly: a retry with its
Idempotency-Key is refused until a person settles it.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from mmo_core import failures, money, phones
from mmo_core.errors import (
    InvalidRequest,
    MmoError,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
)
from mmo_core.registry import Provider
from mmo_core.types import AccountInfo, BalanceReport, StatusReport

from mmo_host import audit, db, operator, payments, reversals
from mmo_host.auth import requires
from mmo_host.controllers.payments import IdempotencyKey
from mmo_host.errors import API_ERRORS, OPERATOR_ERRORS, error_responses
from mmo_host.gateway import Gateway
from mmo_host.hygiene import AMOUNT_PATTERN
from mmo_host.records import PaymentRecord, ReversalRecord
from mmo_host.schemas import PaymentResource

log = logging.getLogger("mmo.operations")

# a reversal the operator answers later: the payment, unchanged
ACCEPTED = ResponseSpec(data_container=PaymentResource, description="reversal pending")


class ReversalCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payments/{id}/reversal`. Without `amount`, the whole payment."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    amount: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=AMOUNT_PATTERN)] | None
    ) = None


class ReversalSettle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payments/{id}/reversals/{reversal_id}/settle`: what a person found out."""

    status: Literal["reversed", "failed"]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    provider_transaction_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class PaymentSettle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payments/{id}/settle`: what a person found out about a payment."""

    status: Literal["succeeded", "failed"]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    provider_transaction_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class Conflict(MmoError):
    """The payment's state forbids the request (the code says which state)."""

    code = "conflict"
    http_status = 409


# -- helpers ------------------------------------------------------------------------------


async def _own_payment(request: Request, payment_id: str) -> PaymentRecord:
    """The payment, when it belongs to the calling client (404 otherwise, as for none)."""
    row = await payments.get(payment_id)
    if row.client_id != request.state.client_id:
        raise payments.PaymentNotFound(f"No payment {payment_id!r}")
    return row


def _require(provider: Provider, hook: str, operation: str) -> None:
    """NotSupported unless the provider both implements `hook` and declares `operation`."""
    d = provider.declaration
    if not provider.implements(hook) or operation not in d.operations:
        raise NotSupported(f"{d.display_name} does not offer {operation}", provider=provider.name)


def _amount_text(value: Decimal | None, currency: str) -> str | None:
    """A decimal string, at the currency's exponent when it is known and exact."""
    if value is None:
        return None
    digits = money.CURRENCY_EXPONENTS.get(currency)
    if digits is not None:
        quantum = Decimal(1).scaleb(-digits)
        if value == value.quantize(quantum):
            return str(value.quantize(quantum))
    return str(value)


def _request_hash(body: ReversalCreate) -> str:
    canonical = msgspec.json.encode(msgspec.to_builtins(body), order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _check_amount(
    body: ReversalCreate, row: PaymentRecord, provider: Provider
) -> tuple[Decimal | None, int]:
    """The amount to hand the hook (None: the whole payment) and its minor units."""
    currency = row.currency
    left = row.amount_minor - row.amount_reversed_minor
    if body.amount is None:
        if row.amount_reversed_minor == 0:
            return None, left
        return money.from_minor(left, currency), left  # the rest, after partial reversals
    amount = money.parse_amount(body.amount, currency)
    limit = provider.declaration.limit_for(currency)
    if limit is not None and limit.whole_units_only and not money.is_whole(amount):
        raise InvalidRequest(
            f"{provider.declaration.display_name} takes whole {currency} amounts only",
            code="invalid_amount",
            provider=provider.name,
        )
    minor = money.to_minor(amount, currency)
    if minor > left:
        raise InvalidRequest(
            f"The reversal amount is more than the {money.format_amount(left, currency)} "
            f"{currency} of the payment left to reverse",
            code="amount_too_large",
        )
    return amount, minor


def _replay(
    row: PaymentRecord, reversal: ReversalRecord | None, digest: str
) -> Response[PaymentResource] | None:
    """The answer to a retried request (same Idempotency-Key), or None for a new attempt."""
    if reversal is None:
        return None
    if reversal.request_hash != digest:
        raise payments.IdempotencyConflict(
            "This Idempotency-Key was already used with a different reversal request"
        )
    state = reversal.status
    if state == "in_progress":
        raise payments.RequestInProgress(
            "A reversal with this Idempotency-Key is still being processed; retry shortly"
        )
    if state == "unknown":
        raise Conflict(
            "The outcome of this reversal is unknown; it is not sent again",
            code="reversal_outcome_unknown",
        )
    if state in ("pending", "reversed"):
        return Response(payments.resource(row), status_code=200 if state == "reversed" else 202)
    return None  # failed before: known not to have taken effect, so it may be tried again


def _check_reversible(row: PaymentRecord, open_reversal: ReversalRecord | None) -> None:
    status = row.status
    if status == "reversed":
        raise Conflict("The payment is already reversed", code="already_reversed")
    if status != "succeeded":
        raise Conflict(
            f"Only a succeeded payment can be reversed; this one is {status}",
            code="payment_not_succeeded",
        )
    if open_reversal is not None:
        raise Conflict(
            "A reversal of this payment is already in progress (or its outcome is unknown)",
            code="reversal_in_progress",
        )


# -- the controller ---------------------------------------------------------------------------


class OperationsController(Controller):
    path = "/api/v1"
    security = [{"BearerToken": []}]

    @post(
        "/payments/{payment_id:str}/reversal",
        name="payments:reverse",
        guards=[requires("payments:write")],
        operation_id="reversePayment",
        responses=error_responses(*API_ERRORS, 402, 404, 409, 422, *OPERATOR_ERRORS, _202=ACCEPTED),
        summary="Reverse (refund) a succeeded payment, all of it or part",
        tags=["payments"],
        status_code=200,
        request_max_body_size=16 * 1024,
    )
    async def reverse(
        self,
        request: Request,
        payment_id: FromPath[str],
        idempotency_key: IdempotencyKey,
        data: JSONBody[ReversalCreate],
    ) -> Response[PaymentResource]:
        """`200` with the payment `reversed`, or `202` with it unchanged (`succeeded`) when
        the operator answers later: its callback or a status poll finishes it."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise InvalidRequest(
                "The Idempotency-Key header has 1 to 255 characters",
                code="idempotency_key_required",
                http_status=400,
            )
        gateway: Gateway = request.app.state.gateway
        row = await _own_payment(request, payment_id)
        digest = _request_hash(data)
        replayed = _replay(row, await reversals.by_key(row.id, idempotency_key), digest)
        if replayed is not None:
            return replayed
        _check_reversible(row, await reversals.open_of(row.id))
        provider = gateway.registry.get(row.provider)
        _require(provider, "reverse", "reversal")
        amount, minor = _check_amount(data, row, provider)

        async with db.transaction():
            row = await db.fetchone_as(
                PaymentRecord, "SELECT * FROM payments WHERE id = $1 FOR UPDATE", row.id
            )
            replayed = _replay(row, await reversals.by_key(row.id, idempotency_key), digest)
            if replayed is not None:
                return replayed
            _check_reversible(row, await reversals.open_of(row.id))
            amount, minor = _check_amount(data, row, provider)
            reversal = await reversals.begin(
                gateway, row, key=idempotency_key, digest=digest, minor=minor, reason=data.reason
            )

        log.info("payment %s: reversal %s requested", row.id, reversal.id)
        answer = await operator.ask(
            gateway,
            row,
            "reverse",
            expect=StatusReport,
            payment=await payments.core_payment(row),
            amount=amount,
            reason=data.reason,
            reversal_id=str(reversal.id),
        )
        after = await reversals.answer(gateway, row, reversal, answer, "api")
        row = await payments.get(str(row.id))
        if after.status == "reversed":
            return Response(payments.resource(row), status_code=200)
        if after.status == "pending":
            log.info("payment %s: reversal pending with the operator", row.id)
            return Response(payments.resource(row), status_code=202)
        raise _reversal_error(row.provider, answer)

    @get(
        "/payments/{payment_id:str}/reversals",
        name="payments:reversals",
        guards=[requires("payments:read")],
        operation_id="listReversals",
        responses=error_responses(*API_ERRORS, 404),
        summary="The reversals of a payment, oldest first",
        tags=["payments"],
    )
    async def reversals(self, request: Request, payment_id: FromPath[str]) -> dict[str, Any]:
        row = await _own_payment(request, payment_id)
        rows = await reversals.of_payment(row.id)
        return {"data": [reversals.resource(r, row.currency) for r in rows]}

    @post(
        "/payments/{payment_id:str}/settle",
        name="payments:settle",
        guards=[requires("payments:write")],
        operation_id="settlePayment",
        responses=error_responses(*API_ERRORS, 404, 409),
        summary="Record by hand the outcome of a payment the operator never told",
        tags=["payments"],
        status_code=200,
    )
    async def settle_payment(
        self, request: Request, payment_id: FromPath[str], data: JSONBody[PaymentSettle]
    ) -> Response[PaymentResource]:
        """For a payment still `unknown` or `pending` whose outcome the operator's own
        records (portal, statement) show: a lost initiate answer and a dropped callback can
        leave one with nothing to ask the operator by. The note is kept in its history
        and the action in the audit log."""
        async with audit.action(request, "payment.settle", f"payment:{payment_id}", data) as done:
            row = await _own_payment(request, payment_id)
            if row.status not in ("unknown", "pending"):
                raise Conflict(
                    f"Only an unknown or pending payment is settled by hand; this one is "
                    f"{row['status']}",
                    code="payment_not_open",
                )
            failure = (
                failures.failure(failures.SETTLED_BY_HAND, data.note)
                if data.status == "failed"
                else None
            )
            transition = await payments.apply_transition(
                request.app.state.gateway,
                row.id,
                data.status,
                source="admin",
                provider_transaction_id=data.provider_transaction_id,
                failure=failure,
                detail={"settled_by_hand": data.note},
            )
            if not transition.changed:  # settled meanwhile (a late callback or poll)
                raise Conflict(
                    f"The payment became {transition.row['status']} meanwhile",
                    code="payment_not_open",
                )
            log.info("payment %s: settled by hand as %s", row.id, data.status)
            return done(Response(payments.resource(transition.row), status_code=200))

    @post(
        "/payments/{payment_id:str}/reversals/{reversal_id:str}/settle",
        name="payments:settle-reversal",
        guards=[requires("payments:write")],
        operation_id="settleReversal",
        responses=error_responses(*API_ERRORS, 404, 409),
        summary="Record by hand the outcome of a reversal the operator never told",
        tags=["payments"],
        status_code=200,
    )
    async def settle_reversal(
        self,
        request: Request,
        payment_id: FromPath[str],
        reversal_id: FromPath[str],
        data: JSONBody[ReversalSettle],
    ) -> dict[str, Any]:
        """For a reversal left `pending` or `unknown` that the operator's own records (its
        portal, a statement) settle: `reversed` counts it into the payment, `failed` frees
        the payment for another reversal. The person's note is kept on the reversal, and
        the action in the audit log."""
        target = f"reversal:{reversal_id}"
        async with audit.action(request, "reversal.settle", target, data) as done:
            row = await _own_payment(request, payment_id)
            rid = payments.parse_id(reversal_id)
            reversal = await reversals.get(row.id, rid)
            if reversal is None:
                raise payments.PaymentNotFound(f"No reversal {reversal_id!r} of this payment")
            if reversal.status not in ("pending", "unknown"):
                raise Conflict(
                    f"Only a pending or unknown reversal is settled by hand; this one is "
                    f"{reversal['status']}",
                    code="reversal_not_open",
                )
            note = f"settled by hand: {data.note}"
            if data.status == "reversed":
                report = StatusReport(
                    status="reversed",
                    provider_transaction_id=data.provider_transaction_id,
                    provider_data={"settled_by_hand": data.note},
                )
                await reversals.complete(
                    request.app.state.gateway, row.id, reversal.id, report, "admin", note=note
                )
            else:
                await reversals.move(reversal.id, "failed", error=note)
            log.info("payment %s: reversal %s settled by hand (%s)", row.id, rid, data.status)
            settled = await reversals.get(row.id, reversal.id)
            if settled is None:  # a reversal is never deleted
                raise payments.PaymentNotFound(f"No reversal {reversal_id!r} of this payment")
            return done(reversals.resource(settled, row.currency))

    @post(
        "/payments/{payment_id:str}/resend-prompt",
        name="payments:resend-prompt",
        guards=[requires("payments:write")],
        operation_id="resendPrompt",
        responses=error_responses(*API_ERRORS, 402, 404, 409, 422, *OPERATOR_ERRORS),
        summary="Send the payer's approval prompt of a pending collection again",
        tags=["payments"],
        status_code=202,
    )
    async def resend_prompt(
        self, request: Request, payment_id: FromPath[str]
    ) -> Response[PaymentResource]:
        gateway: Gateway = request.app.state.gateway
        row = await _own_payment(request, payment_id)
        if row.type != "collection" or row.status != "pending":
            raise Conflict(
                f"Only a pending collection is prompted again; this one is a {row['status']} "
                f"{row['type']}",
                code="payment_not_pending",
            )
        provider = gateway.registry.get(row.provider)
        _require(provider, "resend_prompt", "resend_prompt")
        await _call_admin(
            gateway, provider, "resend_prompt", row=row, payment=payments.to_core(row)
        )
        log.info("payment %s: prompt sent again", row.id)
        return Response(payments.resource(row), status_code=202)

    # -- admin --------------------------------------------------------------------------------

    @get(
        "/admin/providers/{name:str}/balance",
        name="admin:provider-balance",
        guards=[requires("admin")],
        operation_id="providerBalance",
        responses=error_responses(*API_ERRORS, 422, *OPERATOR_ERRORS),
        summary="The business's balances with a provider's operator",
        tags=["admin"],
    )
    async def balance(
        self, request: Request, name: FromPath[str], account: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        """`?account=` one of the provider's accounts (default: its first)."""
        gateway: Gateway = request.app.state.gateway
        provider = gateway.registry.get(name)
        _require(provider, "balance", "balance")
        chosen = _account_of(gateway, provider, account)
        report: BalanceReport = await _call_admin(
            gateway, provider, "balance", expect=BalanceReport, account=chosen
        )
        return {
            "provider": provider.name,
            "provider_account": chosen,
            "data": [
                {
                    "account": b.account,
                    "currency": b.currency,
                    "available": _amount_text(b.available, b.currency),
                    "current": _amount_text(b.current, b.currency),
                }
                for b in report.balances
            ],
        }

    @get(
        "/admin/providers/{name:str}/accounts/{msisdn:str}",
        name="admin:provider-account",
        guards=[requires("admin")],
        operation_id="providerAccount",
        responses=error_responses(*API_ERRORS, 422, *OPERATOR_ERRORS),
        summary="Whether a wallet exists and is active, and its holder's name",
        tags=["admin"],
    )
    async def account(
        self,
        request: Request,
        name: FromPath[str],
        msisdn: FromPath[str],
        account: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """`?account=` one of the provider's accounts (default: the one serving the number's
        country)."""
        gateway: Gateway = request.app.state.gateway
        provider = gateway.registry.get(name)
        _require(provider, "lookup_account", "lookup")
        number = phones.to_e164(msisdn)
        country = phones.region_of(number)
        if country not in provider.declaration.countries:
            raise NotSupported(
                f"{provider.declaration.display_name} does not serve country {country}",
                provider=provider.name,
            )
        if account is None:
            serving = gateway.router.accounts_for(provider.name, country, None, None)
            account = serving[0].name if serving else None
        chosen = _account_of(gateway, provider, account)
        info: AccountInfo = await _call_admin(
            gateway, provider, "lookup_account", expect=AccountInfo, msisdn=number, account=chosen
        )
        log.info("provider %s: looked up %s", provider.name, phones.mask(number))
        return {
            "provider": provider.name,
            "msisdn": number,
            "active": info.active,
            "name": info.name,
            "details": msgspec.to_builtins(info.details),
        }


def _account_of(gateway: Gateway, provider: Provider, account: str | None) -> str:
    """The account named (422 `unknown_account` when the provider has none such), or the
    provider's first."""
    accounts = gateway.accounts[provider.name]
    if account is None:
        return next(iter(accounts))
    if account not in accounts:
        raise InvalidRequest(
            f"{provider.declaration.display_name} has no account {account!r}",
            code="unknown_account",
            details={"accounts": sorted(accounts)},
        )
    return account


async def _call_admin(
    gateway: Gateway,
    provider: Provider,
    hook: str,
    row: PaymentRecord | None = None,
    expect: type | None = None,
    account: str | None = None,
    **kwargs: Any,
) -> Any:
    """A provider hook that moves no money; every answer but `answered` is an error."""
    target = row if row is not None else operator.Target(provider.name, account=account)
    answer = await operator.ask(gateway, target, hook, expect=expect, **kwargs)
    if not answer.ok:
        raise answer.error_for_caller(provider.name)
    return answer.value


def _reversal_error(provider: str, answer: operator.Answer) -> MmoError:
    """Why a reversal did not happen, for the API caller (the reversal is recorded)."""
    if answer.ok:  # the operator answered, but not `reversed` or `pending`
        report: StatusReport = answer.value
        if report.status in ("failed", "expired"):
            failure = report.failure
            return OperatorDeclined(
                failure.message if failure else "The operator refused the reversal",
                provider=provider,
                provider_code=(failure.provider_code or failure.code) if failure else None,
                provider_message=(failure.provider_message or failure.message) if failure else None,
                failure_code=failure.code if failure else None,
            )
        return operator.ProviderError(
            f"The provider answered the reversal with {report.status!r}; its outcome is unknown",
            provider=provider,
        )
    if answer.kind == "unknown" and answer.error is None:
        if answer.reason == "timeout":
            return OutcomeUnknown(
                "The operator did not answer in time; the reversal may have taken effect and "
                "is not sent again",
                provider=provider,
            )
        return operator.ProviderError(
            "The provider failed on the reversal; its outcome is unknown", provider=provider
        )
    return answer.error_for_caller(provider)
