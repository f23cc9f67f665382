"""Orange Cameroon omcoreapis: `POST /token`, then `/omcoreapis/{version}/{mp|cashin}/init`,
`/pay`, `mp/push/{payToken}`, `/paymentstatus/{payToken}` with Bearer and X-AUTH-TOKEN;
business errors as HTTP 417 `NNNNN :: text`; notifications `{payToken, status, message}`."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_orange.simulator.gateway import basic_token
from mmo_orange.simulator.state import MpTxn, OrangeSandbox, Sandbox, settle_at
from mmo_orange.wire import MpPay

CAMEROON_MSISDN = re.compile(r"^(69\d{7}|65[5-9]\d{6})$")
# Cameroon outcomes by scenario: (final status, code, text). 60019 is documented [O7];
# the others are this simulator's (derived) wording of the same envelope.
CAMEROON_FINAL = {
    "cancelled": ("CANCELLED", None, "Transaction annulee par le client"),
    "unreachable": ("EXPIRED", None, "Transaction expiree"),
    "wrong_pin": ("FAILED", "60011", "Le code PIN saisi est incorrect"),
}
INSUFFICIENT = ("60019", "Le solde du compte du payeur est insuffisant")
# The longest orderId and description taken: the sources give none, so these are the
# plugin's own (derived) limits, held here so that a plugin exceeding them is caught.
TEXT_LIMITS = (("orderId", 30), ("description", 100))
# `mp/push` on a payToken that is no longer pending: (code, text) by its status; the sources
# give no refusal for this case, so code and wording are this simulator's (derived)
PUSH_REFUSED = {
    "SUCCESSFULL": ("60100", "Transaction deja effectuee"),
    "EXPIRED": ("60101", "Transaction expiree"),
    "CANCELLED": ("60102", "Transaction annulee"),
    "FAILED": ("60102", "Transaction deja traitee"),
}


def _both(endpoint: str) -> list[str]:
    """The mp (merchant payment) and cashin paths of one endpoint."""
    return [f"/omcoreapis/{{version:str}}/{kind}/{endpoint}" for kind in ("mp", "cashin")]


def _kind(request: Request) -> str:
    return "cashin" if "/cashin/" in request.url.path else "mp"


def _fault(status: int, code: int, message: str, description: str) -> Response[Any]:
    return Response(
        {"fault": {"code": code, "message": message, "description": description}},
        status_code=status,
    )


def _message(message: str, status: int) -> Response[Any]:
    return Response({"message": message, "data": None}, status_code=status)


def _caller(sandbox: OrangeSandbox, request: Request) -> str | Response[Any]:
    """The account calling: its bearer (of the Cameroon token server) and the X-AUTH-TOKEN
    of one of the bearer's accounts (another account's channel user is refused)."""
    grant = sandbox.grant(request.headers.get("authorization", ""), "cameroon")
    if grant is None:
        return _fault(401, 900901, "Invalid Credentials", "Access failure for API")
    if grant.expiry < time.time():
        return _fault(401, 900901, "Invalid Credentials", "The access token expired")
    given = request.headers.get("x-auth-token")
    account = sandbox.holder(grant, lambda a: a.cameroon_auth_token == given)
    if account is None:
        return _message("Invalid X-AUTH-TOKEN", 403)
    return account


def _auth(sandbox: OrangeSandbox, request: Request) -> Response[Any] | None:
    caller = _caller(sandbox, request)
    return None if isinstance(caller, str) else caller


async def _gate(sandbox: OrangeSandbox, request: Request) -> str | Response[Any]:
    """The calling account, or the refusal (or an injected failure)."""
    refused = await sandbox.gate(
        lambda: _auth(sandbox, request),
        lambda status: _fault(status, 101503, "Runtime Error", "Simulated failure"),
    )
    return refused if refused is not None else _caller(sandbox, request)


def _confirm_status(status: str, code: str | None) -> str | None:
    if status not in ("PENDING", "SUCCESSFULL"):
        return code
    return "200" if status == "SUCCESSFULL" else None


def mp_data(txn: MpTxn) -> dict[str, Any]:
    status, code, text = "PENDING", None, None
    if txn.final is not None and time.time() >= txn.final_at:
        status, code, text = txn.final
    body = txn.body
    return {
        "payToken": txn.pay_token,
        "txnid": txn.txnid,
        "status": status,
        "subscriberMsisdn": body.subscriberMsisdn if body else None,
        "amount": int(body.amount) if body else None,
        "inittxnstatus": "200",
        "inittxnmessage": "Paiement e la clientele done.",
        "confirmtxnstatus": _confirm_status(status, code),
        "confirmtxnmessage": text,
    }


def _body_fields(body: MpPay) -> dict[str, Any]:
    return {
        "txnmode": body.orderId,
        "notifUrl": body.notifUrl,
        "description": body.description,
        "channelUserMsisdn": body.channelUserMsisdn,
    }


@post("/token", status_code=200)
async def cameroon_token(request: Request, sandbox: Sandbox) -> Response[Any]:
    return await basic_token(request, sandbox, "cameroon", 3600)


@post(_both("init"), status_code=200)
async def mp_init(request: Request, version: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    kind = _kind(request)
    account = await _gate(sandbox, request)
    if not isinstance(account, str):
        return account
    prefix = "MP" if kind == "mp" else "CI"
    txn = MpTxn(account=account, pay_token=prefix + secrets.token_hex(13).upper(), kind=kind)
    sandbox.mp[txn.pay_token] = txn
    return Response(
        {"message": "Payment request successfully initiated", "data": {"payToken": txn.pay_token}}
    )


def _declined(
    sandbox: OrangeSandbox, txn: MpTxn, code: str, text: str, status: int
) -> Response[Any]:
    txn.used = True
    # final at once: a later paymentstatus (or push) sees FAILED, not PENDING
    txn.final, txn.final_at = ("FAILED", code, text), time.time()
    sandbox.record(txn.pay_token, txn.account, status="FAILED", code=code)
    return Response(
        {
            "message": f"{code} :: {text}",
            "data": {
                "payToken": txn.pay_token,
                "txnid": None,
                "inittxnstatus": code,
                "inittxnmessage": text,
                "status": "FAILED",
            },
        },
        status_code=status,
    )


def _pay_refusal(
    sandbox: OrangeSandbox, account: str, txn: MpTxn | None, kind: str, body: MpPay
) -> Response[Any] | None:
    """A payToken not for this payment (or another account's), a malformed number or a
    field over its limit: 400; a wrong merchant PIN declines the payment (417)."""
    if txn is None or txn.kind != kind or txn.used or txn.account != account:
        return _message("PayToken invalide ou deja utilise", 400)
    for name in ("subscriberMsisdn", "channelUserMsisdn"):
        if not CAMEROON_MSISDN.match(getattr(body, name)):
            return _message(f"{name} invalide (9 chiffres sans 237)", 400)
    for name, limit in TEXT_LIMITS:
        if len(getattr(body, name)) > limit:
            return _message(f"{name} invalide (au plus {limit} caracteres)", 400)
    settings = sandbox.accounts[account]
    if (
        body.channelUserMsisdn != settings.cameroon_channel_msisdn
        or body.pin != settings.cameroon_pin
    ):
        return _declined(sandbox, txn, "00068", "Le code PIN du marchand est incorrect", 417)
    return None


def _settle(sandbox: OrangeSandbox, txn: MpTxn, body: MpPay, kind: str) -> None:
    """The payment's outcome by test number, final after the delay, and its notification."""
    case = scenario(body.subscriberMsisdn)
    txn.txnid = (
        f"{'MP' if kind == 'mp' else 'CI'}{time.strftime('%y%m%d.%H%M')}."
        + secrets.token_hex(3).upper()
    )
    final = CAMEROON_FINAL.get(case, ("SUCCESSFULL", "200", "Successful Payment"))
    txn.final = final
    txn.final_at = settle_at(sandbox.delay)
    sandbox.record(txn.pay_token, txn.account, status=final[0], txnid=txn.txnid, reason=case)
    message = f"{final[1]} :: {final[2]}" if final[1] not in (None, "200") else final[2]
    note = {"payToken": txn.pay_token, "status": final[0], "message": message}
    sandbox.notify(body.notifUrl, msgspec.json.encode(note), case=case, delay=sandbox.delay)


@post(_both("pay"), status_code=200)
async def mp_pay(request: Request, version: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    kind = _kind(request)
    account = await _gate(sandbox, request)
    if not isinstance(account, str):
        return account
    try:
        body = msgspec.json.decode(await request.body(), type=MpPay)
    except msgspec.MsgspecError as exc:
        return _message(f"Bad request: {exc}", 400)
    txn = sandbox.mp.get(body.payToken)
    refused = _pay_refusal(sandbox, account, txn, kind, body)
    if refused is not None or txn is None:
        return refused or _message("PayToken invalide ou deja utilise", 400)
    txn.used = True
    txn.body = body
    sandbox.record(
        txn.pay_token,
        account,
        family="cameroon",
        kind=kind,
        order_id=body.orderId,
        description=body.description,
        amount=body.amount,
        currency="XAF",
        status="PENDING",
    )
    if scenario(body.subscriberMsisdn) == "insufficient_funds":
        return _declined(sandbox, txn, *INSUFFICIENT, 417)
    _settle(sandbox, txn, body, kind)
    await sandbox.hang()
    data = mp_data(txn) | {
        "id": len(sandbox.mp),
        "createtime": str(int(time.time())),
        **_body_fields(body),
        "status": "PENDING",
        "confirmtxnstatus": None,
        "confirmtxnmessage": None,
    }
    return Response({"message": "Merchant payment successfully initiated", "data": data})


@get("/omcoreapis/{version:str}/mp/push/{pay_token:str}")
async def mp_push(
    request: Request, version: FromPath[str], pay_token: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    """Send the USSD prompt of a pending merchant payment again [O7, O15].

    Answers the `{message, data}` envelope of `mp/pay` with "Push sent to customer"
    [O7 stub]. A payToken no longer pending (paid, failed, cancelled, expired) is refused
    with a 417 business error `NNNNN :: text` (code and wording derived).
    """
    account = await _gate(sandbox, request)
    if not isinstance(account, str):
        return account
    txn = sandbox.mp.get(pay_token)
    if txn is None or txn.kind != "mp" or txn.account != account:
        return _message("PayToken introuvable", 404)
    if txn.body is None:
        return _message("Aucun paiement initie pour ce payToken", 400)
    data = mp_data(txn)
    if data["status"] != "PENDING":
        code, text = PUSH_REFUSED.get(data["status"], PUSH_REFUSED["FAILED"])
        sandbox.record(txn.pay_token, txn.account, push_refused=data["status"])
        return Response({"message": f"{code} :: {text}", "data": data}, status_code=417)
    txn.pushes += 1
    sandbox.record(txn.pay_token, txn.account, pushes=txn.pushes)
    await sandbox.hang()
    data |= _body_fields(txn.body)
    return Response({"message": "Push sent to customer", "data": data})


@get(_both("paymentstatus/{pay_token:str}"))
async def mp_status(
    request: Request, version: FromPath[str], pay_token: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    kind = _kind(request)
    account = await _gate(sandbox, request)
    if not isinstance(account, str):
        return account
    txn = sandbox.mp.get(pay_token)
    if txn is None or txn.kind != kind or txn.account != account:
        return _message("Transaction introuvable", 404)
    data = (
        mp_data(txn) if txn.body is not None else {"payToken": txn.pay_token, "status": "INITIATED"}
    )
    if txn.final is not None and txn.final[0] == "FAILED" and txn.body is None:
        data["status"] = "FAILED"
    return Response({"message": "Transaction retrieved successfully", "data": data})


ROUTES = [cameroon_token, mp_init, mp_pay, mp_push, mp_status]
