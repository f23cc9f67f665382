"""A test provider that implements every hook, registered explicitly by the tests.

It stands for an operator whose callbacks are unsigned (`authenticated=False`), so the host
must confirm a final status with `status` before applying it. What the "operator" holds is
the module's `OPERATOR` dict, which tests set. Its simulator app only serves the shared
`/_simulator` routes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Litestar
from mmo_core import hookimpl
from mmo_core.context import ProviderContext
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    ProviderUnavailable,
    UnknownToOperator,
)
from mmo_core.settings import ProviderSettings
from mmo_core.simulation import Simulation, simulator_routes
from mmo_core.types import (
    AccountInfo,
    AmountLimit,
    Balance,
    BalanceReport,
    CallbackOutcome,
    Failure,
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

OPERATOR: dict[str, dict[str, Any]] = {}
# what the operator says of each reversal, by reversal id: "reversed", "pending", "failed",
# or "unknown_to_operator" (absent: "pending")
REVERSALS: dict[str, str] = {}
CALLS: list[str] = []
DOWN = {"initiate": False, "status": False}


def reset() -> None:
    OPERATOR.clear()
    REVERSALS.clear()
    RECEIPTS.clear()
    CALLS.clear()
    DOWN.update(initiate=False, status=False)


def reference(payment: Payment) -> str:
    """The operator knows payments by a reference derived from our id."""
    return payment.provider_reference or "FK-" + payment.id[:8]


class FakeSettings(ProviderSettings, kw_only=True, forbid_unknown_fields=True):
    api_key: str = "fake-key"


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return ProviderDeclaration(
        name="fake",
        display_name="Fake Money",
        countries=("TZ",),
        currencies=("TZS",),
        # the suite's numbers +2557123... are on Yas (phonenumbers' carrier data): a payment
        # without a provider for one of them is routed here
        networks=(Network("TZ", "yas"),),
        operations=(
            "collection",
            "disbursement",
            "remittance",
            "reversal",
            "balance",
            "lookup",
            "resend_prompt",
        ),
        limits=(AmountLimit(currency="TZS", minimum=Decimal(100), maximum=Decimal(1_000_000)),),
        webhook_kinds=("notify",),
        webhook_path="fake-money",
        settings=FakeSettings,
    )


@hookimpl
def validate(payment: Payment) -> None:
    CALLS.append("validate")
    if payment.reference.startswith("BAD"):
        raise InvalidRequest("Fake Money refuses references starting with BAD", provider="fake")


@hookimpl
async def prepare(payment: Payment) -> InitiateResult | None:
    """The operator's step before money moves, for references starting with PREP only:
    a reference it issues, stored by the host before `initiate`. Down with `initiate`
    (the operator is down for both steps of a send)."""
    CALLS.append("prepare")
    if DOWN["initiate"]:
        raise ProviderUnavailable("Fake Money is down", provider="fake")
    if payment.reference.startswith("PREPBAD"):
        raise OperatorDeclined(
            "Fake Money will not open this payment",
            provider="fake",
            provider_code="F-14",
            failure_code="payer_not_found",
        )
    if not payment.reference.startswith("PREP") or payment.provider_reference:
        return None
    return InitiateResult(
        provider_reference="FK-P-" + payment.id[:8], provider_data={"prepared": True}
    )


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    CALLS.append("initiate")
    if DOWN["initiate"]:
        raise ProviderUnavailable("Fake Money is down", provider="fake")
    if payment.msisdn.endswith("0001"):
        raise OperatorDeclined(
            "Not enough funds",
            provider="fake",
            provider_code="F-51",
            provider_message="NSF",
            failure_code="insufficient_funds",
        )
    ref = reference(payment)
    OPERATOR[ref] = {"status": "pending", "amount": str(payment.amount)}
    return InitiateResult(provider_reference=ref, provider_data={"fake_ref": ref})


@hookimpl
async def status(payment: Payment) -> StatusReport:
    CALLS.append("status")
    if DOWN["status"]:
        raise ProviderUnavailable("Fake Money is down", provider="fake")
    held = OPERATOR.get(reference(payment))
    if held is None:
        raise UnknownToOperator("No such payment", provider="fake", provider_code="404")
    failure = (
        Failure("F-" + held["status"], "operator says so") if held["status"] == "failed" else None
    )
    return StatusReport(
        status=held["status"], provider_reference=payment.provider_reference, failure=failure
    )


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    CALLS.append("parse_callback")
    context.verify_callback(callback)
    body = callback.json(dict)
    if "receipt" in body:  # a payment the customer made on their own
        return CallbackOutcome(
            reply=WebhookReply(body={"ack": True}),
            inbound=InboundPayment(
                provider_transaction_id=body["receipt"],
                amount=Decimal(body["amount"]),
                currency=body.get("currency", "TZS"),
                country="TZ",
                account_reference=body.get("account"),
                origin="walk-in",
            ),
        )
    if "ref" not in body or "status" not in body:
        raise InvalidRequest("Missing ref or status", provider="fake")
    amount = Decimal(body["amount"]) if "amount" in body else None
    return CallbackOutcome(
        reply=WebhookReply(body={"ack": True}),
        update=PaymentUpdate(status=body["status"], provider_reference=body["ref"], amount=amount),
        authenticated=False,
    )


@hookimpl
async def health() -> HealthReport:
    CALLS.append("health")
    return HealthReport(ok=True, detail="fake ok")


@hookimpl
async def reverse(payment: Payment, amount: Decimal | None, reason: str) -> StatusReport:
    CALLS.append("reverse")
    return StatusReport(status="reversed", provider_reference=payment.provider_reference)


@hookimpl
async def reversal_status(reversal: Reversal) -> StatusReport:
    CALLS.append("reversal_status")
    state = REVERSALS.get(reversal.id, "pending")
    if state == "unknown_to_operator":
        raise UnknownToOperator("No such refund", provider="fake", provider_code="404")
    if state == "failed":
        return StatusReport(status="failed", failure=Failure("R9", "refund refused"))
    return StatusReport(status=state, provider_transaction_id=f"RV-{reversal.id[:6]}")  # type: ignore[arg-type]


# receipts the fake operator holds as done, with their amount (for inbound_status)
RECEIPTS: dict[str, Decimal] = {}


@hookimpl
async def inbound_status(inbound: InboundPayment) -> StatusReport:
    CALLS.append("inbound_status")
    amount = RECEIPTS.get(inbound.provider_transaction_id)
    if amount is None:
        return StatusReport(status="failed", failure=Failure("404", "no such receipt"))
    return StatusReport(
        status="succeeded", provider_transaction_id=inbound.provider_transaction_id, amount=amount
    )


@hookimpl
async def resend_prompt(payment: Payment) -> None:
    CALLS.append("resend_prompt")
    if payment.msisdn.endswith("0009"):
        raise InvalidRequest("The prompt of this payment cannot be sent again", provider="fake")


@hookimpl
async def balance() -> BalanceReport:
    CALLS.append("balance")
    return BalanceReport(
        balances=(Balance(account="main", currency="TZS", available=Decimal(5000)),)
    )


@hookimpl
async def lookup_account(msisdn: str) -> AccountInfo:
    CALLS.append("lookup_account")
    return AccountInfo(msisdn=msisdn, active=True, name="Fake Holder")


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    CALLS.append("setup")
    return SetupReport(lines=("registered",), settings={"MMO_FAKE_API_KEY": "fake-key"})


@hookimpl
def simulator_app(settings: FakeSettings) -> Litestar:
    CALLS.append("simulator_app")
    return Litestar(route_handlers=simulator_routes(Simulation()), openapi_config=None)
