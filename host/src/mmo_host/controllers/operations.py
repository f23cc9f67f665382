"""Operations beyond payments: reversals, operator balances and account lookups.

- `POST /api/v1/payments/{id}/reversal` reverses (refunds) a succeeded payment through its
  provider's `reverse` hook. The payment's status only changes through
  `payments.apply_transition` (`succeeded -> reversed`).
- `GET /api/v1/admin/providers/{name}/balance` and
  `GET /api/v1/admin/providers/{name}/accounts/{msisdn}` call a provider's `balance` and
  `lookup_account` hooks.

Every operator call goes through `payments.call_operator` (the circuit breaker and the
operator timeout). A reversal is guarded by a claim kept under the payment's
`provider_data["mmo_reversal"]`, written under the payment's row lock, so that two requests
(or a retry after an unknown outcome) never reverse one payment twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody
from mmo_core import money, phones
from mmo_core.errors import (
    InvalidRequest,
    MmoError,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderUnavailable,
)
from mmo_core.registry import Provider
from mmo_core.types import AccountInfo, BalanceReport, StatusReport

from mmo_host import db, payments
from mmo_host.auth import api_key_guard
from mmo_host.controllers.payments import IdempotencyKey
from mmo_host.gateway import Gateway
from mmo_host.schemas import PaymentResource

log = logging.getLogger("mmo.operations")

CLAIM = "mmo_reversal"  # the key of the reversal claim in a payment's provider_data
# claim states that forbid another reversal attempt
BLOCKING = frozenset({"in_progress", "pending", "reversed", "unknown"})


class ReversalCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payments/{id}/reversal`. Without `amount`, the whole payment."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    amount: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^\d+(\.\d+)?$")] | None
    ) = None


class Conflict(MmoError):
    """The payment's state forbids the request (the code says which state)."""

    code = "conflict"
    http_status = 409


class ProviderError(MmoError):
    """The provider's hook failed in an unexpected way (a bug; logged with its trace)."""

    code = "provider_error"
    http_status = 502


# -- helpers ------------------------------------------------------------------------------


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _request_hash(body: ReversalCreate) -> str:
    canonical = msgspec.json.encode(msgspec.to_builtins(body), order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _claim_of(row: Any) -> dict[str, Any] | None:
    claim = db.loads(row["provider_data"], {}).get(CLAIM)
    return claim if isinstance(claim, dict) else None


async def _write_claim(row: Any, claim: dict[str, Any]) -> Any:
    """Record the claim on the payment, its status unchanged.

    `apply_transition` to the payment's own status is not an allowed change: it leaves the
    status and history alone and only merges `provider_data` (under the row lock).
    """
    transition = await payments.apply_transition(
        row["id"], row["status"], source="api", provider_data={CLAIM: claim}
    )
    return transition.row


def _check_amount(body: ReversalCreate, row: Any, provider: Provider) -> Decimal | None:
    if body.amount is None:
        return None
    currency = row["currency"]
    amount = money.parse_amount(body.amount, currency)
    limit = provider.declaration.limit_for(currency)
    if limit is not None and limit.whole_units_only and not money.is_whole(amount):
        raise InvalidRequest(
            f"{provider.declaration.display_name} takes whole {currency} amounts only",
            code="invalid_amount",
            provider=provider.name,
        )
    if money.to_minor(amount, currency) > row["amount_minor"]:
        raise InvalidRequest(
            "The reversal amount is more than the payment's "
            f"{money.format_amount(row['amount_minor'], currency)} {currency}",
            code="amount_too_large",
        )
    return amount


def _replay(row: Any, claim: dict[str, Any] | None, key: str | None, digest: str) -> Any:
    """The answer to a retried request (same Idempotency-Key), or None for a new one."""
    if key is None or claim is None or claim.get("idempotency_key") != key:
        return None
    if claim.get("request_hash") != digest:
        raise payments.IdempotencyConflict(
            "This Idempotency-Key was already used with a different reversal request"
        )
    state = claim.get("state")
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


def _check_reversible(row: Any, claim: dict[str, Any] | None) -> None:
    status = row["status"]
    if status == "reversed" or (claim and claim.get("state") == "reversed"):
        raise Conflict("The payment is already reversed", code="already_reversed")
    if status != "succeeded":
        raise Conflict(
            f"Only a succeeded payment can be reversed; this one is {status}",
            code="payment_not_succeeded",
        )
    if claim and claim.get("state") in BLOCKING:
        raise Conflict(
            "A reversal of this payment is already in progress (or its outcome is unknown)",
            code="reversal_in_progress",
        )


# -- the controller ---------------------------------------------------------------------------


class OperationsController(Controller):
    path = "/api/v1"
    guards = [api_key_guard]
    security = [{"BearerToken": []}]

    @post(
        "/payments/{payment_id:str}/reversal",
        name="payments:reverse",
        operation_id="reversePayment",
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
        row = await payments.get(payment_id)
        if row["client_id"] != request.state.client_id:
            raise payments.PaymentNotFound(f"No payment {payment_id!r}")
        digest = _request_hash(data)
        replayed = _replay(row, _claim_of(row), idempotency_key, digest)
        if replayed is not None:
            return replayed
        _check_reversible(row, _claim_of(row))
        provider = gateway.registry.get(row["provider"])
        _require(provider, "reverse", "reversal")
        amount = _check_amount(data, row, provider)

        claim: dict[str, Any] = {
            "state": "in_progress",
            "amount": _amount_text(amount, row["currency"]),
            "reason": data.reason,
            "idempotency_key": idempotency_key,
            "request_hash": digest,
            "at": _now(),
        }
        async with db.transaction():
            locked = await db.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE", row["id"])
            replayed = _replay(locked, _claim_of(locked), idempotency_key, digest)
            if replayed is not None:
                return replayed
            _check_reversible(locked, _claim_of(locked))
            row = await _write_claim(locked, claim)

        log.info("payment %s: reversal requested (%s)", row["id"], claim["amount"] or "full")
        report = await self._call_reverse(gateway, row, claim, amount, data.reason)
        outcome = {
            **claim,
            "at": _now(),
            "provider_reference": report.provider_reference,
            "provider_transaction_id": report.provider_transaction_id,
            "provider_data": report.provider_data,
        }
        if report.status == "reversed":
            outcome["state"] = "reversed"
            transition = await payments.apply_transition(
                row["id"],
                "reversed",
                source="api",
                provider_data={CLAIM: outcome},
                detail={
                    "reversal": True,
                    "amount": claim["amount"],
                    "partial": amount is not None
                    and money.to_minor(amount, row["currency"]) < row["amount_minor"],
                    "reason": data.reason,
                    "provider_transaction_id": report.provider_transaction_id,
                },
            )
            log.info("payment %s: reversed", row["id"])
            return Response(payments.resource(transition.row), status_code=200)
        outcome["state"] = "pending"
        row = await _write_claim(row, outcome)
        log.info("payment %s: reversal pending with the operator", row["id"])
        return Response(payments.resource(row), status_code=202)

    @staticmethod
    async def _call_reverse(
        gateway: Gateway, row: Any, claim: dict[str, Any], amount: Decimal | None, reason: str
    ) -> StatusReport:
        """The provider's answer; every failure releases or keeps the claim, then raises."""

        async def settle(state: str, error: str) -> None:
            await _write_claim(row, {**claim, "state": state, "error": error, "at": _now()})

        try:
            report = await payments.call_operator(
                gateway, row, "reverse", payment=payments.to_core(row), amount=amount, reason=reason
            )
        except payments.BreakerOpen:
            await settle("failed", "breaker_open")
            raise ProviderUnavailable(
                "The provider's circuit breaker is open: retry later", provider=row["provider"]
            ) from None
        except OutcomeUnknown as exc:
            await settle("unknown", exc.code)
            log.warning("payment %s: reversal outcome unknown: %s", row["id"], exc.message)
            raise
        except MmoError as exc:
            # a refusal, or a request that certainly did not take effect: may be tried again
            await settle("failed", exc.code)
            raise
        except TimeoutError:
            await settle("unknown", "timeout")
            log.warning("payment %s: reverse did not return in time", row["id"])
            raise OutcomeUnknown(
                "The operator did not answer in time; the reversal may have taken effect and "
                "is not sent again",
                provider=row["provider"],
            ) from None
        except Exception:
            await settle("unknown", "provider_error")
            log.exception("payment %s: provider %s raised on reverse", row["id"], row["provider"])
            raise ProviderError(
                "The provider failed on the reversal; its outcome is unknown",
                provider=row["provider"],
            ) from None
        if not isinstance(report, StatusReport) or report.status not in ("reversed", "pending"):
            status = getattr(report, "status", type(report).__name__)
            if status in ("failed", "expired"):
                failure = report.failure
                await settle("failed", failure.code if failure else status)
                raise OperatorDeclined(
                    failure.message if failure else "The operator refused the reversal",
                    provider=row["provider"],
                    provider_code=failure.code if failure else None,
                    provider_message=failure.message if failure else None,
                )
            await settle("unknown", f"unexpected_status:{status}")
            log.error("payment %s: reverse answered %r", row["id"], status)
            raise ProviderError(
                f"The provider answered the reversal with {status!r}; its outcome is unknown",
                provider=row["provider"],
            )
        return report

    # -- admin --------------------------------------------------------------------------------

    @get(
        "/admin/providers/{name:str}/balance",
        name="admin:provider-balance",
        operation_id="providerBalance",
        summary="The business's balances with a provider's operator",
        tags=["admin"],
    )
    async def balance(self, request: Request, name: FromPath[str]) -> dict[str, Any]:
        gateway: Gateway = request.app.state.gateway
        provider = gateway.registry.get(name)
        _require(provider, "balance", "balance")
        report = await _call_admin(gateway, provider, "balance")
        if not isinstance(report, BalanceReport):
            raise ProviderError("The provider answered the balance query with nothing usable")
        return {
            "provider": provider.name,
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
        operation_id="providerAccount",
        summary="Whether a wallet exists and is active, and its holder's name",
        tags=["admin"],
    )
    async def account(
        self, request: Request, name: FromPath[str], msisdn: FromPath[str]
    ) -> dict[str, Any]:
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
        info = await _call_admin(gateway, provider, "lookup_account", msisdn=number)
        if not isinstance(info, AccountInfo):
            raise ProviderError("The provider answered the lookup with nothing usable")
        log.info("provider %s: looked up %s", provider.name, phones.mask(number))
        return {
            "provider": provider.name,
            "msisdn": number,
            "active": info.active,
            "name": info.name,
            "details": msgspec.to_builtins(info.details),
        }


async def _call_admin(gateway: Gateway, provider: Provider, hook: str, **kwargs: Any) -> Any:
    """A provider hook not about a payment, through the provider's (country-less) breaker."""
    target = {"provider": provider.name, "country": None}
    try:
        return await payments.call_operator(gateway, target, hook, **kwargs)
    except payments.BreakerOpen:
        raise ProviderUnavailable(
            "The provider's circuit breaker is open: retry later", provider=provider.name
        ) from None
    except TimeoutError:
        raise ProviderUnavailable(
            "The operator did not answer in time", code="provider_timeout", provider=provider.name
        ) from None
    except MmoError:
        raise
    except Exception:
        log.exception("provider %s raised on %s", provider.name, hook)
        raise ProviderError(f"The provider failed on {hook}", provider=provider.name) from None
