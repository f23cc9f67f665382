"""The hook implementations of Orange Money, dispatched by API family.

Orange has three APIs, each in its own module: `webpay` (the payer approves on Orange's
page), `cameroon` (Orange Cameroon omcoreapis, USSD push) and `sonatel` (the Senegal
Orange Money API). A payment's family is the one `initiate` stored in `provider_data`,
else the one the settings give its country; the hooks here check what every family
shares and hand the call to that family's module.
"""

from __future__ import annotations

from decimal import Decimal

from mmo_core import hookimpl
from mmo_core.context import ProviderContext
from mmo_core.errors import InvalidRequest, NotSupported
from mmo_core.operator import probe
from mmo_core.types import (
    AmountLimit,
    BalanceReport,
    CallbackOutcome,
    HealthReport,
    InboundCallback,
    InitiateResult,
    Market,
    Network,
    Payment,
    ProviderDeclaration,
    SetupReport,
    StatusReport,
    WebhookReply,
)

from mmo_orange import cameroon, client, sonatel, webpay
from mmo_orange.client import NAME
from mmo_orange.settings import OrangeSettings

# Where Orange Money runs, with the currency its wallets hold there [notes §6].
MARKETS = (
    Market("CI", "XOF"),
    Market("ML", "XOF"),
    Market("SN", "XOF"),
    Market("NE", "XOF"),
    Market("GW", "XOF"),
    Market("CM", "XAF"),
    Market("CF", "XAF"),
    Market("GN", "GNF"),
    Market("MG", "MGA"),
    Market("CD", "CDF"),
    Market("BW", "BWP"),
    Market("SL", "SLE"),
    Market("LR", "LRD"),
)
_MAXIMUM = {"XOF": 2_000_000, "XAF": 2_000_000, "GNF": 30_000_000}

DECLARATION = ProviderDeclaration(
    name=NAME,
    display_name="Orange Money",
    description=(
        "Orange Money by country: WebPay (redirect to Orange's payment page), Orange "
        "Cameroon merchant payment (USSD push) with cash-in, and the Senegal Orange Money "
        "API (merchant payment confirmed on #144# or by OTP, cash-in, balance)."
    ),
    countries=tuple(dict.fromkeys(m.country for m in MARKETS)),
    currencies=tuple(dict.fromkeys(m.currency for m in MARKETS)),
    markets=MARKETS,
    networks=tuple(Network(m.country, "orange") for m in MARKETS),
    # balance: the Senegal (Sonatel) API only; `balance` raises NotSupported without it.
    # resend_prompt: Orange Cameroon merchant payments only (`mp/push`); NotSupported elsewhere
    operations=("collection", "disbursement", "balance", "resend_prompt"),
    # WebPay's documented amounts are integers; decimals are unverified, so whole units only
    limits=tuple(
        AmountLimit(
            currency=currency,
            minimum=Decimal(1),
            maximum=Decimal(_MAXIMUM[currency]) if currency in _MAXIMUM else None,
            whole_units_only=True,
        )
        for currency in dict.fromkeys(m.currency for m in MARKETS)
    ),
    webhook_kinds=("callback", "status"),
    webhook_path="orange-money",
    settings=OrangeSettings,
)


def _family(context: ProviderContext, payment: Payment) -> str:
    return str(
        payment.provider_data.get("family")
        or client.settings_of(context).family_for(payment.country)
    )


@hookimpl
def mmo_provider() -> ProviderDeclaration:
    return DECLARATION


@hookimpl
def validate(context: ProviderContext, payment: Payment) -> None:
    if not DECLARATION.serves(payment.country, payment.currency):
        raise InvalidRequest(
            f"Orange Money does not take {payment.currency} in {payment.country}", provider=NAME
        )
    family = client.settings_of(context).family_for(payment.country)
    if family == "webpay":
        webpay.validate(context, payment)
        return
    if payment.type == "remittance":
        raise NotSupported(f"Orange Money has no remittance in {payment.country}", provider=NAME)
    if family == "sonatel":
        sonatel.validate(payment)
    else:
        cameroon.validate(payment)


@hookimpl
async def prepare(context: ProviderContext, payment: Payment) -> InitiateResult | None:
    """The step before money moves, where the family has one: WebPay's `webpayment` (the
    payer's page) and Orange Cameroon's `init` (the payToken). Sonatel has none: its
    transactionId is the answer of the call that moves money."""
    family = _family(context, payment)
    if family == "webpay":
        return await webpay.prepare(context, payment)
    if family == "sonatel":
        return None
    return await cameroon.prepare(context, payment)


@hookimpl
async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    validate(context, payment)
    family = _family(context, payment)
    if family == "webpay":
        return await webpay.initiate(context, payment)
    if family == "sonatel":
        return await sonatel.initiate(context, payment)
    return await cameroon.initiate(context, payment)


@hookimpl
async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    family = _family(context, payment)
    if family == "webpay":
        return await webpay.status(context, payment)
    if family == "sonatel":
        return await sonatel.status(context, payment)
    return await cameroon.status(context, payment)


@hookimpl
async def parse_callback(context: ProviderContext, callback: InboundCallback) -> CallbackOutcome:
    payment_id = context.verify_callback(callback)
    if callback.kind == "callback" and sonatel.is_callback(callback):
        # the merchant callback registered with Sonatel: its echoed apiKey is checked first
        update = sonatel.update(context, callback)
    elif callback.kind == "callback":
        update = webpay.update(callback)
    else:
        update = cameroon.update(callback, payment_id)
    # Orange signs nothing: the host confirms a final status with `status` before applying
    return CallbackOutcome(
        reply=WebhookReply(status_code=200, body={"status": "OK"}),
        update=update,
        authenticated=False,
    )


@hookimpl
async def health(context: ProviderContext) -> HealthReport:
    """A new token of every enabled family, bypassing the cache (the core's probe)."""
    families = client.settings_of(context).enabled_families()

    async def fresh_tokens() -> None:
        for family in families:
            await client.operator(context, family).fresh_token()

    return await probe(fresh_tokens, detail=f"token ok ({', '.join(families)})")


@hookimpl
async def balance(context: ProviderContext) -> BalanceReport:
    """The retailer wallet's balance: only the Senegal (Sonatel) API tells it."""
    if not client.settings_of(context).uses("sonatel"):
        raise NotSupported(
            "Orange Money balance is offered only by the Senegal (Sonatel) API; WebPay and "
            "Orange Cameroon have none. Map a country to it (MMO_ORANGE_FAMILIES=SN:sonatel).",
            provider=NAME,
        )
    return await sonatel.balance(context)


@hookimpl
async def setup(context: ProviderContext) -> SetupReport:
    """Register our callback URL and apiKey for the merchant code with Sonatel."""
    if not client.settings_of(context).uses("sonatel"):
        return SetupReport(lines=("No country uses the Senegal (Sonatel) API: nothing to do.",))
    return await sonatel.setup(context)


@hookimpl
async def resend_prompt(context: ProviderContext, payment: Payment) -> None:
    """Send the payer's approval prompt again: Orange Cameroon `GET mp/push/{payToken}`.

    Only Orange Cameroon merchant payments have such an endpoint [O7, O15]. Orange refuses a
    push for a payToken that is no longer pending (paid, failed, expired): that refusal is an
    `InvalidRequest` (code `not_pending`), Orange's own code and text kept.
    """
    family = _family(context, payment)
    if family == "webpay":
        raise NotSupported(
            "Orange WebPay has no prompt to resend: the payer approves on Orange's payment "
            "page; send them the payment's redirect URL (next_action) again",
            provider=NAME,
        )
    if family == "sonatel":
        raise NotSupported(
            "Orange Senegal (Sonatel) has no endpoint to resend a payment prompt: the payer "
            "confirms the pending payment on #144#",
            provider=NAME,
        )
    await cameroon.resend_prompt(context, payment)


@hookimpl
def simulator_app(settings: OrangeSettings, accounts: dict[str, OrangeSettings] | None = None):
    """One simulator for every account (`{"default": settings}` when called with
    `settings` only): each account's credentials, merchant key, channel user and merchant
    code are its own, and its resources are refused to the others."""
    from mmo_orange.simulator import create_simulator

    return create_simulator(settings, accounts)
