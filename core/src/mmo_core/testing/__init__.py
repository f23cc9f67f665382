"""Test kit for provider packages (install `mmo-core[testing]`).

- `ProviderConformance`: subclass it in your test suite, name your plugin module and a
  test wallet, and pytest runs the contract's checks against your plugin and its simulator.
- `serve_app(app)`: run an ASGI app on a free loopback port in a background thread;
  `serving(app)` does the same inside the running event loop.
- `CallbackRecorder`: an ASGI app that keeps the webhooks sent to it.
- `make_context(...)`: a `ProviderContext` as the host would build it.
"""

from mmo_core.testing.conformance import ProviderConformance, make_context
from mmo_core.testing.servers import (
    CallbackRecorder,
    RecordedRequest,
    ServedApp,
    serve_app,
    serving,
)

__all__ = [
    "CallbackRecorder",
    "ProviderConformance",
    "RecordedRequest",
    "ServedApp",
    "make_context",
    "serve_app",
    "serving",
]
