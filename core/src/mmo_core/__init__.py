"""The provider contract of the mobile-money gateway.

`mmo_core` knows neither the host nor any operator. It defines what a provider plugin
implements (`hookspecs`), what crosses the boundary between host and plugins (`types`),
what can go wrong (`errors`), and the plumbing a plugin should not rewrite: money
(`money`), phone numbers (`phones`), settings (`settings`), HTTP clients (`http`),
access tokens (`tokens`), authenticated operator calls and the health probe
(`operator`) and callback URL tokens (`callbacks`).
"""

from typing import Any

__all__ = ["hookimpl"]


def __getattr__(name: str) -> Any:
    # Imported lazily, so that loading a submodule (the pytest plugin) stays cheap.
    if name == "hookimpl":
        from mmo_core.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(name)
