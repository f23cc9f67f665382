"""Example Pay's error body."""

from __future__ import annotations

from typing import Any

from litestar import Response


def error(status: int, code: str, message: str) -> Response[Any]:
    return Response({"error": code, "message": message}, status_code=status)
