"""What the operator holds as done, served at `GET /_simulator/ledger`."""

from __future__ import annotations

import threading
from typing import Any


class Ledger:
    """What the operator holds as done, by the operator's transaction id."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, **entry: Any) -> dict[str, Any]:
        with self._lock:
            current = self._entries.setdefault(key, {"id": key})
            current.update(entry)
            return dict(current)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            return dict(entry) if entry is not None else None

    def find(self, **match: Any) -> dict[str, Any] | None:
        """The first entry with these fields (a scan: for tests, not for request paths)."""
        with self._lock:
            for entry in self._entries.values():
                if all(entry.get(k) == v for k, v in match.items()):
                    return dict(entry)
        return None

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries.values()]


__all__ = ["Ledger"]
