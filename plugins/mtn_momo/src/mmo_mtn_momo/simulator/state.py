"""The MoMo sandbox's state: API users, tokens, transactions by (product, operation,
X-Reference-Id), collections by reference (for refunds), balances."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from mmo_core.simulation import Scenario, Simulation

from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.simulator.common import APIM_KEY_MESSAGE, TOKEN_MESSAGE, digits_of, error
from mmo_mtn_momo.wire import ENVIRONMENT_CURRENCY, PRODUCTS, Party, Refund

# The collection creates a refund may refer to.
COLLECTION_KINDS = ("requesttopay", "requesttowithdraw")

Key = tuple[str, str, str]  # (product, operation, X-Reference-Id)


@dataclass
class ApiUserRecord:
    product: str
    host: str | None  # None: any callback host (the pre-provisioned sandbox users)
    keys: set[str] = field(default_factory=set)


@dataclass
class Resource:
    product: str
    view: dict[str, Any]
    callback_url: str | None
    final: dict[str, Any] | None = None
    refund_of: str | None = None  # refunds: the refunded collection's X-Reference-Id


class MomoSandbox(Simulation):
    def __init__(self, settings: MtnMomoSettings) -> None:
        super().__init__()
        self.settings = settings
        self.key_product: dict[str, str] = {}
        self.users: dict[str, ApiUserRecord] = {}
        for product in PRODUCTS:
            key, user, secret = settings.credentials(product)
            self.key_product[key] = product
            record = self.users.setdefault(
                user, ApiUserRecord(product, settings.callback_host or None)
            )
            record.keys.add(secret)
        self.tokens: dict[str, tuple[str, str, float]] = {}  # token -> product, user, expiry
        self.resources: dict[Key, Resource] = {}
        # collection X-Reference-Id -> the first collection made with it (refunds' lookup)
        self.collections: dict[str, Resource] = {}
        # collection X-Reference-Id -> amount refunded so far
        self.refunded: dict[str, Decimal] = {}
        self.balances = {p: Decimal(1_000_000) for p in PRODUCTS}

    # -- checks --------------------------------------------------------------------------

    def subscription(self, request: Request, product: str | None) -> Response[Any] | None:
        key = request.headers.get("ocp-apim-subscription-key") or request.query_params.get(
            "subscription-key"
        )
        owner = self.key_product.get(key or "")
        if owner is None or (product is not None and owner != product):
            return Response({"statusCode": 401, "message": APIM_KEY_MESSAGE}, status_code=401)
        return None

    def bearer(self, request: Request, product: str) -> tuple[str | None, Response[Any] | None]:
        header = request.headers.get("authorization", "")
        entry = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if entry is None or entry[0] != product or entry[2] < time.time():
            return None, Response({"statusCode": 401, "message": TOKEN_MESSAGE}, status_code=401)
        return entry[1], None

    def environment(self, request: Request) -> tuple[str | None, Response[Any] | None]:
        env = request.headers.get("x-target-environment", "")
        if env not in ENVIRONMENT_CURRENCY:
            return None, error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
        return env, None

    async def product_call(
        self, request: Request, product: str
    ) -> tuple[str | None, str | None, Response[Any] | None]:
        """Subscription key, token and environment checks: (user, env, error)."""
        await self.injector.latency()
        refused = self.subscription(request, product)
        if refused is not None:
            return None, None, refused
        user, refused = self.bearer(request, product)
        if refused is not None:
            return None, None, refused
        env, refused = self.environment(request)
        if refused is not None:
            return None, None, refused
        return user, env, None

    # -- transactions --------------------------------------------------------------------

    def add(self, key: Key, resource: Resource) -> None:
        self.resources[key] = resource
        product, kind, reference = key
        if product == "collection" and kind in COLLECTION_KINDS:
            self.collections.setdefault(reference, resource)

    def refund_case(self, body: Refund) -> tuple[str, str | None, str, Party | None]:
        """A refund's outcome, from the collection it refunds: (outcome, reason, payer
        digits, payer). Unknown -> TRANSACTION_NOT_FOUND; not SUCCESSFUL or more than what
        is left to refund -> NOT_ALLOWED; more than the disbursement balance ->
        NOT_ENOUGH_FUNDS."""
        original = self.collections.get(body.reference_id_to_refund)
        if original is None:
            return "error", "TRANSACTION_NOT_FOUND", "", None
        payer = msgspec.convert(original.view["payer"], Party)
        digits = digits_of(payer.party_id)
        amount = Decimal(body.amount)
        left = Decimal(original.view["amount"]) - self.refunded.get(
            body.reference_id_to_refund, Decimal(0)
        )
        if original.view["status"] != "SUCCESSFUL" or amount > left:
            return "error", "NOT_ALLOWED", digits, payer
        if amount > self.balances["disbursement"]:
            return "error", "NOT_ENOUGH_FUNDS", digits, payer
        return "success", None, digits, payer

    def finish(self, key: Key, status: str, reason: str | None) -> None:
        resource = self.resources[key]
        view = dict(resource.view)
        view["status"] = status
        if status == "SUCCESSFUL":
            view["financialTransactionId"] = str(secrets.randbelow(900_000_000) + 100_000_000)
            amount = Decimal(view["amount"])
            self.balances[resource.product] += amount if key[0] == "collection" else -amount
            if resource.refund_of is not None:
                self.refunded[resource.refund_of] = (
                    self.refunded.get(resource.refund_of, Decimal(0)) + amount
                )
        if reason is not None:
            view["reason"] = reason
        resource.view = view
        self.ledger.record(key[2], status=status, reason=reason)

    def callback(self, key: Key, case: Scenario, delay: float) -> None:
        """The transaction's status body to its X-Callback-Url, if it gave one."""
        resource = self.resources[key]
        if not resource.callback_url:
            return
        self.notify(
            resource.callback_url,
            msgspec.json.encode(resource.view),
            case=case,
            method=self.settings.callback_method.upper(),
            delay=delay,
        )


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[MomoSandbox]
