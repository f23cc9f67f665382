"""A simulator of the MoMo Open API sandbox, over real HTTP.

Paths, headers and answers as MTN's sandbox (shared/providers/mtn_momo.md):

- `POST /v1_0/apiuser` (X-Reference-Id UUID v4, `{providerCallbackHost}`) -> 201, 409 when
  reused; `GET /v1_0/apiuser/{id}`; `POST /v1_0/apiuser/{id}/apikey` -> 201 `{apiKey}`.
- `POST /{product}/token/` (Basic apiUser:apiKey) -> `{access_token, token_type,
  expires_in: 3600}`; wrong credentials -> `{"error":"login_failed"}` (500 or 401).
- `POST /collection/v1_0/requesttopay`, `POST /collection/v1_0|v2_0/requesttowithdraw`,
  `POST /disbursement|remittance/v1_0/transfer`, `POST /disbursement/v1_0|v2_0/deposit`,
  `POST /disbursement/v1_0|v2_0/refund` -> 202 empty; `GET …/v1_0/{operation}/{referenceId}`
  -> the transaction, 404 `RESOURCE_NOT_FOUND`.
- `GET /{product}/v1_0/account/balance[/{currency}]`, `GET …/accountholder/{type}/{id}/active`
  and `…/basicuserinfo`; `POST /collection/v1_0/requesttopay/{id}/deliverynotification`
  (and for requesttowithdraw) -> 200 empty.

Every call needs the product's `Ocp-Apim-Subscription-Key` (else APIM's 401
`{statusCode, message}`); product calls a bearer token of that product (else 401) and one
of the 15 `X-Target-Environment` values (else 500 `NOT_ALLOWED_TARGET_ENVIRONMENT`).
MTN's sandbox numbers (46733123450 … 46733123463, 56733123453) and the shared test numbers
choose the outcome; the callback (the status body, no reference id) goes to `X-Callback-Url`
by PUT or POST after `callback_delay`, only when that header was given.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import Simulation, scenario, simulator_routes

from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.wire import (
    ENVIRONMENT_CURRENCY,
    PRODUCTS,
    REASONS,
    ApiUserCreate,
    DeliveryNotification,
    Party,
    Refund,
    RequestToPay,
    Transfer,
)

# MTN's "Sandbox Use Cases" (table C), by the full number. ("fail", reason) ends FAILED;
# ("error", reason) is one of the rows that may fail synchronously (setting sandbox_errors).
_COMMON: dict[str, tuple[str, str | None]] = {
    "46733123450": ("fail", "INTERNAL_PROCESSING_ERROR"),
    "46733123451": ("fail", "APPROVAL_REJECTED"),
    "46733123452": ("fail", "EXPIRED"),
    "46733123453": ("ongoing", None),
    "46733123454": ("pending", None),
    "56733123453": ("success", None),
}
REQUEST_TO_PAY: dict[str, tuple[str, str | None]] = {
    **_COMMON,
    "46733123455": ("error", "PAYER_NOT_FOUND"),
    "46733123456": ("error", "PAYEE_NOT_ALLOWED_TO_RECEIVE"),
    "46733123457": ("error", "NOT_ALLOWED"),
    "46733123458": ("error", "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123459": ("error", "INVALID_CALLBACK_URL_HOST"),
    "46733123460": ("error", "INVALID_CURRENCY"),
    "46733123461": ("error", "INTERNAL_PROCESSING_ERROR"),
    "46733123462": ("error", "SERVICE_UNAVAILABLE"),
    "46733123463": ("error", "COULD_NOT_PERFORM_TRANSACTION"),
}
TRANSFER: dict[str, tuple[str, str | None]] = {
    **_COMMON,
    "46733123455": ("error", "NOT_ENOUGH_FUNDS"),
    "46733123456": ("error", "PAYER_LIMIT_REACHED"),
    "46733123457": ("error", "PAYEE_NOT_FOUND"),
    "46733123458": ("error", "NOT_ALLOWED"),
    "46733123459": ("error", "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123460": ("error", "INVALID_CALLBACK_URL_HOST"),
    "46733123461": ("error", "INVALID_CURRENCY"),
    "46733123462": ("error", "INTERNAL_PROCESSING_ERROR"),
    "46733123463": ("error", "SERVICE_UNAVAILABLE"),
}
# The shared test numbers (shared/DESIGN.md), answered with MoMo's reasons.
SHARED: dict[str, str] = {
    "insufficient_funds": "NOT_ENOUGH_FUNDS",
    "cancelled": "APPROVAL_REJECTED",
    "unreachable": "EXPIRED",
    "wrong_pin": "PAYMENT_NOT_APPROVED",
}
# AccountHolderActive (MSISDN): -> (active, error code)
HOLDERS: dict[str, tuple[bool, str | None]] = {
    "46733123450": (False, None),  # NotFound
    "46733123451": (False, None),  # NotActive
    "46733123452": (False, "NOT_ALLOWED"),
    "46733123453": (False, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123454": (False, "INTERNAL_PROCESSING_ERROR"),
    "46733123455": (False, "SERVICE_UNAVAILABLE"),
}
SAND_BOX_USER = {
    "sub": "0",
    "name": "Sand Box",
    "given_name": "Sand",
    "family_name": "Box",
    "birthdate": "1976-08-13",
    "locale": "sv_SE",
    "gender": "MALE",
    "updated_at": 1676978048,
}
APIM_KEY_MESSAGE = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
TOKEN_MESSAGE = "Unauthorized. Access token is missing or invalid."
TEXT_LIMIT = 160


def _error(status: int, code: str, message: str | None = None) -> Response[Any]:
    return Response(
        {"code": code, "message": message or REASONS.get(code, code)}, status_code=status
    )


TRANSFER_PRODUCTS = ("disbursement", "remittance")


def _product(request: Request) -> str:
    """The MoMo product a request is for, from its path (mounted under any prefix)."""
    path = request.scope["path"]
    return next(p for p in PRODUCTS if f"/{p}/" in path)


def _is_uuid4(value: str | None) -> bool:
    if not value:
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


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


# The collection creates a refund may refer to, and the body of every create.
COLLECTION_KINDS = ("requesttopay", "requesttowithdraw")
BODIES: dict[str, type] = {
    "requesttopay": RequestToPay,
    "requesttowithdraw": RequestToPay,
    "transfer": Transfer,
    "deposit": Transfer,
    "refund": Refund,
}


class MomoSandbox:
    def __init__(self, settings: MtnMomoSettings) -> None:
        self.settings = settings
        self.sim = Simulation()
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
        # (product, operation, X-Reference-Id) -> the transaction
        self.resources: dict[tuple[str, str, str], Resource] = {}
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
            return None, _error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
        return env, None

    async def product_call(
        self, request: Request, product: str
    ) -> tuple[str | None, str | None, Response[Any] | None]:
        """Subscription key, token and environment checks: (user, env, error)."""
        await self.sim.injector.latency()
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

    # -- outcomes ------------------------------------------------------------------------

    def case(self, kind: str, digits: str) -> tuple[str, str | None]:
        # MTN's table C: RequestToWithdrawPayer* and DepositPayer* as RequestToPayPayer*
        table = TRANSFER if kind == "transfer" else REQUEST_TO_PAY
        if digits in table:
            return table[digits]
        shared = scenario(digits)
        if shared in SHARED:
            return "fail", SHARED[shared]
        return "success", None

    def refund_case(self, body: Refund) -> tuple[str, str | None, str, Party | None]:
        """A refund's outcome, from the collection it refunds: (outcome, reason, payer
        digits, payer). Unknown -> TRANSACTION_NOT_FOUND; not SUCCESSFUL or more than what
        is left to refund -> NOT_ALLOWED; more than the disbursement balance ->
        NOT_ENOUGH_FUNDS."""
        original = next(
            (
                r
                for (product, kind, ref), r in self.resources.items()
                if product == "collection"
                and kind in COLLECTION_KINDS
                and ref == body.reference_id_to_refund
            ),
            None,
        )
        if original is None:
            return "error", "TRANSACTION_NOT_FOUND", "", None
        payer = msgspec.convert(original.view["payer"], Party)
        digits = "".join(ch for ch in payer.party_id if ch.isdigit())
        amount = Decimal(body.amount)
        left = Decimal(original.view["amount"]) - self.refunded.get(
            body.reference_id_to_refund, Decimal(0)
        )
        if original.view["status"] != "SUCCESSFUL" or amount > left:
            return "error", "NOT_ALLOWED", digits, payer
        if amount > self.balances["disbursement"]:
            return "error", "NOT_ENOUGH_FUNDS", digits, payer
        return "success", None, digits, payer

    def finish(self, key: tuple[str, str, str], status: str, reason: str | None) -> None:
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
        self.sim.ledger.record(key[2], status=status, reason=reason)

    def notify(self, key: tuple[str, str, str], delay: float, copies: int = 1) -> None:
        resource = self.resources[key]
        if not resource.callback_url:
            return
        self.sim.callbacks.schedule(
            resource.callback_url,
            msgspec.json.encode(resource.view),
            method=self.settings.callback_method.upper(),
            delay=delay,
            copies=copies,
        )


def create_simulator(settings: MtnMomoSettings) -> Litestar:
    box = MomoSandbox(settings)
    sim = box.sim

    # -- sandbox user provisioning -------------------------------------------------------

    @post("/v1_0/apiuser", status_code=201)
    async def create_user(request: Request) -> Response[Any]:
        await sim.injector.latency()
        refused = box.subscription(request, None)
        if refused is not None:
            return refused
        reference = request.headers.get("x-reference-id")
        if not _is_uuid4(reference):
            return _error(400, "REQUEST_REJECTED", "X-Reference-Id must be a UUID version 4")
        try:
            body = msgspec.json.decode(await request.body(), type=ApiUserCreate)
        except msgspec.MsgspecError as exc:
            return _error(400, "REQUEST_REJECTED", str(exc))
        if reference in box.users:
            return _error(409, "RESOURCE_ALREADY_EXIST")
        key = request.headers.get("ocp-apim-subscription-key", "")
        box.users[reference] = ApiUserRecord(box.key_product[key], body.provider_callback_host)  # type: ignore[index]
        return Response(b"", status_code=201)

    @get("/v1_0/apiuser/{user_id:str}")
    async def read_user(request: Request, user_id: FromPath[str]) -> Response[Any]:
        refused = box.subscription(request, None)
        if refused is not None:
            return refused
        record = box.users.get(user_id)
        if record is None:
            return _error(404, "RESOURCE_NOT_FOUND")
        return Response({"providerCallbackHost": record.host or "", "targetEnvironment": "sandbox"})

    @post("/v1_0/apiuser/{user_id:str}/apikey", status_code=201)
    async def create_key(request: Request, user_id: FromPath[str]) -> Response[Any]:
        refused = box.subscription(request, None)
        if refused is not None:
            return refused
        record = box.users.get(user_id)
        if record is None:
            return _error(404, "RESOURCE_NOT_FOUND")
        key = secrets.token_hex(16)
        record.keys.add(key)
        return Response({"apiKey": key}, status_code=201)

    # -- tokens ----------------------------------------------------------------------------

    @post([f"/{p}/token" for p in PRODUCTS], status_code=200)
    async def token(request: Request) -> Response[Any]:
        await sim.injector.latency()
        product = _product(request)
        refused = box.subscription(request, product)
        if refused is not None:
            return refused
        header = request.headers.get("authorization", "")
        try:
            user, _, secret = (
                base64.b64decode(header.removeprefix("Basic "), validate=True)
                .decode()
                .partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            user, secret = "", ""
        record = box.users.get(user)
        if record is None or record.product != product or secret not in record.keys:
            return Response({"error": "login_failed"}, status_code=settings.login_failed_status)
        value = secrets.token_urlsafe(32)
        box.tokens[value] = (product, user, time.time() + settings.token_lifetime)
        return Response(
            {
                "access_token": value,
                "token_type": "access_token",
                "expires_in": settings.token_lifetime,
            }
        )

    @post("/_simulator/revoke-tokens", status_code=200, include_in_schema=False)
    async def revoke_tokens() -> dict[str, int]:
        """Simulator only: every token stops working (as if all had expired)."""
        count = len(box.tokens)
        box.tokens.clear()
        return {"revoked": count}

    # -- payments --------------------------------------------------------------------------

    async def create(request: Request, product: str, kind: str) -> Response[Any]:
        refused = box.subscription(request, product)
        if refused is not None:
            await sim.injector.latency()
            return refused
        reference = request.headers.get("x-reference-id")
        if not _is_uuid4(reference):
            return _error(400, "REQUEST_REJECTED", "X-Reference-Id must be a UUID version 4")
        user, env, refused = await box.product_call(request, product)
        if refused is not None:
            return refused
        status = sim.injector.error_status()
        if status is not None:  # before doing anything: the reference stays free
            return _error(status, "INTERNAL_PROCESSING_ERROR", "Simulated failure")
        key = (product, kind, reference)  # type: ignore[assignment]
        if key in box.resources:
            return _error(409, "RESOURCE_ALREADY_EXIST")
        raw = await request.body()
        try:
            body: RequestToPay | Transfer | Refund = msgspec.json.decode(raw, type=BODIES[kind])
        except msgspec.MsgspecError as exc:
            return _error(400, "REQUEST_REJECTED", str(exc))
        for text in (body.payer_message, body.payee_note):
            if len(text) > TEXT_LIMIT or "'" in text or "&" in text:
                return _error(400, "REQUEST_REJECTED", "payerMessage/payeeNote not accepted")
        try:
            if Decimal(body.amount) <= 0:
                raise ValueError(body.amount)
        except (ArithmeticError, ValueError):
            return _error(400, "REQUEST_REJECTED", "amount is not valid")
        if isinstance(body, Refund) and not _is_uuid4(body.reference_id_to_refund):
            return _error(400, "REQUEST_REJECTED", "referenceIdToRefund must be a UUID")
        if body.currency != ENVIRONMENT_CURRENCY[env]:  # type: ignore[index]
            return _error(500, "INVALID_CURRENCY")
        callback_url = request.headers.get("x-callback-url")
        host = box.users[user].host  # type: ignore[index]
        if callback_url and host is not None and urlsplit(callback_url).hostname != host:
            return _error(500, "INVALID_CALLBACK_URL_HOST")
        view = msgspec.to_builtins(body)
        refund_of = None
        if isinstance(body, Refund):
            outcome, reason, digits, payee = box.refund_case(body)
            refund_of = body.reference_id_to_refund
            if payee is not None:  # the refund goes back to the collection's payer
                view["payee"] = msgspec.to_builtins(payee)
        else:
            party: Party = body.payer if isinstance(body, RequestToPay) else body.payee
            digits = "".join(ch for ch in party.party_id if ch.isdigit())
            outcome, reason = box.case(kind, digits)
        if outcome == "error" and settings.sandbox_errors == "sync":
            return _error(503 if reason == "SERVICE_UNAVAILABLE" else 500, reason or "")
        view["status"] = "PENDING"
        box.resources[key] = Resource(product, view, callback_url, refund_of=refund_of)
        extra = {"refund_of": refund_of} if refund_of else {}
        sim.ledger.record(
            reference,  # type: ignore[arg-type]
            product=product,
            kind=kind,
            reference=body.external_id,
            amount=body.amount,
            currency=body.currency,
            msisdn=digits,
            status="PENDING",
            **extra,
        )
        delay = settings.callback_delay
        shared = scenario(digits)
        if outcome == "ongoing":

            def later() -> None:
                box.finish(key, "SUCCESSFUL", None)  # type: ignore[arg-type]
                box.notify(key, 0.0)  # type: ignore[arg-type]

            asyncio.get_running_loop().call_later(settings.ongoing_seconds, later)
        elif outcome != "pending":
            if outcome == "success":
                box.finish(key, "SUCCESSFUL", None)  # type: ignore[arg-type]
            else:
                box.finish(key, "FAILED", reason)  # type: ignore[arg-type]
            if shared != "no_callback":
                copies = 2 if shared == "double_callback" else 1
                wait = delay * 10 if shared == "late_callback" else delay
                box.notify(key, wait, copies)  # type: ignore[arg-type]
        await sim.injector.maybe_hang()
        return Response(b"", status_code=202)

    async def read(request: Request, product: str, kind: str, reference: str) -> Response[Any]:
        _, _, refused = await box.product_call(request, product)
        if refused is not None:
            return refused
        resource = box.resources.get((product, kind, reference))
        if resource is None:
            return _error(404, "RESOURCE_NOT_FOUND")
        return Response(resource.view)

    @post("/collection/v1_0/requesttopay", status_code=202)
    async def request_to_pay(request: Request) -> Response[Any]:
        return await create(request, "collection", "requesttopay")

    @get("/collection/v1_0/requesttopay/{reference:str}")
    async def request_to_pay_status(request: Request, reference: FromPath[str]) -> Response[Any]:
        return await read(request, "collection", "requesttopay", reference)

    @post(
        ["/collection/v1_0/requesttowithdraw", "/collection/v2_0/requesttowithdraw"],
        status_code=202,
    )
    async def request_to_withdraw(request: Request) -> Response[Any]:
        return await create(request, "collection", "requesttowithdraw")

    @get("/collection/v1_0/requesttowithdraw/{reference:str}")
    async def request_to_withdraw_status(
        request: Request, reference: FromPath[str]
    ) -> Response[Any]:
        return await read(request, "collection", "requesttowithdraw", reference)

    @post([f"/{p}/v1_0/transfer" for p in TRANSFER_PRODUCTS], status_code=202)
    async def transfer(request: Request) -> Response[Any]:
        return await create(request, _product(request), "transfer")

    @get([f"/{p}/v1_0/transfer/{{reference:str}}" for p in TRANSFER_PRODUCTS])
    async def transfer_status(request: Request, reference: FromPath[str]) -> Response[Any]:
        return await read(request, _product(request), "transfer", reference)

    @post(["/disbursement/v1_0/deposit", "/disbursement/v2_0/deposit"], status_code=202)
    async def deposit(request: Request) -> Response[Any]:
        return await create(request, "disbursement", "deposit")

    @get("/disbursement/v1_0/deposit/{reference:str}")
    async def deposit_status(request: Request, reference: FromPath[str]) -> Response[Any]:
        return await read(request, "disbursement", "deposit", reference)

    @post(["/disbursement/v1_0/refund", "/disbursement/v2_0/refund"], status_code=202)
    async def refund(request: Request) -> Response[Any]:
        return await create(request, "disbursement", "refund")

    @get("/disbursement/v1_0/refund/{reference:str}")
    async def refund_status(request: Request, reference: FromPath[str]) -> Response[Any]:
        return await read(request, "disbursement", "refund", reference)

    @post(
        [
            "/collection/v1_0/requesttopay/{reference:str}/deliverynotification",
            "/collection/v1_0/requesttowithdraw/{reference:str}/deliverynotification",
        ],
        status_code=200,
    )
    async def delivery_notification(request: Request, reference: FromPath[str]) -> Response[Any]:
        """A message to the payer about a request (works around the 160-character note):
        the body's `notificationMessage`, or the header of that name; 200, empty."""
        _, _, refused = await box.product_call(request, "collection")
        if refused is not None:
            return refused
        kind = (
            "requesttowithdraw"
            if "/requesttowithdraw/" in request.scope["path"]
            else "requesttopay"
        )
        if ("collection", kind, reference) not in box.resources:
            return _error(404, "RESOURCE_NOT_FOUND")
        raw = await request.body()
        try:
            body = msgspec.json.decode(raw, type=DeliveryNotification) if raw else None
        except msgspec.MsgspecError as exc:
            return _error(400, "REQUEST_REJECTED", str(exc))
        message = (body.notification_message if body else None) or request.headers.get(
            "notificationmessage"
        )
        if not message or len(message) > TEXT_LIMIT:
            return _error(400, "REQUEST_REJECTED", "notificationMessage not accepted")
        sim.ledger.record(reference, notification=message)
        return Response(b"", status_code=200)

    # -- accounts ---------------------------------------------------------------------------

    @get([f"/{p}/v1_0/account/balance" for p in PRODUCTS])
    async def account_balance(request: Request) -> Response[Any]:
        return await balance_of(request, None)

    @get([f"/{p}/v1_0/account/balance/{{currency:str}}" for p in PRODUCTS])
    async def account_balance_in(request: Request, currency: FromPath[str]) -> Response[Any]:
        return await balance_of(request, currency)

    async def balance_of(request: Request, currency: str | None) -> Response[Any]:
        """`…/account/balance[/{currency}]`: the account is in the environment's currency;
        another currency is not supported (500 INVALID_CURRENCY)."""
        product = _product(request)
        _, env, refused = await box.product_call(request, product)
        if refused is not None:
            return refused
        if currency is not None and currency.upper() != ENVIRONMENT_CURRENCY[env]:  # type: ignore[index]
            return _error(500, "INVALID_CURRENCY")
        return Response(
            {
                "availableBalance": str(box.balances[product]),
                "currency": ENVIRONMENT_CURRENCY[env],  # type: ignore[index]
            }
        )

    async def holder(
        request: Request, product: str, id_type: str, holder_id: str
    ) -> Response[Any] | tuple[bool, str]:
        _, _, refused = await box.product_call(request, product)
        if refused is not None:
            return refused
        if id_type.lower() not in ("msisdn", "email", "party_code"):
            return _error(400, "REQUEST_REJECTED", "Unknown accountHolderIdType")
        active, code = HOLDERS.get(holder_id, (True, None))
        if code is not None:
            return _error(503 if code == "SERVICE_UNAVAILABLE" else 500, code)
        return active, holder_id

    @get([f"/{p}/v1_0/accountholder/{{id_type:str}}/{{holder_id:str}}/active" for p in PRODUCTS])
    async def holder_active(
        request: Request, id_type: FromPath[str], holder_id: FromPath[str]
    ) -> Response[Any]:
        found = await holder(request, _product(request), id_type, holder_id)
        if isinstance(found, Response):
            return found
        return Response({"result": found[0]})

    @get(
        [
            f"/{p}/v1_0/accountholder/{{id_type:str}}/{{holder_id:str}}/basicuserinfo"
            for p in PRODUCTS
        ]
    )
    async def holder_info(
        request: Request, id_type: FromPath[str], holder_id: FromPath[str]
    ) -> Response[Any]:
        found = await holder(request, _product(request), id_type, holder_id)
        if isinstance(found, Response):
            return found
        if not found[0]:
            return _error(404, "RESOURCE_NOT_FOUND")
        return Response(SAND_BOX_USER)

    return Litestar(
        route_handlers=[
            create_user,
            read_user,
            create_key,
            token,
            revoke_tokens,
            request_to_pay,
            request_to_pay_status,
            transfer,
            transfer_status,
            request_to_withdraw,
            request_to_withdraw_status,
            deposit,
            deposit_status,
            refund,
            refund_status,
            account_balance,
            account_balance_in,
            delivery_notification,
            holder_active,
            holder_info,
            *simulator_routes(sim),
        ],
        on_shutdown=[sim.callbacks.close],
        openapi_config=None,
    )
