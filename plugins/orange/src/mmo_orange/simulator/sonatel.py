"""Orange Senegal (Sonatel): `POST /oauth/token` (and `/oauth/v1/token`),
`GET /api/account/v1/publicKeys`, `/api/eWallet/v1/payments` (CLASSIC), `/payments/onestep`
(OTP), `/cashins` (retailer PIN), `/transactions/{id}/status`, `/account/retailer/balance`,
`POST /api/notification/v1/merchantcallback`; errors as RFC-7807-like problems; callbacks
to the registered URL with the registered apiKey."""

from __future__ import annotations

import base64
import re
import secrets
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import Scenario, scenario

from mmo_orange.simulator.state import Grant, OrangeSandbox, Sandbox, SonatelTxn, settle_at
from mmo_orange.wire import SonatelMerchantCallback, SonatelParty, SonatelTransaction

SENEGAL_MSISDN = re.compile(r"^7[78]\d{7}$")
# Sonatel outcomes settled after the delay: (status, description). 2000 is documented [O9];
# the other problem codes (2011, 2040, 2041, 2050) are this simulator's (derived).
SONATEL_FINAL = {
    "cancelled": ("CANCELLED", "Transaction annulee par le client"),
    "unreachable": ("FAILED", "Delai de confirmation depasse"),
    "wrong_pin": ("REJECTED", "Code PIN incorrect"),
}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[Any]:
    return Response(
        {
            "type": f"https://api.orange-sonatel.com/errors/{code}",
            "title": title,
            "instance": extra.pop("instance", None),
            "status": str(status),
            "code": code,
            "detail": detail,
            **extra,
        },
        status_code=status,
        media_type="application/problem+json",
    )


def _grant(sandbox: OrangeSandbox, request: Request) -> Grant | Response[Any]:
    """The caller's grant (of the Sonatel token server), or the 401 problem."""
    grant = sandbox.grant(request.headers.get("authorization", ""), "sonatel")
    if grant is None or grant.expiry < time.time():
        return problem(
            401, "401", "Unauthorized", "Invalid or expired access token", instance=request.url.path
        )
    return grant


def _auth(sandbox: OrangeSandbox, request: Request) -> Response[Any] | None:
    grant = _grant(sandbox, request)
    return None if isinstance(grant, Grant) else grant


async def _gate(sandbox: OrangeSandbox, request: Request) -> Grant | Response[Any]:
    refused = await sandbox.gate(lambda: _auth(sandbox, request), _server_error)
    return refused if refused is not None else _grant(sandbox, request)


def _server_error(status: int) -> Response[Any]:
    return problem(status, str(status), "Server Error", "Simulated failure")


def _view(txn: SonatelTxn) -> dict[str, Any]:
    status, description = txn.status, txn.description
    if txn.final is not None and time.time() >= txn.final_at:
        status, description = txn.final
    answer = {
        "transactionId": txn.transaction_id,
        "status": status,
        "reference": txn.body.reference,
    }
    if description:
        answer["description"] = description
    return answer


@post(["/oauth/token", "/oauth/v1/token"], status_code=200)
async def sonatel_token(request: Request, sandbox: Sandbox) -> Response[Any]:
    await sandbox.injector.latency()
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    if form.get("grant_type") != "client_credentials":
        return Response(
            {"error": "unsupported_grant_type", "error_description": "client_credentials"},
            status_code=400,
        )
    accounts = sandbox.holders("sonatel", form.get("client_id", ""), form.get("client_secret", ""))
    if not accounts:
        return Response(
            {"error": "invalid_client", "error_description": "Bad client credentials"},
            status_code=401,
        )
    return Response(
        sandbox.new_token(3600, "sonatel", accounts) | {"scope": "eWallet"}, status_code=200
    )


@get("/api/account/v1/publicKeys")
async def sonatel_public_key(request: Request, sandbox: Sandbox) -> Response[Any]:
    refused = _auth(sandbox, request)
    if refused is not None:
        return refused
    return Response(
        {
            "keyId": "sim-" + secrets.token_hex(4),
            "keyType": "RSA",
            "keySize": 2048,
            "key": base64.b64encode(sandbox.public_der).decode(),
        }
    )


def _kind(path: str) -> str:
    if path.endswith("/cashins"):
        return "cashin"
    return "onestep" if "onestep" in path else "payment"


def _body_refusal(body: SonatelTransaction, instance: str) -> Response[Any] | None:
    amount = body.amount
    if amount.unit != "XOF" or not isinstance(amount.value, int) or amount.value <= 0:
        return problem(
            400,
            "400",
            "Bad Request",
            "amount must be a positive XOF integer",
            instance=instance,
            violations=[{"field": "amount", "message": "invalid"}],
        )
    if len(body.reference) > 50:
        return problem(400, "400", "Bad Request", "reference is too long", instance=instance)
    customer = body.customer
    if customer.idType != "MSISDN" or not SENEGAL_MSISDN.match(customer.id):
        return problem(
            400, "2000", "Bad Request", "Customer account does not exist", instance=instance
        )
    return None


def _partner(
    sandbox: OrangeSandbox, grant: Grant, body: SonatelTransaction, kind: str, instance: str
) -> str | Response[Any]:
    """The account the partner is, among the token's: its retailer (number and PIN) for a
    cash-in, its merchant code for a payment. Another account's is refused as unknown."""
    partner = body.partner
    if kind == "cashin":
        account = sandbox.holder(
            grant,
            lambda a: partner.id == a.sonatel_retailer_msisdn and sandbox.pin_ok(partner, a),
        )
        if account is None:
            return problem(
                400, "2041", "Bad Request", "Invalid partner PIN code", instance=instance
            )
        return account
    account = sandbox.holder(
        grant, lambda a: partner.idType == "CODE" and partner.id == a.sonatel_merchant_code
    )
    if account is None:
        return problem(400, "2050", "Bad Request", "Unknown merchant code", instance=instance)
    return account


def _party_refusal(
    sandbox: OrangeSandbox, body: SonatelTransaction, kind: str, case: Scenario, instance: str
) -> Response[Any] | None:
    """The payer's funds, the one-step OTP."""
    settings = sandbox.settings
    if case == "insufficient_funds":
        return problem(400, "2011", "Bad Request", "Solde insuffisant", instance=instance)
    if kind == "onestep" and (body.customer.otp != settings.sim_otp or case == "wrong_pin"):
        return problem(400, "2040", "Bad Request", "OTP invalide ou expire", instance=instance)
    return None


def _notify(
    sandbox: OrangeSandbox,
    txn: SonatelTxn,
    final: tuple[str, str | None],
    case: Scenario,
    lead: float,
) -> None:
    """The callback to the merchant's registered URL, when one is registered."""
    code = sandbox.accounts[txn.account].sonatel_merchant_code
    registered = sandbox.merchant_callbacks.get((txn.account, code))
    if registered is None:
        return
    body = txn.body
    note = {
        "apiKey": registered.apiKey,
        "transactionId": txn.transaction_id,
        "status": final[0],
        "reference": body.reference,
        "amount": {"unit": body.amount.unit, "value": body.amount.value},
        "partner": {"idType": body.partner.idType, "id": body.partner.id},
        "customer": {"idType": "MSISDN", "id": body.customer.id},
        "type": "CASHIN" if txn.kind == "cashin" else "MERCHANT_PAYMENT",
        "metadata": body.metadata or {},
    }
    sandbox.notify(
        registered.callbackUrl,
        msgspec.json.encode(note),
        case=case,
        delay=sandbox.delay,
        lead=lead,
    )


def _start(
    sandbox: OrangeSandbox, account: str, body: SonatelTransaction, kind: str, case: Scenario
) -> SonatelTxn:
    """Record the transaction, settle it after the delay, notify the merchant."""
    prefix = "CI" if kind == "cashin" else "MP"
    txn = SonatelTxn(
        account=account,
        transaction_id=f"{prefix}{time.strftime('%y%m%d.%H%M')}.{secrets.token_hex(3).upper()}",
        kind=kind,
        body=body,
        status={"cashin": "PENDING", "onestep": "SUCCESS"}.get(kind, "INITIATED"),
    )
    sandbox.sonatel[txn.transaction_id] = txn
    # one-step payments are settled on the spot: only the synchronous refusals above
    final = ("SUCCESS", None) if kind == "onestep" else SONATEL_FINAL.get(case, ("SUCCESS", None))
    txn.final = final
    lead = sandbox.delay  # the gateway stores the transactionId first
    txn.final_at = settle_at(sandbox.delay + lead)
    if kind == "cashin" and final[0] == "SUCCESS":
        sandbox.retailer_balance[account] -= int(Decimal(str(body.amount.value)))
    sandbox.record(
        txn.transaction_id,
        account,
        family="sonatel",
        kind=kind,
        # the wallet in international digits (the body carries Senegal's 9 digits)
        msisdn="221" + body.customer.id,
        reference=body.reference,
        amount=body.amount.value,
        currency=body.amount.unit,
        status=final[0],
        reason=case,
    )
    _notify(sandbox, txn, final, case, lead)
    return txn


@post(
    ["/api/eWallet/v1/payments", "/api/eWallet/v1/payments/onestep", "/api/eWallet/v1/cashins"],
    status_code=200,
)
async def sonatel_transaction(request: Request, sandbox: Sandbox) -> Response[Any]:
    path = request.url.path
    kind = _kind(path)
    instance = path[path.index("/api/") :]
    grant = await _gate(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    try:
        body = msgspec.json.decode(await request.body(), type=SonatelTransaction)
    except msgspec.MsgspecError as exc:
        return problem(
            400,
            "400",
            "Bad Request",
            "Invalid request body",
            instance=instance,
            violations=[{"message": str(exc)}],
        )
    case = scenario(body.customer.id)
    refused = _body_refusal(body, instance)
    if refused is not None:
        return refused
    account = _partner(sandbox, grant, body, kind, instance)
    if not isinstance(account, str):
        return account
    refused = _party_refusal(sandbox, body, kind, case, instance)
    if refused is not None:
        return refused
    txn = _start(sandbox, account, body, kind, case)
    await sandbox.hang()
    answer = {
        "transactionId": txn.transaction_id,
        "status": txn.status,
        "reference": body.reference,
        "requestId": secrets.token_hex(8),
        "description": "Transaction en attente de confirmation (#144#)"
        if txn.status == "INITIATED"
        else "Transaction prise en compte",
    }
    return Response(answer)


@get("/api/eWallet/v1/transactions/{transaction_id:str}/status")
async def sonatel_status(
    request: Request, transaction_id: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    grant = await _gate(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    txn = sandbox.sonatel.get(transaction_id)
    if txn is None or txn.account not in grant.accounts:  # another account's: as unknown
        return problem(404, "404", "Not Found", "Transaction not found", instance=request.url.path)
    return Response(_view(txn))


@post("/api/eWallet/v1/account/retailer/balance", status_code=200)
async def sonatel_balance(request: Request, sandbox: Sandbox) -> Response[Any]:
    grant = _grant(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    try:
        party = msgspec.json.decode(await request.body(), type=SonatelParty)
    except msgspec.MsgspecError as exc:
        return problem(400, "400", "Bad Request", str(exc))
    account = sandbox.holder(
        grant, lambda a: party.id == a.sonatel_retailer_msisdn and sandbox.pin_ok(party, a)
    )
    if account is None:
        return problem(400, "2041", "Bad Request", "Invalid partner PIN code")
    return Response({"value": sandbox.retailer_balance[account], "unit": "XOF"})


@post("/api/notification/v1/merchantcallback", status_code=200)
async def sonatel_merchant_callback(request: Request, sandbox: Sandbox) -> Response[Any]:
    grant = _grant(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    try:
        body = msgspec.json.decode(await request.body(), type=SonatelMerchantCallback)
    except msgspec.MsgspecError as exc:
        return problem(400, "400", "Bad Request", str(exc))
    account = sandbox.holder(grant, lambda a: body.code == a.sonatel_merchant_code)
    if account is None:
        return problem(400, "2050", "Bad Request", "Unknown merchant code")
    sandbox.merchant_callbacks[(account, body.code)] = body
    return Response({"code": body.code, "name": body.name, "callbackUrl": body.callbackUrl})


ROUTES = [
    sonatel_token,
    sonatel_public_key,
    sonatel_transaction,
    sonatel_status,
    sonatel_balance,
    sonatel_merchant_callback,
]
