"""The provider contract of the mobile-money gateway.

`mmo_core` knows neither the host nor any operator. It defines what a provider plugin
implements (`hookspecs`), what crosses the boundary between host and plugins (`types`),
what can go wrong (`errors`), and the plumbing a plugin should not rewrite: money
(`money`), phone numbers (`phones`), settings (`settings`), HTTP clients (`http`),
access tokens (`tokens`) and callback URL tokens (`callbacks`).
"""

from mmo_core.hookspecs import hookimpl

__all__ = ["hookimpl"]
