"""The running gateway: configuration, providers and their contexts, shared stores.

One `Gateway` is built by the app factory and opened/closed by the app's lifespan. It is
what route handlers and services receive; it knows providers only through the registry.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from mmo_core.context import ProviderContext
from mmo_core.errors import ConfigurationError
from mmo_core.http import create_http_client
from mmo_core.registry import ProviderRegistry
from mmo_core.results import ResultBoard
from mmo_core.settings import ProviderSettings, env_var, load_settings
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
        self.settings: dict[str, ProviderSettings] = {}
        self.contexts: dict[str, ProviderContext] = {}
        self.store: Any = None
        self.tokens = TokenCache()
        self.configuration_errors: dict[str, str] = {}
        # who an API key is (mmo_host.keys), looked up and cached per gateway
        self.keys = Keyring(config)
        self.breakers: MemoryBreakers | RedisBreakers = MemoryBreakers(BreakerConfig())
        self._event_http: httpx.AsyncClient | None = None
        for name, provider in list(registry.providers.items()):
            try:
                self.settings[name] = load_settings(
                    name, provider.settings_type, config.environ, config.environment
                )
            except ConfigurationError as exc:
                if config.environment == "production":
                    raise
                self.configuration_errors[name] = exc.message
                registry.unregister(name)
                log.error("provider %s disabled: %s", name, exc.message)
        # where webhooks may come from (sources.py): read once, a bad entry stops start-up
        self.trusted_proxies = sources.networks(config.trusted_proxies, "MMO_TRUSTED_PROXIES")
        self.allowed_sources = {
            name: sources.networks(s.allowed_ips, env_var(name, "allowed_ips"))
            for name, s in self.settings.items()
        }
        # every follow-up's delays (schedule.py), from the settings and the providers
        self.schedule = Schedule.from_config(
            config, {n: p.declaration.poll_after for n, p in registry.providers.items()}
        )
        # who takes a payment (routing.py): its prefix table and policy, read once
        self.router = Router(config, registry)

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
            settings = self.settings[name]
            base_url = settings.base_url or (
                self.config.simulator_url(name) if self.config.sandbox else ""
            )
            if not base_url:
                raise ConfigurationError(f"No base URL for provider {name!r}")
            self.contexts[name] = ProviderContext(
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
                results=ResultBoard(
                    self.store.with_namespace(f"results:{name}") if self.store else None
                ),
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

    def context(self, name: str) -> ProviderContext:
        return self.contexts[name]
