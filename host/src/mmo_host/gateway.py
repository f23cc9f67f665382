"""The running gateway: configuration, providers and their contexts, shared stores.

One `Gateway` is built by the app factory and opened/closed by the app's lifespan. It is
what route handlers and services receive; it knows providers only through the registry.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from mmo_core.accounts import Account, Accounts, account_variable, load_accounts
from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.context import ProviderContext
from mmo_core.errors import ConfigurationError, NotSupported
from mmo_core.http import create_http_client
from mmo_core.registry import Provider, ProviderRegistry
from mmo_core.results import ResultBoard
from mmo_core.settings import ProviderSettings
from mmo_core.tokens import TokenCache

from mmo_host import sources
from mmo_host.breaker import BreakerConfig, MemoryBreakers, RedisBreakers
from mmo_host.config import HostConfig
from mmo_host.keys import Keyring
from mmo_host.routing import Router
from mmo_host.schedule import Schedule

log = logging.getLogger("mmo.gateway")


class Gateway:
    def __init__(self, config: HostConfig, registry: ProviderRegistry) -> None:
        self.config = config
        self.registry = registry
        # every provider's accounts (mmo_core.accounts), and the settings of its first
        self.accounts: dict[str, dict[str, Account]] = {}
        self.settings: dict[str, ProviderSettings] = {}
        self.contexts: dict[tuple[str, str], ProviderContext] = {}
        self.store: Any = None
        self.tokens = TokenCache()
        # what kept a provider (`mpesa`) or one account (`mpesa/brand-a`) from running
        self.configuration_errors: dict[str, str] = {}
        # who an API key is (mmo_host.keys), looked up and cached per gateway
        self.keys = Keyring(config)
        self.breakers: MemoryBreakers | RedisBreakers = MemoryBreakers(BreakerConfig())
        self._event_http: httpx.AsyncClient | None = None
        for name, provider in list(registry.providers.items()):
            self._load_accounts(name, provider)
        # where webhooks may come from (sources.py): read once, a bad entry stops start-up
        self.trusted_proxies = sources.networks(config.trusted_proxies, "MMO_TRUSTED_PROXIES")
        self.allowed_sources = {
            (name, account.name): sources.networks(
                account.settings.allowed_ips, account_variable(name, account.name, "allowed_ips")
            )
            for name, accounts in self.accounts.items()
            for account in accounts.values()
        }
        # every follow-up's delays (schedule.py), from the settings and the providers
        self.schedule = Schedule.from_config(
            config, {n: p.declaration.poll_after for n, p in registry.providers.items()}
        )
        # who takes a payment (routing.py): its prefix table and policy, read once
        self.router = Router(config, registry, self.accounts)

    def _load_accounts(self, name: str, provider: Provider) -> None:
        """The provider's accounts; a bad account is left out and said why (the others
        run); a provider left with none is disabled (in production: start-up stops)."""
        config = self.config
        try:
            found = load_accounts(
                provider.declaration,
                provider.settings_type,
                config.environ,
                config.config_file,
                config.environment,
            )
        except ConfigurationError as exc:  # ambiguous accounts: routing cannot choose
            found = Accounts(problems={"*": exc.message})
        if not found.accounts:
            message = "; ".join(found.problems.values())
            if config.environment == "production":
                raise ConfigurationError(message, provider=name)
            self.configuration_errors[name] = message
            self.registry.unregister(name)
            log.error("provider %s disabled: %s", name, message)
            return
        for account, problem in found.problems.items():
            self.configuration_errors[f"{name}/{account}"] = problem
            log.error("account %s/%s left out: %s", name, account, problem)
        ordered = sorted(
            found.accounts.values(),
            key=lambda a: (a.name != DEFAULT_ACCOUNT, -a.priority, a.name),
        )
        self.accounts[name] = {a.name: a for a in ordered}
        self.settings[name] = ordered[0].settings

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        breaker_config = BreakerConfig(
            threshold=self.config.breaker_threshold,
            window=self.config.breaker_window,
            cooldown=self.config.breaker_cooldown,
        )
        if self.config.redis_url:
            from litestar.stores.redis import RedisStore

            self.store = RedisStore.with_client(url=self.config.redis_url, namespace="mmo")
            self.tokens = TokenCache(self.store.with_namespace("tokens"))
            self.breakers = RedisBreakers(self.store._redis, breaker_config)
        else:
            self.breakers = MemoryBreakers(breaker_config)
        for name, provider in self.registry.providers.items():
            for account in self.accounts[name].values():
                self.contexts[(name, account.name)] = self._context(provider, account)

    def _context(self, provider: Provider, account: Account) -> ProviderContext:
        name, settings = provider.name, account.settings
        base_url = settings.base_url or (
            self.config.simulator_url(name) if self.config.sandbox else ""
        )
        if not base_url:
            raise ConfigurationError(f"No base URL for {account.key}")
        namespace = f"results:{name}" + (
            "" if account.name == DEFAULT_ACCOUNT else f"/{account.name}"
        )
        return ProviderContext(
            declaration=provider.declaration,
            settings=settings,
            http=create_http_client(
                base_url=base_url,
                timeout=min(settings.timeout, self.config.operator_timeout),
                connect_timeout=settings.connect_timeout,
            ),
            tokens=self.tokens,
            public_url=self.config.base_public_url,
            callback_secret=self.config.callback_secret,
            environment=self.config.environment,
            results=ResultBoard(self.store.with_namespace(namespace) if self.store else None),
            account=account.name,
        )

    @property
    def event_http(self) -> httpx.AsyncClient:
        """The client that delivers events to the orchestrator (opened on first use)."""
        if self._event_http is None:
            self._event_http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        return self._event_http

    async def close(self) -> None:
        if self._event_http is not None:
            await self._event_http.aclose()
            self._event_http = None
        for context in self.contexts.values():
            await context.http.aclose()
        self.contexts.clear()
        if self.store is not None:
            await self.store._redis.aclose(close_connection_pool=True)
            self.store = None

    # -- providers -------------------------------------------------------------------------

    def context(self, name: str, account: str | None = None) -> ProviderContext:
        """The context of one account of a provider (its first account when None)."""
        if account is None:
            account = next(iter(self.accounts[name]))
        try:
            return self.contexts[(name, account)]
        except KeyError:
            raise NotSupported(
                f"Provider {name!r} has no account {account!r}", code="unknown_account"
            ) from None

    def account(self, name: str, account: str | None = None) -> Account:
        accounts = self.accounts[name]
        return accounts[account] if account is not None else next(iter(accounts.values()))
