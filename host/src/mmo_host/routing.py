"""Which provider takes a payment: the one owner of that decision.

A number says its country (phonenumbers) and its mobile network: the configured prefix
table `MMO_NETWORK_PREFIXES` first (numbers are ported between networks), else the carrier
data phonenumbers ships (`phones.network_of`). The provider is the installed one that
declares that network in that country (`ProviderDeclaration.networks`), offers the
operation and holds wallets in the payment's currency there. A provider that declares no
network (the template `example`) is used only when a payment names it; a named provider
always wins, once checked.

Where several providers match, the routing policy (`MMO_ROUTING_POLICY`, per country and
operation) names the preferred one, then `MMO_PROVIDER_PRIORITY`, then the name decides.
While the chosen provider's breaker is open, the policy says what to do: `queue` (store the
payment and send it when the operator is back, the default) or `fail_fast` (503 with
`Retry-After`, nothing stored).

The provider chosen, the account of it follows (mmo_core.accounts): the one named in the
payment, else the accounts that serve the country, currency and operation, highest
`priority` first. While that account's breaker is open, the next account that serves the
same payment takes it (`fallback`): the same operator reached through another of the
business's accounts, never another operator, which would be another wallet.

The payment keeps the decision (`payments.routing`: network, provider, account, reason);
`predict` and `catalogue` (the `/api/v1/providers` routes) answer from the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec
from mmo_core import phones
from mmo_core.accounts import Account
from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.errors import ConfigurationError, InvalidRequest, NotSupported, ProviderUnavailable
from mmo_core.registry import Provider, ProviderRegistry
from mmo_core.types import OPERATIONS, Market, ProviderDeclaration

from mmo_host.breaker import breaker_key
from mmo_host.config import HostConfig

# why a provider was chosen (the `reason` of a payment's `routing`)
Reason = Literal["requested", "network", "prefix", "preferred", "priority", "fallback"]
WhenDown = Literal["queue", "fail_fast"]

_PREFIX_ENTRY = re.compile(r"^([A-Z]{2}):\+?(\d{1,15})=([a-z0-9_]+)$")
_POLICY_ENTRY = re.compile(r"^([A-Z]{2})/([a-z_]+)=([a-z0-9_]+)(?::(queue|fail_fast))?$")


@dataclass(frozen=True)
class NetworkPrefix:
    """`KE:25475=airtel`: numbers of KE starting +25475 are on Airtel, whatever
    phonenumbers says."""

    country: str
    prefix: str
    network: str


@dataclass(frozen=True)
class Policy:
    """`KE/collection=mpesa:fail_fast`: who takes KE collections first, and what to do
    while it is down."""

    country: str
    operation: str
    provider: str
    when_down: WhenDown = "queue"


@dataclass(frozen=True)
class Located:
    """Where a number's wallet is: its country and network (None when not known), and
    where the network came from (`prefix`: the configured table, `carrier`: phonenumbers)."""

    country: str
    network: str | None
    source: Literal["prefix", "carrier", "unknown"]


@dataclass(frozen=True)
class Decision:
    provider: Provider
    located: Located
    reason: Reason
    policy: Policy | None = None
    account: str = DEFAULT_ACCOUNT
    # the other accounts that take the same payment, in order (for `fallback`)
    alternatives: tuple[str, ...] = ()
    # the account it would have gone to, when its breaker was open
    fallback_from: str | None = None

    def record(self) -> dict[str, Any]:
        """What the payment keeps and shows as `routing`."""
        found = {
            "network": self.located.network,
            "provider": self.provider.name,
            "account": self.account,
            "reason": self.reason,
        }
        if self.fallback_from is not None:
            found["fallback_from"] = self.fallback_from
        return found


def _entries(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_prefixes(text: str) -> tuple[NetworkPrefix, ...]:
    """`MMO_NETWORK_PREFIXES`; a malformed entry stops start-up naming it."""
    found = []
    for entry in _entries(text):
        match = _PREFIX_ENTRY.match(entry)
        if match is None:
            raise ConfigurationError(
                f"MMO_NETWORK_PREFIXES: {entry!r} is not COUNTRY:PREFIX=network "
                "(e.g. KE:25475=airtel)"
            )
        found.append(NetworkPrefix(*match.groups()))
    # the longest prefix is looked at first
    return tuple(sorted(found, key=lambda p: -len(p.prefix)))


def parse_policy(text: str, operations: tuple[str, ...]) -> dict[tuple[str, str], Policy]:
    """`MMO_ROUTING_POLICY`; a malformed entry stops start-up naming it."""
    found: dict[tuple[str, str], Policy] = {}
    for entry in _entries(text):
        match = _POLICY_ENTRY.match(entry)
        if match is None or match.group(2) not in operations:
            raise ConfigurationError(
                f"MMO_ROUTING_POLICY: {entry!r} is not COUNTRY/operation=provider[:queue|"
                "fail_fast] (e.g. KE/collection=mpesa:fail_fast)"
            )
        country, operation, provider, down = match.groups()
        when_down: WhenDown = "fail_fast" if down == "fail_fast" else "queue"
        found[(country, operation)] = Policy(country, operation, provider, when_down)
    return found


def check_serves(provider: Provider, operation: str, country: str, currency: str) -> None:
    """Raise NotSupported when `provider` does not take this payment."""
    d = provider.declaration
    if operation not in d.operations:
        raise NotSupported(f"{d.display_name} does not offer {operation}", provider=d.name)
    if country not in d.countries:
        raise NotSupported(f"{d.display_name} does not serve country {country}", provider=d.name)
    if not d.serves(country, currency):
        raise NotSupported(
            f"{d.display_name} does not take {currency} in country {country}", provider=d.name
        )


class Router:
    """The routing of one gateway: its prefix table, its policy and its providers."""

    def __init__(
        self,
        config: HostConfig,
        registry: ProviderRegistry,
        accounts: Mapping[str, Mapping[str, Account]] | None = None,
    ) -> None:
        self.registry = registry
        self.accounts = accounts or {}
        self.priority = {name: i for i, name in enumerate(config.provider_priority)}
        self.prefixes = parse_prefixes(config.network_prefixes)
        self.policies = parse_policy(config.routing_policy, OPERATIONS)
        self.cooldown = config.breaker_cooldown

    # -- the number -----------------------------------------------------------------------

    def locate(self, msisdn: str) -> Located:
        """Country and network of an E.164 number."""
        country = phones.region_of(msisdn)
        digits = phones.international_digits(msisdn)
        for entry in self.prefixes:
            if entry.country == country and digits.startswith(entry.prefix):
                return Located(country, entry.network, "prefix")
        network = phones.network_of(msisdn)
        return Located(country, network, "carrier" if network else "unknown")

    def serving(self, located: Located, operation: str | None = None) -> list[Provider]:
        """The providers that declare the number's network (and offer `operation`)."""
        return [
            p
            for p in self.registry.providers.values()
            if p.declaration.serves_network(located.country, located.network)
            and (operation is None or operation in p.declaration.operations)
        ]

    # -- the decision -----------------------------------------------------------------------

    def choose(
        self,
        *,
        requested: str | None,
        operation: str,
        msisdn: str,
        currency: str,
        account: str | None = None,
    ) -> Decision:
        """The provider and account for a payment to or from `msisdn`;
        InvalidRequest/NotSupported (422) when none takes it."""
        decision = self._provider(requested, operation, msisdn, currency)
        return self._account(decision, operation, currency, account)

    def _provider(
        self, requested: str | None, operation: str, msisdn: str, currency: str
    ) -> Decision:
        located = self.locate(msisdn)
        if requested is not None:
            if requested not in self.registry.providers:
                raise InvalidRequest(
                    f"Unknown or disabled provider {requested!r}", code="unknown_provider"
                )
            provider = self.registry.providers[requested]
            check_serves(provider, operation, located.country, currency)
            return Decision(provider, located, "requested")
        serving = self.serving(located, operation)
        if not serving:
            raise NotSupported(
                f"No installed provider offers {operation} for {_network_text(located)} "
                f"numbers in country {located.country}",
                code="no_provider",
                details={"country": located.country, "network": located.network},
            )
        takes = [p for p in serving if p.declaration.serves(located.country, currency)]
        if not takes:
            accepted = sorted(
                {c for p in serving for c in p.declaration.currencies_in(located.country)}
            )
            raise InvalidRequest(
                f"Wallets of {_network_text(located)} in country {located.country} hold "
                f"{', '.join(accepted)}, not {currency}",
                code="unsupported_currency",
                details={"country": located.country, "accepted_currencies": accepted},
            )
        return self._pick(takes, located, operation)

    def accounts_for(
        self, provider: str, country: str, currency: str | None, operation: str | None
    ) -> list[Account]:
        """The provider's accounts that serve this payment, in the order they are tried."""
        accounts = self.accounts.get(provider, {})
        serving = [a for a in accounts.values() if a.serves(country, currency, operation)]
        return sorted(serving, key=lambda a: (-a.priority, a.name != DEFAULT_ACCOUNT, a.name))

    def _account(
        self, decision: Decision, operation: str, currency: str, requested: str | None
    ) -> Decision:
        name = decision.provider.name
        country = decision.located.country
        if name not in self.accounts:  # a router without accounts (tests): one account
            return decision
        if requested is not None:
            account = self.accounts[name].get(requested)
            if account is None:
                raise InvalidRequest(
                    f"{decision.provider.declaration.display_name} has no account {requested!r}",
                    code="unknown_account",
                    details={"accounts": sorted(self.accounts[name])},
                )
            if not account.serves(country, currency, operation):
                raise NotSupported(
                    f"Account {account.key} does not take {operation} in {country}/{currency}",
                    code="account_not_serving",
                    provider=name,
                )
            return replace(decision, account=account.name)
        serving = self.accounts_for(name, country, currency, operation)
        if not serving:
            raise NotSupported(
                f"No account of {decision.provider.declaration.display_name} takes "
                f"{operation} in {country}/{currency}",
                code="no_provider",
                provider=name,
                details={"country": country, "network": decision.located.network},
            )
        return replace(
            decision,
            account=serving[0].name,
            alternatives=tuple(a.name for a in serving[1:]),
        )

    def _pick(self, takes: list[Provider], located: Located, operation: str) -> Decision:
        policy = self.policies.get((located.country, operation))
        if policy is not None:
            for provider in takes:
                if provider.name == policy.provider:
                    return Decision(provider, located, "preferred", policy)
        if len(takes) == 1:
            reason: Reason = "prefix" if located.source == "prefix" else "network"
            return Decision(takes[0], located, reason, policy)
        takes = sorted(takes, key=lambda p: (self.priority.get(p.name, len(self.priority)), p.name))
        return Decision(takes[0], located, "priority", policy)

    async def when_down(self, breakers: Any, decision: Decision) -> Decision:
        """The decision once the chosen account's breaker is looked at: while it is open,
        the next account that takes the same payment and is up (`fallback`); with none,
        a `fail_fast` policy refuses (ProviderUnavailable: 503, Retry-After) and `queue`
        (the default) keeps the decision (the payment waits for the operator)."""
        provider, country = decision.provider, decision.located.country
        if not await self._open(breakers, provider, country, decision.account):
            return decision
        for account in decision.alternatives:
            if not await self._open(breakers, provider, country, account):
                return replace(
                    decision,
                    account=account,
                    reason="fallback",
                    fallback_from=decision.account,
                    alternatives=(),
                )
        policy = decision.policy
        if policy is not None and policy.when_down == "fail_fast":
            raise ProviderUnavailable(
                f"{provider.declaration.display_name} is unavailable in {country}: retry later",
                provider=provider.name,
                retry_after=self.cooldown,
            )
        return decision

    @staticmethod
    async def _open(breakers: Any, provider: Provider, country: str, account: str) -> bool:
        state = await breakers.state(breaker_key(provider, country, account))
        return bool(state.state == "open")

    # -- what the API shows ---------------------------------------------------------------

    def predict(self, msisdn: str) -> dict[str, Any]:
        """Country, network and the provider a payment without `provider` would get, with
        what it takes there (operations, currencies, limits)."""
        located = self.locate(msisdn)
        serving = self.serving(located)
        answer: dict[str, Any] = {
            "msisdn": msisdn,
            "country": located.country,
            "network": located.network,
            "network_source": located.source,
            "provider": None,
        }
        if not serving:
            return answer
        # the provider that would take the first operation it offers (most take collections)
        by_operation: dict[str, str] = {}
        for operation in _operations(serving):
            decision = self._pick(
                [p for p in serving if operation in p.declaration.operations], located, operation
            )
            by_operation[operation] = decision.provider.name
        chosen = self.registry.providers[
            by_operation.get("collection") or next(iter(by_operation.values()))
        ]
        answer["provider"] = chosen.name
        answer["providers"] = by_operation
        answer.update(offer(chosen, located.country))
        return answer

    async def catalogue(self, breakers: Any) -> list[dict[str, Any]]:
        """Every active provider: markets, networks, operations, limits and whether its
        breaker lets calls through now (per country for per-country breakers)."""
        found = []
        for name in sorted(self.registry.providers):
            provider = self.registry.providers[name]
            d = provider.declaration
            accounts = []
            for account in self.accounts.get(name, {}).values() or [None]:
                account_name = account.name if account else DEFAULT_ACCOUNT
                up: dict[str, bool] = {}
                for country in d.countries if d.breaker_per_country else (None,):
                    state = await breakers.state(breaker_key(provider, country, account_name))
                    up[country or "*"] = state.state != "open"
                shown = account.describe() if account else {"name": account_name}
                accounts.append({**shown, "up": all(up.values()), "breakers": up})
            found.append(
                {
                    "name": name,
                    "display_name": d.display_name,
                    "routed": bool(d.networks),
                    "markets": [
                        {"country": m.country, "currency": m.currency} for m in _markets(d)
                    ],
                    "networks": msgspec.to_builtins(d.networks),
                    "operations": list(d.operations),
                    "limits": _limits(provider),
                    # up when one of its accounts is (each account has its own breaker)
                    "up": any(a["up"] for a in accounts),
                    "breakers": accounts[0]["breakers"],
                    "accounts": accounts,
                }
            )
        return found


def _network_text(located: Located) -> str:
    return f"network {located.network}" if located.network else "an unknown network"


def _operations(providers: list[Provider]) -> list[str]:
    return list(dict.fromkeys(op for p in providers for op in p.declaration.operations))


def _markets(d: ProviderDeclaration) -> list[Market]:
    if d.markets:
        return list(d.markets)
    return [Market(c, cur) for c in d.countries for cur in d.currencies]


def _limits(provider: Provider) -> list[dict[str, Any]]:
    # amounts as decimal strings, as everywhere in the API
    return list(msgspec.to_builtins(provider.declaration.limits))


def offer(provider: Provider, country: str) -> Mapping[str, Any]:
    """What `provider` takes in `country`: operations, currencies and their limits."""
    currencies = list(provider.declaration.currencies_in(country))
    return {
        "operations": list(provider.declaration.operations),
        # the wallet currency there (the first, where a country has several: Airtel CD)
        "currency": currencies[0] if currencies else None,
        "currencies": currencies,
        "limits": [item for item in _limits(provider) if item["currency"] in currencies],
    }


__all__ = [
    "Decision",
    "Located",
    "NetworkPrefix",
    "Policy",
    "Router",
    "check_serves",
    "parse_policy",
    "parse_prefixes",
]
