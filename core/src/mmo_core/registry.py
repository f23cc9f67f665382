"""Finding, checking and calling provider plugins.

`ProviderRegistry` owns a fresh pluggy manager (never one built at import time). Providers
come from the `mmo.providers` entry points, loaded one at a time so that a broken one is
reported by name and skipped, or are registered explicitly (tests). Calls are dispatched
to exactly one provider by name, through a hook caller that excludes every other plugin,
and awaited when the implementation is `async def`.

Environment switches:
- `MMO_DISABLED_PROVIDERS=a,b`: installed providers that are not loaded.
- `MMO_ENABLED_PROVIDERS=a,b`: when set, only these are loaded.
- `MMO_TRACE_PLUGINS=1`: log every hook call (names only, never arguments).
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import msgspec
import pluggy

from mmo_core import hookspecs
from mmo_core.errors import ConfigurationError, NotSupported
from mmo_core.settings import ProviderSettings
from mmo_core.types import OPERATIONS, ProviderDeclaration

ENTRY_POINT_GROUP = "mmo.providers"
log = logging.getLogger("mmo.registry")


@dataclass(frozen=True)
class LoadFailure:
    """A provider that could not be loaded, and why."""

    name: str
    error: str


@dataclass
class Provider:
    """One registered provider: its declaration and how to call its hooks."""

    name: str
    declaration: ProviderDeclaration
    plugin: Any
    version: str | None
    registry: ProviderRegistry = field(repr=False)

    @property
    def hooks(self) -> tuple[str, ...]:
        """Names of the hooks this provider implements."""
        return tuple(
            hook
            for hook in (*hookspecs.REQUIRED_HOOKS, *hookspecs.OPTIONAL_HOOKS)
            if self.implements(hook)
        )

    def implements(self, hook: str) -> bool:
        caller = getattr(self.registry.pm.hook, hook)
        return any(impl.plugin is self.plugin for impl in caller.get_hookimpls())

    @property
    def settings_type(self) -> type[ProviderSettings]:
        return self.declaration.settings or ProviderSettings

    def call_sync(self, hook: str, **kwargs: Any) -> Any:
        """Call a synchronous hook of this provider; NotSupported when not implemented."""
        if not self.implements(hook):
            raise NotSupported(
                f"Provider {self.name!r} does not implement {hook!r}", provider=self.name
            )
        results = self.registry._caller(self, hook)(**kwargs)
        # pluggy leaves None results out: a hook that returned None leaves an empty list
        return results[0] if results else None

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call a hook of this provider and await it if it is asynchronous."""
        result = self.call_sync(hook, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def describe(self) -> dict[str, Any]:
        """Name, version, countries, currencies, operations and hooks (for CLI and admin API)."""
        d = self.declaration
        return {
            "name": self.name,
            "display_name": d.display_name,
            "version": self.version,
            "countries": list(d.countries),
            "currencies": list(d.currencies),
            "operations": list(d.operations),
            "limits": msgspec.to_builtins(d.limits),
            "networks": msgspec.to_builtins(d.networks),
            "webhook_path": d.route_segment,
            "webhook_kinds": list(d.webhook_kinds),
            "hooks": list(self.hooks),
        }


def _declared_name(plugin: Any) -> str:
    """The provider name a plugin declares, to register it under when no name is given."""
    declare = getattr(plugin, "mmo_provider", None)
    declaration = declare() if callable(declare) else None
    if isinstance(declaration, ProviderDeclaration) and declaration.name:
        return declaration.name
    return getattr(plugin, "__name__", None) or repr(plugin)


def _names(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


class ProviderRegistry:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.providers: dict[str, Provider] = {}
        self.failures: list[LoadFailure] = []
        self.disabled = _names(environ.get("MMO_DISABLED_PROVIDERS"))
        self.enabled = _names(environ.get("MMO_ENABLED_PROVIDERS")) or None
        self._callers: dict[tuple[str, str], Any] = {}
        if environ.get("MMO_TRACE_PLUGINS", "").lower() in {"1", "true", "yes"}:
            self.pm.add_hookcall_monitoring(self._trace_before, self._trace_after)

    # -- loading ---------------------------------------------------------------------------

    def load_entrypoints(self) -> list[LoadFailure]:
        """Load every provider of the `mmo.providers` group, one at a time."""
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.disabled or (
                self.enabled is not None and ep.name not in self.enabled
            ):
                log.info("provider %s is installed but not enabled", ep.name)
                continue
            try:
                plugin = ep.load()
                version = ep.dist.version if ep.dist is not None else None
                self.register(plugin, name=ep.name, version=version)
            except Exception as exc:
                self.failures.append(LoadFailure(ep.name, f"{type(exc).__name__}: {exc}"))
                log.error("provider %s failed to load: %s: %s", ep.name, type(exc).__name__, exc)
        return self.failures

    def register(
        self, plugin: Any, name: str | None = None, version: str | None = None
    ) -> Provider:
        """Register one provider plugin (a module or an object with hookimpls).

        Raises ConfigurationError when the plugin is not a valid provider; the plugin is
        then left unregistered.
        """
        plugin_name = name or _declared_name(plugin)
        if plugin_name in self.providers:
            raise ConfigurationError(f"Provider {plugin_name!r} is registered twice")
        self.pm.register(plugin, name=plugin_name)
        try:
            self.pm.check_pending()
            declaration = self._declaration(plugin, plugin_name)
            if name is not None and declaration.name != name:
                raise ConfigurationError(
                    f"Entry point {name!r} declares a provider named {declaration.name!r}"
                )
            if declaration.name in self.providers:
                raise ConfigurationError(f"Provider {declaration.name!r} is registered twice")
            provider = Provider(declaration.name, declaration, plugin, version, self)
            missing = [h for h in hookspecs.REQUIRED_HOOKS if not provider.implements(h)]
            if missing:
                raise ConfigurationError(
                    f"Provider {declaration.name!r} lacks required hook(s): {', '.join(missing)}"
                )
        except Exception:
            self.pm.unregister(plugin)
            raise
        self.providers[provider.name] = provider
        self._callers.clear()
        return provider

    def unregister(self, name: str) -> None:
        provider = self.providers.pop(name)
        self.pm.unregister(provider.plugin)
        self._callers.clear()

    def _declaration(self, plugin: Any, plugin_name: str) -> ProviderDeclaration:
        impls = [i for i in self.pm.hook.mmo_provider.get_hookimpls() if i.plugin is plugin]
        if not impls:
            raise ConfigurationError(f"Plugin {plugin_name!r} has no mmo_provider hook")
        declaration = impls[0].function()
        validate_declaration(declaration)
        if not isinstance(declaration, ProviderDeclaration):  # validate_declaration says why
            raise ConfigurationError(
                f"Plugin {plugin_name!r}: mmo_provider must return a declaration"
            )
        return declaration

    # -- calling ---------------------------------------------------------------------------

    def get(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise NotSupported(f"Unknown provider {name!r}", code="unknown_provider") from None

    def by_route_segment(self, segment: str) -> Provider | None:
        for provider in self.providers.values():
            d = provider.declaration
            if d.route_segment == segment or segment in d.webhook_aliases:
                return provider
        return None

    def _caller(self, provider: Provider, hook: str) -> Any:
        key = (provider.name, hook)
        caller = self._callers.get(key)
        if caller is None:
            others = [p.plugin for p in self.providers.values() if p.plugin is not provider.plugin]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[key] = caller
        return caller

    def describe(self) -> list[dict[str, Any]]:
        return [self.providers[name].describe() for name in sorted(self.providers)]

    # -- tracing ---------------------------------------------------------------------------

    @staticmethod
    def _trace_before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        log.info("hook %s -> %s", hook_name, ", ".join(i.plugin_name for i in hook_impls))

    @staticmethod
    def _trace_after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        failed = outcome.exception is not None
        log.info("hook %s %s", hook_name, "raised" if failed else "returned")


def _network_problems(declaration: ProviderDeclaration) -> list[str]:
    problems = []
    for network in declaration.networks:
        where = f"network {network.country}/{network.network}"
        if network.country not in declaration.countries:
            problems.append(f"{where}: undeclared country")
        if not network.network or network.network != network.network.lower():
            problems.append(f"{where}: not a lower-case id")
    return problems


def validate_declaration(declaration: Any) -> None:
    """Raise ConfigurationError when a provider declaration is incomplete or inconsistent."""
    if not isinstance(declaration, ProviderDeclaration):
        raise ConfigurationError("mmo_provider must return a ProviderDeclaration")
    problems: list[str] = []
    if not declaration.name or not declaration.name.replace("_", "").isalnum():
        problems.append("name must be letters, digits and underscores")
    if declaration.name != declaration.name.lower():
        problems.append("name must be lower case")
    if not declaration.display_name:
        problems.append("display_name is empty")
    if not declaration.countries or any(
        len(c) != 2 or not c.isupper() for c in declaration.countries
    ):
        problems.append("countries must be ISO 3166 alpha-2 codes")
    if not declaration.currencies or any(
        len(c) != 3 or not c.isupper() for c in declaration.currencies
    ):
        problems.append("currencies must be ISO 4217 codes")
    unknown = [op for op in declaration.operations if op not in OPERATIONS]
    if not declaration.operations or unknown:
        problems.append(f"operations must be among {', '.join(OPERATIONS)}")
    for market in declaration.markets:
        if (
            market.country not in declaration.countries
            or market.currency not in declaration.currencies
        ):
            problems.append(f"market {market.country}/{market.currency} is not declared")
    problems.extend(_network_problems(declaration))
    for limit in declaration.limits:
        if limit.currency not in declaration.currencies:
            problems.append(f"limit for undeclared currency {limit.currency}")
        if (
            limit.minimum is not None
            and limit.maximum is not None
            and limit.minimum > limit.maximum
        ):
            problems.append(f"limit for {limit.currency}: minimum above maximum")
    settings = declaration.settings
    if settings is not None and not (
        isinstance(settings, type) and issubclass(settings, ProviderSettings)
    ):
        problems.append("settings must be a ProviderSettings subclass")
    if problems:
        raise ConfigurationError(
            f"Invalid declaration of provider {declaration.name!r}: " + "; ".join(problems)
        )


__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadFailure",
    "Provider",
    "ProviderRegistry",
    "validate_declaration",
]
