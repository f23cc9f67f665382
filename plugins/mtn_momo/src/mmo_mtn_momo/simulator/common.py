"""What every MoMo route shares: the error body, the product of a path, UUID v4 checks."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response

from mmo_mtn_momo.wire import PRODUCTS, REASONS

APIM_KEY_MESSAGE = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
TOKEN_MESSAGE = "Unauthorized. Access token is missing or invalid."
TEXT_LIMIT = 160
TRANSFER_PRODUCTS = ("disbursement", "remittance")


def error(status: int, code: str, message: str | None = None) -> Response[Any]:
    return Response(
        {"code": code, "message": message or REASONS.get(code, code)}, status_code=status
    )


def product_of(request: Request) -> str:
    """The MoMo product a request is for, from its path (mounted under any prefix)."""
    path = request.scope["path"]
    return next(p for p in PRODUCTS if f"/{p}/" in path)


def is_uuid4(value: str | None) -> bool:
    if not value:
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def digits_of(party_id: str) -> str:
    return "".join(ch for ch in party_id if ch.isdigit())
