"""Plugin loading: entry points one at a time, broken ones reported by name, switches."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from mmo_core import hookimpl
from mmo_core.errors import ConfigurationError, NotSupported
from mmo_core.registry import ProviderRegistry, validate_declaration
from mmo_core.types import AmountLimit, Market, ProviderDeclaration


def install_fake_distribution(root: Path, name: str, entry_points: dict[str, str]) -> None:
    """A real (if minimal) installed distribution: importlib.metadata finds it on sys.path."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mmo.providers]\n{lines}\n")


def test_installed_example_provider_is_found():
    registry = ProviderRegistry(environ={})
    registry.load_entrypoints()
    assert "example" in registry.providers
    described = {p["name"]: p for p in registry.describe()}
    assert described["example"]["version"] == "0.1.0"
    assert "initiate" in described["example"]["hooks"]


def test_a_broken_provider_fails_alone_and_is_named(tmp_path, monkeypatch):
    install_fake_distribution(
        tmp_path,
        "mmo_broken",
        {"broken": "mmo_no_such_module_xyz", "misnamed": "mmo_example.plugin"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ProviderRegistry(environ={})
    failures = registry.load_entrypoints()
    names = {f.name: f.error for f in failures}
    assert "ModuleNotFoundError" in names["broken"]
    assert "misnamed" in names
    assert "example" in registry.providers


def test_disabled_and_enabled_lists():
    registry = ProviderRegistry(environ={"MMO_DISABLED_PROVIDERS": "example, other"})
    registry.load_entrypoints()
    assert "example" not in registry.providers
    registry = ProviderRegistry(environ={"MMO_ENABLED_PROVIDERS": "someone_else"})
    registry.load_entrypoints()
    assert registry.providers == {}


def _declaration(**changes):
    values = dict(
        name="tiny",
        display_name="Tiny",
        countries=("KE",),
        currencies=("KES",),
        operations=("collection",),
    )
    values.update(changes)
    return ProviderDeclaration(**values)


def _plugin(declaration, **hooks):
    module = types.ModuleType("tiny_plugin")

    @hookimpl
    def mmo_provider():
        return declaration

    module.mmo_provider = mmo_provider
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


async def _noop():
    return None


def _complete(declaration):
    async def initiate(payment):
        return None

    async def status(payment):
        return None

    async def parse_callback(callback):
        return None

    async def health():
        return None

    return _plugin(
        declaration, initiate=initiate, status=status, parse_callback=parse_callback, health=health
    )


def test_missing_required_hooks_are_refused():
    registry = ProviderRegistry(environ={})
    with pytest.raises(ConfigurationError, match="lacks required hook"):
        registry.register(_plugin(_declaration()))
    assert registry.providers == {}


def test_unknown_hook_names_are_refused():
    registry = ProviderRegistry(environ={})
    plugin = _complete(_declaration())

    @hookimpl
    def initate():  # a typo of a hook name
        return None

    plugin.initate = initate
    with pytest.raises(Exception, match="initate"):
        registry.register(plugin)
    assert registry.providers == {}


def test_one_provider_per_name_and_dispatch_to_exactly_one():
    registry = ProviderRegistry(environ={})
    registry.load_entrypoints()
    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.register(_complete(_declaration(name="example", display_name="Another")))
    tiny = registry.register(_complete(_declaration()))
    assert registry.get("tiny") is tiny
    with pytest.raises(NotSupported):
        registry.get("nobody")
    with pytest.raises(NotSupported):
        tiny.call_sync("balance", context=None)
    registry.unregister("tiny")
    assert "tiny" not in registry.providers


async def test_two_async_providers_each_answer_for_themselves():
    registry = ProviderRegistry(environ={})
    answers = {}
    for name in ("one", "two"):

        async def health(name=name):
            return name

        plugin = _complete(_declaration(name=name, display_name=name))
        plugin.health = hookimpl(health)
        answers[name] = registry.register(plugin)
    assert await answers["one"].call("health", context=None) == "one"
    assert await answers["two"].call("health", context=None) == "two"


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Bad Name"},
        {"name": "UPPER"},
        {"display_name": ""},
        {"countries": ("Kenya",)},
        {"currencies": ("kes",)},
        {"operations": ("teleport",)},
        {"operations": ()},
        {"limits": (AmountLimit(currency="USD"),)},
        {"limits": (AmountLimit(currency="KES", minimum=10, maximum=1),)},
        {"markets": (Market("UG", "UGX"),)},
        {"settings": dict},
    ],
)
def test_invalid_declarations_are_refused(changes):
    with pytest.raises(ConfigurationError):
        validate_declaration(_declaration(**changes))
    with pytest.raises(ConfigurationError):
        validate_declaration("not a declaration")


def test_trace_flag_logs_hook_calls(caplog):
    registry = ProviderRegistry(environ={"MMO_TRACE_PLUGINS": "1"})
    registry.load_entrypoints()
    with caplog.at_level("INFO", logger="mmo.registry"):
        registry.pm.hook.mmo_provider()
    assert any("hook mmo_provider" in r.message for r in caplog.records)
