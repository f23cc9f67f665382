"""Test kit for provider packages (install `mmo-core[testing]`).

- `ProviderConformance`: subclass it in your test suite, name your plugin module and a
  test wallet, and pytest runs the contract's checks against your plugin and its simulator.
- `serve_app(app)`: run an ASGI app on a free loopback port in a background thread;
  `serving(app)` does the same inside the running event loop.
- `CallbackRecorder`: an ASGI app that keeps the webhooks sent to it.
- `make_context(...)`: a `ProviderContext` as the host would build it.
- `run_sdk(requirements, script)`: run an operator SDK from PyPI in its own venv (fidelity).
"""

from typing import Any

__all__ = [
    "CallbackRecorder",
    "ProviderConformance",
    "RecordedRequest",
    "SdkError",
    "ServedApp",
    "make_context",
    "run_sdk",
    "serve_app",
    "serving",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that pytest loading `mmo_core.testing.plugin` imports nothing heavy.
    if name in ("ProviderConformance", "make_context"):
        from mmo_core.testing import conformance

        return getattr(conformance, name)
    if name in ("SdkError", "run_sdk"):
        from mmo_core.testing import sdks

        return getattr(sdks, name)
    if name in __all__:
        from mmo_core.testing import servers

        return getattr(servers, name)
    raise AttributeError(name)
