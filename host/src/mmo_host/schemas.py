"""The orchestrator API's request and response bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from mmo_core.types import PaymentStatus, PaymentType

from mmo_host.hygiene import AMOUNT_PATTERN


class PaymentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/payments`. `amount` is a decimal string in major units ("150", "99.50")."""

    type: PaymentType
    amount: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=AMOUNT_PATTERN)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    msisdn: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    provider: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    # one of the provider's accounts (`uganda`); without it routing chooses
    account: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] | None = None
    description: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    # what the payer sees on the prompt or statement; each operator's limit is checked by
    # its plugin (`validate`), with a 422 that says the limit
    payer_message: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    metadata: dict[str, Any] = {}


class FailureBody(msgspec.Struct):
    """`code` is the gateway's failure code (docs/api.md, "Failure codes"), the same for
    every operator; `provider_code` and `provider_message` are the operator's own."""

    code: str
    message: str
    provider_code: str | None = None
    provider_message: str | None = None


class NextActionBody(msgspec.Struct):
    type: Literal["redirect"]
    url: str


class RoutingBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How the provider was chosen: the number's network, the provider, its account and
    why (`requested`, `network`, `prefix`, `preferred`, `priority` or `fallback`;
    docs/api.md). `fallback_from`: the account whose breaker was open."""

    network: str | None
    provider: str
    account: str
    reason: str
    fallback_from: str | None = None


class PaymentResource(msgspec.Struct, kw_only=True):
    id: str
    type: PaymentType
    status: PaymentStatus
    provider: str
    # the provider's account it went through (`default` with one account)
    account: str = "default"
    amount: str
    # the part of `amount` refunded so far (reversals may be partial)
    amount_reversed: str
    currency: str
    msisdn: str
    reference: str
    description: str | None
    metadata: dict[str, Any]
    provider_reference: str | None
    provider_transaction_id: str | None
    failure: FailureBody | None
    next_action: NextActionBody | None
    # "api" for payments the orchestrator created; the operator's channel ("c2b") for
    # payments the operator reported that the gateway did not start
    origin: str = "api"
    routing: RoutingBody | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class PaymentPage(msgspec.Struct, kw_only=True):
    data: list[PaymentResource]
    next_cursor: str | None


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    details: Any = None
    provider: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail
