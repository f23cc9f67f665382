# mypy: disable-error-code="empty-body"
# (hook specs are declarations: their bodies are their docstrings)
"""The provider contract, as pluggy hook specifications (project name ``mmo``).

Plugins import ``hookimpl`` from here and nothing else of pluggy. An implementation may
accept any subset of a hook's arguments.

How calls are dispatched (see docs/plugins.md): a provider is one plugin object registered
under its name. Every payment hook is called on exactly one provider, the one the payment
belongs to; the host never broadcasts them. Payment hooks are ``async def``: the host calls
the provider's implementation through a per-provider hook caller and awaits the coroutine
it returns. ``mmo_provider``, ``validate`` and ``simulator_app`` are plain functions.
No hook uses ``firstresult``: an async implementation returns a coroutine, never None.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mmo_core.context import ProviderContext
    from mmo_core.settings import ProviderSettings
    from mmo_core.types import (
        AccountInfo,
        BalanceReport,
        CallbackOutcome,
        HealthReport,
        InboundCallback,
        InboundPayment,
        InitiateResult,
        Payment,
        ProviderDeclaration,
        Reversal,
        SetupReport,
        StatusReport,
    )

PROJECT_NAME = "mmo"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

REQUIRED_HOOKS: tuple[str, ...] = ("mmo_provider", "initiate", "status", "parse_callback", "health")
OPTIONAL_HOOKS: tuple[str, ...] = (
    "validate",
    "prepare",
    "reverse",
    "reversal_status",
    "inbound_status",
    "balance",
    "lookup_account",
    "resend_prompt",
    "setup",
    "simulator_app",
)


# ---------------------------------------------------------------------------------------------
# Declaration
# ---------------------------------------------------------------------------------------------


@hookspec
def mmo_provider() -> ProviderDeclaration:
    """Declare the provider: name, countries, currencies, operations, limits, settings.

    Required. Called once when the provider is registered. The declared ``name`` must equal
    the provider's entry-point name in the ``mmo.providers`` group.
    """


# ---------------------------------------------------------------------------------------------
# Payments
# ---------------------------------------------------------------------------------------------


@hookspec
def validate(context: ProviderContext, payment: Payment) -> None:
    """Check a payment request before it is stored (synchronous, no I/O).

    Optional. Raise ``InvalidRequest`` for anything the operator would refuse by its rules
    (a number it cannot serve, an amount it does not take, a reference too long). The host
    has already checked the currency exponent and the declared limits.

    :param context: the provider's context (settings, clients, callback URLs).
    :param payment: the payment as it will be stored; no provider fields yet.
    :return: None when the request is acceptable.
    """


@hookspec
async def prepare(context: ProviderContext, payment: Payment) -> InitiateResult | None:
    """Take the operator's identifier of a payment before any money moves ("persist
    before you pay").

    Optional. For an operator whose flow has a step before the money-moving call (Orange
    Cameroon's ``mp/init`` payToken, Orange WebPay's ``webpayment``): make that call and
    return what must be kept so that ``status`` can always ask the operator afterwards.
    The host stores ``provider_reference`` and ``provider_data`` on the payment in its own
    committed transaction, then calls ``initiate`` with the payment carrying them; a crash
    in between leaves a payment the operator can be asked about. Called through the
    host's operator call (breaker, timeout): any failure leaves the payment ``new`` and
    queued like a call that was not sent, so this step must move no money. The host calls
    it only for a payment with no ``provider_reference`` yet; return None when there is
    nothing to store.

    :param context: the provider's context.
    :param payment: the stored ``new`` payment, with what an earlier ``prepare`` stored.
    :return: the identifiers to store (``status`` and ``next_action`` are not read), or
        None when there is nothing to store.
    """


@hookspec
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    """Start a collection, disbursement or remittance with the operator.

    Required. Called once per payment, outside any database transaction, after
    ``prepare`` (when implemented) and what it returned was stored. Raise
    ``OperatorDeclined`` for a definite refusal, ``ProviderUnavailable`` when the request
    certainly did not reach the operator, ``OutcomeUnknown`` when it may have (timeout
    after sending): the host then reconciles it through ``status`` and never resends it
    unless the provider declared resends safe.

    :param context: the provider's context.
    :param payment: the stored payment; ``payment.id`` is a UUID usable as idempotency key.
    :return: the operator's acknowledgement, with its reference for later lookups.
    """


@hookspec
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    """Ask the operator where a payment stands.

    Required. Used for polling, for confirming unsigned callbacks and for reconciliation.
    Raise ``ProviderUnavailable`` when the operator cannot answer now.

    :param context: the provider's context.
    :param payment: the stored payment, with what ``initiate`` returned.
    :return: the operator's view of the payment.
    """


@hookspec
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    """Authenticate an operator's webhook and turn it into a typed outcome.

    Required. The raw request is already stored. Verify the token or signature on the raw
    bytes first (raise ``CallbackVerificationFailed``), then decode (raise ``InvalidRequest``
    for a malformed body). Return the reply the operator expects and, when the callback
    is about a payment, a ``PaymentUpdate``.

    :param context: the provider's context.
    :param callback: the request exactly as received.
    :return: the outcome; ``authenticated=False`` makes the host confirm a final state with
        ``status`` before applying it.
    """


@hookspec
async def health(context: ProviderContext) -> HealthReport:
    """Tell whether the operator is reachable and our credential is accepted.

    Required. Called for every provider (one by one) by the readiness and admin endpoints.
    Must not raise for an operator outage: return ``HealthReport(ok=False, detail=...)``.
    """


# ---------------------------------------------------------------------------------------------
# Optional operations
# ---------------------------------------------------------------------------------------------


@hookspec
async def reverse(
    context: ProviderContext,
    payment: Payment,
    amount: Decimal | None,
    reason: str,
    reversal_id: str,
) -> StatusReport:
    """Reverse or refund a succeeded payment (all of it when ``amount`` is None).

    Optional; declare the ``reversal`` operation when implemented. Return the reversal's
    state: ``reversed`` when done, ``pending`` when the operator answers later.

    :param reversal_id: a UUID the host gives each reversal of a payment, the same on every
        retry of that reversal: the operator's idempotency key where it takes one, so a
        payment can be refunded in several parts and a retried refund is never doubled.
    """


@hookspec
async def reversal_status(
    context: ProviderContext, payment: Payment, reversal: Reversal
) -> StatusReport:
    """Ask the operator where a reversal stands that `reverse` left pending or unknown.

    Optional (with ``reverse``). The host's worker calls it until the reversal is final:
    return ``reversed``, ``failed`` (with the operator's failure) or ``pending``; raise
    ``UnknownToOperator`` when the operator has no record of it (it never arrived).
    """


@hookspec
async def inbound_status(context: ProviderContext, inbound: InboundPayment) -> StatusReport:
    """Ask the operator about a payment it reported that the gateway did not start.

    Optional. Before an operator-reported payment (``CallbackOutcome.inbound``) settles an
    open collection, the host asks: return ``succeeded`` (with the amount the operator
    holds) when the operator's records show ``inbound.provider_transaction_id`` done,
    anything else otherwise. Without this hook the host trusts the callback's URL token.
    """


@hookspec
async def balance(context: ProviderContext) -> BalanceReport:
    """Return the balances of the business's accounts with the operator.

    Optional; declare the ``balance`` operation when implemented.
    """


@hookspec
async def lookup_account(context: ProviderContext, msisdn: str) -> AccountInfo:
    """Tell whether a wallet exists and is active, and the holder's name where available.

    Optional; declare the ``lookup`` operation when implemented.
    """


@hookspec
async def resend_prompt(context: ProviderContext, payment: Payment) -> None:
    """Send the payer's approval prompt (USSD push) of a pending collection again.

    Optional; declare the ``resend_prompt`` operation when implemented. Raise
    ``InvalidRequest`` when the payment can no longer be prompted (paid, expired).
    """


@hookspec
async def setup(context: ProviderContext) -> SetupReport:
    """Run the operator's one-time setup (URL registration, sandbox provisioning).

    Optional. Run by ``mmo setup <provider>``; must be safe to run again.
    """


# ---------------------------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------------------------


@hookspec
def simulator_app(settings: ProviderSettings, accounts: dict[str, ProviderSettings]) -> Any:
    """Return an ASGI application that simulates the operator's sandbox.

    Optional but expected of every provider. Served alone by ``mmo simulate <provider>`` and
    mounted by ``mmo serve`` in the sandbox environment. It must serve
    ``GET /_simulator/ledger`` (``?account=<name>`` for one account's entries; every entry
    names its ``account``) and ``POST /_simulator/faults``.

    One simulator serves every account at once, each with its own credentials and ledger:
    a token is issued for one account's credentials, and one account's token on another
    account's resources is refused the way the operator refuses it.

    :param settings: the settings of the first account (credentials it accepts).
    :param accounts: every account's settings by account name, ``settings`` included
        (``{"default": settings}`` when there is one account).
    """
