"""piccolo's configuration: the app registry and the process's one engine.

`DB` is resolved on access (PEP 562), so piccolo's own machinery (migrations) uses the
engine that `mmo_host.database.configure` created instead of building a second one.
"""

from piccolo.conf.apps import AppRegistry

APP_REGISTRY = AppRegistry(apps=["mmo_host.piccolo_app"])


def __getattr__(name: str):
    if name == "DB":
        from mmo_host.database import get_engine

        return get_engine()
    raise AttributeError(name)
