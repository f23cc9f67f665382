"""What crosses the boundary between the host and a provider plugin.

Every value passed to or returned from a hook is one of these msgspec Structs: frozen, so a
plugin cannot change the host's copy; keyword-only, so wide structs stay readable. Money is
a `Decimal` in major units (never a float); phone numbers are E.164 strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

import msgspec

from mmo_core.errors import InvalidRequest

PaymentType = Literal["collection", "disbursement", "remittance"]
PaymentStatus = Literal["new", "pending", "succeeded", "failed", "expired", "unknown", "reversed"]
# What an operator may say about a payment (the host never learns "new" from an operator).
ReportedStatus = Literal["pending", "succeeded", "failed", "expired", "reversed"]
Operation = Literal[
    "collection", "disbursement", "remittance", "reversal", "balance", "lookup", "resend_prompt"
]

PAYMENT_TYPES: tuple[str, ...] = ("collection", "disbursement", "remittance")
PAYMENT_STATUSES: tuple[str, ...] = (
    "new",
    "pending",
    "succeeded",
    "failed",
    "expired",
    "unknown",
    "reversed",
)
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "expired", "reversed"})
OPERATIONS: tuple[str, ...] = (
    "collection",
    "disbursement",
    "remittance",
    "reversal",
    "balance",
    "lookup",
    "resend_prompt",
)


class AmountLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The smallest and largest amount a provider takes in one currency, in major units."""

    currency: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    whole_units_only: bool = False


class Market(msgspec.Struct, frozen=True):
    """A country and the currency a provider's wallets hold there."""

    country: str
    currency: str


class Network(msgspec.Struct, frozen=True):
    """A mobile network in one country ("KE", "safaricom"): the wallets a provider reaches.

    `network` is the small id `phones.network_of` gives ("safaricom", "airtel", "mtn",
    "orange", ...). The host chooses a provider for a number by its country and network.
    """

    country: str
    network: str


class ProviderDeclaration(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider says about itself: returned by its `mmo_provider` hook.

    `name` is the provider id everywhere (entry-point name, settings prefix `MMO_<NAME>_`,
    allow and deny lists). `webhook_path` is the URL segment of its webhook routes
    (`/api/v1/webhooks/<webhook_path>/<kind>`), by default the name; `webhook_aliases`
    are further segments routed to the same provider, for operators that refuse URLs
    containing certain words (Daraja refuses "mpesa"). `settings` is the
    `ProviderSettings` subclass the core fills from the environment.

    `networks` are the mobile networks whose wallets the provider reaches, by country: the
    host routes a payment without a named provider to the one that serves the number's
    network. A provider that declares none is used only when a payment names it.
    """

    name: str
    display_name: str
    countries: tuple[str, ...]
    currencies: tuple[str, ...]
    operations: tuple[Operation, ...]
    limits: tuple[AmountLimit, ...] = ()
    markets: tuple[Market, ...] = ()
    networks: tuple[Network, ...] = ()
    webhook_kinds: tuple[str, ...] = ()
    webhook_path: str | None = None
    webhook_aliases: tuple[str, ...] = ()
    settings: Any = None
    description: str = ""
    # Reliability policy (see docs/operations.md):
    # seconds after `pending` with no callback before the first status query
    poll_after: float = 30.0
    # True when `initiate` may be sent again for the same payment id without paying twice
    # (the operator deduplicates on our id, like MTN's X-Reference-Id)
    resend_safe: bool = False
    # True when the operator's availability differs by country (one breaker per country)
    breaker_per_country: bool = False

    @property
    def route_segment(self) -> str:
        return self.webhook_path or self.name

    def serves(self, country: str, currency: str) -> bool:
        """True when this provider holds `currency` wallets in `country`."""
        if country not in self.countries or currency not in self.currencies:
            return False
        if not self.markets:
            return True
        return Market(country, currency) in self.markets

    def serves_network(self, country: str, network: str | None) -> bool:
        """True when this provider reaches the wallets of `network` in `country`."""
        return network is not None and Network(country, network) in self.networks

    def currencies_in(self, country: str) -> tuple[str, ...]:
        """The currencies of this provider's wallets in `country`."""
        if country not in self.countries:
            return ()
        if not self.markets:
            return self.currencies
        return tuple(m.currency for m in self.markets if m.country == country)

    def limit_for(self, currency: str) -> AmountLimit | None:
        for limit in self.limits:
            if limit.currency == currency:
                return limit
        return None

    def check_amount(self, amount: Decimal, currency: str) -> None:
        """Raise InvalidRequest when `amount` is outside this provider's limits."""
        limit = self.limit_for(currency)
        if limit is None:
            return
        if limit.whole_units_only and amount != amount.to_integral_value():
            raise InvalidRequest(
                f"{self.display_name} takes whole {currency} amounts only",
                code="invalid_amount",
                provider=self.name,
            )
        if limit.minimum is not None and amount < limit.minimum:
            raise InvalidRequest(
                f"The minimum {self.display_name} amount is {limit.minimum} {currency}",
                code="amount_too_small",
                provider=self.name,
            )
        if limit.maximum is not None and amount > limit.maximum:
            raise InvalidRequest(
                f"The maximum {self.display_name} amount is {limit.maximum} {currency}",
                code="amount_too_large",
                provider=self.name,
            )


class Failure(msgspec.Struct, frozen=True):
    """Why a payment failed.

    `code` is the gateway's (one of `mmo_core.failures.CODES`, whichever operator);
    `message` is human text (the operator's when it gave some). `provider_code` and
    `provider_message` keep the operator's own code and text, untouched.
    """

    code: str
    message: str
    provider_code: str | None = None
    provider_message: str | None = None


class NextAction(msgspec.Struct, frozen=True):
    """What the payer must do next, e.g. open the operator's payment page."""

    type: Literal["redirect"]
    url: str


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """A payment as the host hands it to a provider.

    On `initiate` the provider fields are empty; on `status` and `reverse` they hold what the
    provider returned before (`provider_data` is the provider's own bag of identifiers).
    `id` is a UUID, unique and stable: providers may use it as the operator's idempotency key.
    """

    id: str
    type: PaymentType
    amount: Decimal
    currency: str
    msisdn: str
    reference: str
    country: str
    description: str | None = None
    # what the payer sees on the prompt or statement, when the orchestrator set it; a
    # plugin checks it against its operator's limit in `validate`
    payer_message: str | None = None
    metadata: dict[str, Any] = {}
    status: PaymentStatus = "new"
    provider_reference: str | None = None
    provider_transaction_id: str | None = None
    provider_data: dict[str, Any] = {}
    created_at: dt.datetime | None = None
    # what the host has reversed of it so far, and each reversal it made (oldest first):
    # the host, not the provider, tells a partial refund from a full one
    amount_reversed: Decimal = Decimal(0)
    reversals: tuple[Reversal, ...] = ()


class InitiateResult(msgspec.Struct, frozen=True, kw_only=True):
    """The operator took the request. A definite refusal is raised as `OperatorDeclined`."""

    status: Literal["pending", "succeeded"] = "pending"
    provider_reference: str | None = None
    provider_transaction_id: str | None = None
    provider_data: dict[str, Any] = {}
    next_action: NextAction | None = None


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """Where the operator says a payment stands."""

    status: ReportedStatus
    provider_reference: str | None = None
    provider_transaction_id: str | None = None
    failure: Failure | None = None
    amount: Decimal | None = None
    provider_data: dict[str, Any] = {}


# What decoding an operator's body may raise besides msgspec's own errors: a document
# nested past the recursion limit, and invalid UTF-8 inside a string. Catch all of them
# where a body is read; each means the body is malformed.
BODY_ERRORS: tuple[type[Exception], ...] = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    RecursionError,
    UnicodeDecodeError,
)


class InboundCallback(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook request exactly as it arrived (header names in lower case)."""

    provider: str
    kind: str
    method: str
    path: str
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: bytes = b""
    remote_addr: str | None = None

    def json(self, type: Any = Any) -> Any:
        """Decode the body as JSON into `type`; a malformed body is an InvalidRequest."""
        try:
            return msgspec.json.decode(self.body, type=type)
        except BODY_ERRORS as exc:
            raise InvalidRequest(
                f"Malformed callback body: {exc}", code="malformed_callback", provider=self.provider
            ) from None


class WebhookReply(msgspec.Struct, frozen=True, kw_only=True):
    """How to answer the operator: the status code and body its documentation expects."""

    status_code: int = 200
    body: Any = None
    media_type: str = "application/json"


class PaymentUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What a callback says about one payment.

    The host finds the payment by `payment_id` (our id, when the operator echoes it) or by
    `provider_reference`. `amount` and `msisdn`, when the operator sends them, are checked
    against the payment before the update is applied.
    """

    status: ReportedStatus
    payment_id: str | None = None
    provider_reference: str | None = None
    provider_transaction_id: str | None = None
    failure: Failure | None = None
    amount: Decimal | None = None
    msisdn: str | None = None
    provider_data: dict[str, Any] = {}


class Reversal(msgspec.Struct, frozen=True, kw_only=True):
    """One reversal of a payment as the host keeps it, for `reversal_status`.

    `id` is the `reversal_id` the `reverse` hook was given; the other fields are what its
    answer said (`provider_data` included).
    """

    id: str
    amount: Decimal
    currency: str
    status: str
    provider_reference: str | None = None
    provider_transaction_id: str | None = None
    provider_data: dict[str, Any] = {}


class InboundPayment(msgspec.Struct, frozen=True, kw_only=True):
    """A payment the gateway did not start, reported by the operator when it is done.

    A customer paying a till or paybill from their own phone (M-Pesa C2B) is one. The host
    matches it to an open collection of the same provider whose `reference` equals
    `account_reference` and whose amount is the same; otherwise it stores it as a new
    succeeded collection with origin `origin`. `provider_transaction_id` is the operator's
    unique receipt: a second report of it is a duplicate, never a second payment.
    """

    provider_transaction_id: str
    amount: Decimal
    currency: str
    country: str
    msisdn: str | None = None
    account_reference: str | None = None
    payer_name: str | None = None
    occurred_at: str | None = None
    origin: str = "operator"
    provider_data: dict[str, Any] = {}


class CallbackOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The result of `parse_callback`.

    `authenticated` is True when the provider verified a signature over the content; when it
    is False the host confirms a final status with the `status` hook before applying it.
    `inbound` reports a payment the gateway did not start (see `InboundPayment`); its
    callback URL's token is what vouches for it.
    """

    reply: WebhookReply = WebhookReply()
    update: PaymentUpdate | None = None
    inbound: InboundPayment | None = None
    authenticated: bool = False


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    """Can we reach the operator and is our credential valid."""

    ok: bool
    detail: str = ""
    latency_ms: float | None = None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    currency: str
    available: Decimal
    current: Decimal | None = None


class BalanceReport(msgspec.Struct, frozen=True, kw_only=True):
    balances: tuple[Balance, ...]


class AccountInfo(msgspec.Struct, frozen=True, kw_only=True):
    msisdn: str
    active: bool
    name: str | None = None
    details: dict[str, Any] = {}


class SetupReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a one-time setup did, and the settings to keep (printed by `mmo setup`)."""

    lines: tuple[str, ...] = ()
    settings: dict[str, str] = {}


__all__ = [
    "BODY_ERRORS",
    "FINAL_STATUSES",
    "OPERATIONS",
    "PAYMENT_STATUSES",
    "PAYMENT_TYPES",
    "AccountInfo",
    "AmountLimit",
    "Balance",
    "BalanceReport",
    "CallbackOutcome",
    "Failure",
    "HealthReport",
    "InboundCallback",
    "InboundPayment",
    "InitiateResult",
    "Market",
    "Network",
    "NextAction",
    "Operation",
    "Payment",
    "PaymentStatus",
    "PaymentType",
    "PaymentUpdate",
    "ProviderDeclaration",
    "ReportedStatus",
    "Reversal",
    "SetupReport",
    "StatusReport",
    "WebhookReply",
]
