"""Airtel's answers: the `{data, status}` envelope, refusals with HTTP 200, ROUTER and
OAuth errors, and amounts as Airtel reads and writes them."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Response


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def status(
    *,
    code: str = "200",
    message: str = "SUCCESS",
    result_code: str | None = "ESB000010",
    response_code: str | None = None,
    success: bool = True,
) -> dict[str, Any]:
    block: dict[str, Any] = {"code": code, "message": message}
    if result_code is not None:
        block["result_code"] = result_code
    if response_code is not None:
        block["response_code"] = response_code
    block["success"] = success
    return block


def ok(data: Any, response_code: str | None = None, message: str = "SUCCESS") -> Response[Any]:
    return Response(
        {"data": data, "status": status(response_code=response_code, message=message)},
        status_code=200,
    )


def refuse(
    message: str,
    result_code: str | None,
    response_code: str | None = None,
    *,
    code: str = "400",
    data: Any = None,
) -> Response[Any]:
    """A business refusal as Airtel sends it: HTTP 200 and `status.success=false`."""
    body: dict[str, Any] = {
        "status": status(
            code=code,
            message=message,
            result_code=result_code,
            response_code=response_code,
            success=False,
        )
    }
    if data is not None:
        body = {"data": data, **body}
    return Response(body, status_code=200)


def router(code: str, message: str, http: int = 400) -> Response[Any]:
    return Response({"status_message": message, "status_code": code}, status_code=http)


def invalid_token() -> Response[Any]:
    return Response(
        {
            "error_description": "The access token is invalid or has expired",
            "error": "invalid_token",
        },
        status_code=401,
    )


def amount_of(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.001")):
        return None
    return amount


def json_amount(amount: Decimal) -> int | str:
    """A whole amount as a JSON number (the Go client's `int`), else its exact string."""
    return int(amount) if amount == amount.to_integral_value() else str(amount)


def enquiry_answer(record: dict[str, Any]) -> Response[Any]:
    """A collection's or a disbursement's enquiry: TS, TF (a refusal), else in process."""
    transaction = {
        "airtel_money_id": record["airtel_money_id"],
        "id": record["id"],
        "message": record["message"],
        "status": record["status"],
    }
    if record["status"] == "TS":
        return ok({"transaction": transaction}, record["response_code"])
    if record["status"] == "TF":
        return refuse(
            "FAILED",
            "ESB000011",
            record["response_code"],
            code="200",
            data={"transaction": transaction},
        )
    return ok({"transaction": transaction}, record["response_code"], "In process")
