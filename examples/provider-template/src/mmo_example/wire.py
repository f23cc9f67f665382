"""Example Pay's payloads, named as the operator names them."""

from typing import Literal

import msgspec

ExampleStatus = Literal["PENDING", "SUCCESSFUL", "FAILED", "EXPIRED"]


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int | str


class PaymentCreate(msgspec.Struct, forbid_unknown_fields=True):
    reference: str
    kind: Literal["collection", "disbursement", "remittance"]
    amount: str
    currency: str
    msisdn: str
    callback_url: str


class PaymentView(msgspec.Struct):
    id: str
    reference: str
    status: ExampleStatus
    amount: str
    currency: str
    msisdn: str
    reason_code: str | None = None
    reason: str | None = None


class ErrorBody(msgspec.Struct):
    error: str
    message: str = ""


# The scenario chosen by a wallet's last four digits (shared/DESIGN.md), in Example Pay's codes.
DECLINES: dict[str, tuple[str, str, ExampleStatus]] = {
    "0001": ("INSUFFICIENT_FUNDS", "The payer does not have enough funds", "FAILED"),
    "1032": ("CANCELLED", "The payer cancelled the request", "FAILED"),
    "1037": ("TIMEOUT", "The payer did not answer before the prompt expired", "EXPIRED"),
    "2001": ("WRONG_PIN", "The payer entered a wrong PIN", "FAILED"),
}
NO_CALLBACK = "9990"
DOUBLE_CALLBACK = "9991"
LATE_CALLBACK = "9992"
