"""The pytest plugin of the conformance kit (entry point `pytest11: mmo_conformance`).

It adds the `mmo_callback_recorder` fixture and keeps every heavy import lazy, so having
mmo-core installed never slows down or breaks an unrelated test run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def mmo_callback_recorder() -> Iterator[Any]:
    """A running `CallbackRecorder`: `(recorder, url)`."""
    from mmo_core.testing.servers import CallbackRecorder, serve_app

    recorder = CallbackRecorder()
    with serve_app(recorder) as served:
        yield recorder, served.url
