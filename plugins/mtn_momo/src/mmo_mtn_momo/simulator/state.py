"""The MoMo sandbox's state: every account's API users, tokens, transactions by (account,
product, operation, X-Reference-Id), collections by reference (for refunds), balances."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
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
# The account of a simulator given one set of settings.
DEFAULT_ACCOUNT = "default"

Key = tuple[str, str, str, str]  # (account, product, operation, X-Reference-Id)


@dataclass
class ApiUserRecord:
    product: str
    host: str | None  # None: any callback host (the pre-provisioned sandbox users)
    account: str = DEFAULT_ACCOUNT
    keys: set[str] = field(default_factory=set)


@dataclass
class Resource:
    product: str
    view: dict[str, Any]
    callback_url: str | None
    final: dict[str, Any] | None = None
    refund_of: str | None = None  # refunds: the refunded collection's X-Reference-Id


@dataclass(frozen=True)
class Caller:
    """Who made a product call that passed the key, token and environment checks."""

    account: str
    user: str
    env: str


class MomoSandbox(Simulation):
    """Every account's API users, tokens, resources and balances.

    An account is one set of `MtnMomoSettings` (its subscription keys, API users and keys,
    target environment, callback host). A subscription key opens its own product; a token
    is issued to an API user for its account and works only with a subscription key of
    that account; every resource is the account's that created it, so another account's
    token reads it as MTN reads an unknown reference (404 RESOURCE_NOT_FOUND). An account
    whose target environment is a country's (`mtnuganda`) may use that environment only
    (500 NOT_ALLOWED_TARGET_ENVIRONMENT otherwise); a `sandbox` account may use all 15, as
    the gateway's default sandbox sends each country to its own. Accounts that share a
    credential share it here too (the first account named owns a shared API user).
    """

    def __init__(
        self, settings: MtnMomoSettings, accounts: Mapping[str, MtnMomoSettings] | None = None
    ) -> None:
        super().__init__()
        # the simulator's own knobs (callback delay, method...) are the first account's
        self.settings = settings
        self.accounts: dict[str, MtnMomoSettings] = dict(accounts or {DEFAULT_ACCOUNT: settings})
        # subscription key -> its product and the accounts that hold it
        self.key_product: dict[str, str] = {}
        self.key_accounts: dict[str, set[str]] = {}
        self.users: dict[str, ApiUserRecord] = {}
        for name, account in self.accounts.items():
            for product in PRODUCTS:
                key, user, secret = account.credentials(product)
                self.key_product.setdefault(key, product)
                self.key_accounts.setdefault(key, set()).add(name)
                record = self.users.setdefault(
                    user, ApiUserRecord(product, account.callback_host or None, name)
                )
                record.keys.add(secret)
        # token -> account, product, API user, expiry
        self.tokens: dict[str, tuple[str, str, str, float]] = {}
        self.resources: dict[Key, Resource] = {}
        # (account, collection X-Reference-Id) -> the first collection made with it (refunds)
        self.collections: dict[tuple[str, str], Resource] = {}
        # (account, collection X-Reference-Id) -> amount refunded so far
        self.refunded: dict[tuple[str, str], Decimal] = {}
        self.balances = {name: {p: Decimal(1_000_000) for p in PRODUCTS} for name in self.accounts}

    # -- checks --------------------------------------------------------------------------

    def subscription_key(self, request: Request) -> str:
        return (
            request.headers.get("ocp-apim-subscription-key")
            or request.query_params.get("subscription-key")
            or ""
        )

    def subscription(self, request: Request, product: str | None) -> Response[Any] | None:
        owner = self.key_product.get(self.subscription_key(request))
        if owner is None or (product is not None and owner != product):
            return Response({"statusCode": 401, "message": APIM_KEY_MESSAGE}, status_code=401)
        return None

    def key_account(self, request: Request) -> str:
        """The account a (checked) subscription key belongs to: the first that holds it."""
        held = self.key_accounts[self.subscription_key(request)]
        return next(name for name in self.accounts if name in held)

    def bearer(
        self, request: Request, product: str
    ) -> tuple[tuple[str, str] | None, Response[Any] | None]:
        """(account, API user) of the bearer token: of this product, not expired, and of
        an account that holds the request's subscription key (else 401)."""
        header = request.headers.get("authorization", "")
        entry = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if (
            entry is None
            or entry[1] != product
            or entry[3] < time.time()
            or entry[0] not in self.key_accounts.get(self.subscription_key(request), set())
        ):
            return None, Response({"statusCode": 401, "message": TOKEN_MESSAGE}, status_code=401)
        return (entry[0], entry[2]), None

    def environment(self, request: Request, account: str) -> tuple[str, Response[Any] | None]:
        env = request.headers.get("x-target-environment", "")
        allowed = self.accounts[account].target_environment
        if env not in ENVIRONMENT_CURRENCY or allowed not in ("sandbox", env):
            return env, error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
        return env, None

    async def product_call(self, request: Request, product: str) -> Caller | Response[Any]:
        """Subscription key, token and environment checks: the caller, or MoMo's refusal."""
        await self.injector.latency()
        refused = self.subscription(request, product)
        if refused is not None:
            return refused
        owner, refused = self.bearer(request, product)
        if owner is None or refused is not None:
            return refused or error(401, "ACCESS_DENIED")
        env, refused = self.environment(request, owner[0])
        if refused is not None:
            return refused
        return Caller(owner[0], owner[1], env)

    # -- ledger --------------------------------------------------------------------------

    def ledger_id(self, key: Key) -> str:
        """A resource's ledger id: its X-Reference-Id, after the account's name for an
        account other than `default` (two accounts may use the same X-Reference-Id)."""
        account, _, _, reference = key
        return reference if account == DEFAULT_ACCOUNT else f"{account}:{reference}"

    # -- transactions --------------------------------------------------------------------

    def add(self, key: Key, resource: Resource) -> None:
        self.resources[key] = resource
        account, product, kind, reference = key
        if product == "collection" and kind in COLLECTION_KINDS:
            self.collections.setdefault((account, reference), resource)

    def refund_case(self, account: str, body: Refund) -> tuple[str, str | None, str, Party | None]:
        """A refund's outcome, from the collection it refunds: (outcome, reason, payer
        digits, payer). Unknown -> TRANSACTION_NOT_FOUND; not SUCCESSFUL or more than what
        is left to refund -> NOT_ALLOWED; more than the disbursement balance ->
        NOT_ENOUGH_FUNDS. Only the account's own collections are found."""
        refunded = (account, body.reference_id_to_refund)
        original = self.collections.get(refunded)
        if original is None:
            return "error", "TRANSACTION_NOT_FOUND", "", None
        payer = msgspec.convert(original.view["payer"], Party)
        digits = digits_of(payer.party_id)
        amount = Decimal(body.amount)
        left = Decimal(original.view["amount"]) - self.refunded.get(refunded, Decimal(0))
        if original.view["status"] != "SUCCESSFUL" or amount > left:
            return "error", "NOT_ALLOWED", digits, payer
        if amount > self.balances[account]["disbursement"]:
            return "error", "NOT_ENOUGH_FUNDS", digits, payer
        return "success", None, digits, payer

    def finish(self, key: Key, status: str, reason: str | None) -> None:
        resource = self.resources[key]
        view = dict(resource.view)
        view["status"] = status
        if status == "SUCCESSFUL":
            view["financialTransactionId"] = str(secrets.randbelow(900_000_000) + 100_000_000)
            amount = Decimal(view["amount"])
            account = key[0]
            self.balances[account][resource.product] += (
                amount if resource.product == "collection" else -amount
            )
            if resource.refund_of is not None:
                refunded = (account, resource.refund_of)
                self.refunded[refunded] = self.refunded.get(refunded, Decimal(0)) + amount
        if reason is not None:
            view["reason"] = reason
        resource.view = view
        self.ledger.record(self.ledger_id(key), status=status, reason=reason)

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
