"""The running gateway: configuration, providers and their contexts, shared stores.

One `Gateway` is built by the app factory and opened/closed by the app's lifespan. It is
what route handlers and services receive; it knows providers only through the registry.
"""

from __future__ import annotations

import logging
import time
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
from redis.exceptions import RedisError

from mmo_host import sources
from mmo_host.breaker import BreakerConfig, FallbackBreakers, MemoryBreakers, RedisBreakers
from mmo_host.config import HostConfig
from mmo_host.keys import Keyring
from mmo_host.routing import Router
from mmo_host.schedule import Schedule

log = logging.getLogger("mmo.gateway")

# what a Redis that does not answer may raise (a refused or lost connection, a timeout)
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class SharedRedis:
    """The host's Redis, and whether it answers: the one judge of a Redis outage.

    Each use of Redis (rate limits, breakers, tokens, results, the event stream) asks
    `usable()` before a call and reports `failed(use, exc)` or `worked()` after it. After a
    failure Redis is left alone for `retry_every` seconds (each use does without it,
    in-process), then tried again; the first call that works ends the outage.
    `/health/ready` shows `degraded`: the uses that did without Redis in this outage.
    """

    def __init__(self, redis: Any, *, retry_every: float = 2.0) -> None:
        self.redis = redis
        self.retry_every = retry_every
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.degraded: set[str] = set()
        self._retry_at = 0.0

    def usable(self) -> bool:
        return self.down_since is None or time.monotonic() >= self._retry_at

    def failed(self, use: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning("Redis unavailable (%s): shared state kept in this process", use)
        if use not in self.degraded:
            self.degraded.add(use)
            log.warning("Redis unavailable: %s degraded (%s)", use, type(exc).__name__)
        self.last_error = type(exc).__name__
        self._retry_at = now + self.retry_every

    def worked(self) -> None:
        if self.down_since is not None:
            log.info(
                "Redis answers again after %.0f s: %s shared again",
                time.monotonic() - self.down_since,
                ", ".join(sorted(self.degraded)) or "nothing",
            )
            self.down_since = None
            self.last_error = None
            self.degraded.clear()

    async def ping(self) -> bool:
        """A real round trip (health), which also ends an outage when it works."""
        try:
            await self.redis.ping()
        except REDIS_FAILURES as exc:
            self.failed("ping", exc)
            return False
        self.worked()
        return True


class FallbackStore:
    """A Redis store (Litestar's `RedisStore`) that does without Redis while it is down.

    For what is a cache of what the process also keeps itself: tokens (TokenCache keeps
    them in memory) and the results board (ResultBoard keeps the newest in memory). A
    `get` that cannot reach Redis finds nothing, a `set` or `delete` is skipped: the
    process works alone until Redis answers again.
    """

    def __init__(self, store: Any, shared: SharedRedis, use: str) -> None:
        self.store = store
        self.shared = shared
        self.use = use

    async def get(self, key: str, renew_for: int | None = None) -> bytes | None:
        if not self.shared.usable():
            return None
        try:
            value = await self.store.get(key, renew_for)
        except REDIS_FAILURES as exc:
            self.shared.failed(self.use, exc)
            return None
        self.shared.worked()
        return value

    async def set(self, key: str, value: str | bytes, expires_in: int | None = None) -> None:
        if not self.shared.usable():
            return
        try:
            await self.store.set(key, value, expires_in)
        except REDIS_FAILURES as exc:
            self.shared.failed(self.use, exc)
            return
        self.shared.worked()

    async def delete(self, key: str) -> None:
        if not self.shared.usable():
            return
        try:
            await self.store.delete(key)
        except REDIS_FAILURES as exc:
            self.shared.failed(self.use, exc)
            return
        self.shared.worked()


class Gateway:
    def __init__(self, config: HostConfig, registry: ProviderRegistry) -> None:
        self.config = config
        self.registry = registry
        # every provider's accounts (mmo_core.accounts), and the settings of its first
        self.accounts: dict[str, dict[str, Account]] = {}
        self.settings: dict[str, ProviderSettings] = {}
        self.contexts: dict[tuple[str, str], ProviderContext] = {}
        self.store: Any = None
        # the Redis behind `store`, and whether it answers (None without REDIS_URL)
        self.redis: SharedRedis | None = None
        self.tokens = TokenCache()
        # what kept a provider (`mpesa`) or one account (`mpesa/brand-a`) from running
        self.configuration_errors: dict[str, str] = {}
        # who an API key is (mmo_host.keys), looked up and cached per gateway
        self.keys = Keyring(config)
        self.breakers: MemoryBreakers | RedisBreakers | FallbackBreakers = MemoryBreakers(
            BreakerConfig()
        )
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
            from redis.asyncio import Redis

            # bounded calls: a Redis that hangs must not hang a payment
            client = Redis.from_url(
                self.config.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            self.store = RedisStore(client, namespace="mmo")
            self.redis = SharedRedis(client)
            self.tokens = TokenCache(
                FallbackStore(self.store.with_namespace("tokens"), self.redis, "tokens")
            )
            self.breakers = FallbackBreakers(
                RedisBreakers(client, breaker_config),
                MemoryBreakers(breaker_config),
                self.redis,
            )
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
            results=ResultBoard(self._results_store(namespace)),
            account=account.name,
        )

    def _results_store(self, namespace: str) -> FallbackStore | None:
        if self.store is None or self.redis is None:
            return None
        return FallbackStore(self.store.with_namespace(namespace), self.redis, "results")

    @property
    def event_http(self) -> httpx.AsyncClient:
        """The client that delivers events to the orchestrator (opened on first use, one
        pool for every delivery: the core's client, whose per-request checks are cheap)."""
        if self._event_http is None:
            self._event_http = create_http_client(timeout=10.0, connect_timeout=10.0)
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
            self.redis = None

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
