"""WebPay: `POST /oauth/v3/token`, `/orange-money-webpay/{cc}/v1/webpayment` and
`/transactionstatus` (both 201), the payment page `/payment/pay_token/{pay_token}` (number
and OTP), and notifications `{status, notif_token, txnid}` to notif_url."""

from __future__ import annotations

import html
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from mmo_core.simulation import scenario

from mmo_orange.simulator.gateway import basic_token, gateway_error
from mmo_orange.simulator.state import Grant, OrangeSandbox, Sandbox, WebTxn, settle_at
from mmo_orange.wire import TransactionStatusQuery, WebPayment

# WebPay country path -> the only currency it takes ("dev" is Orange's sandbox)
WEBPAY_CURRENCY = {
    "dev": "OUV",
    "ci": "XOF",
    "ml": "XOF",
    "sn": "XOF",
    "ne": "XOF",
    "gw": "XOF",
    "cm": "XAF",
    "cf": "XAF",
    "gn": "GNF",
    "mg": "MGA",
    "cd": "CDF",
    "bw": "BWP",
    "sl": "SLE",
    "lr": "LRD",
}


# The longest text WebPay takes in each field, checked in this order.
TEXT_LIMITS = (
    ("order_id", 30),
    ("reference", 30),
    ("return_url", 120),
    ("cancel_url", 120),
    ("notif_url", 120),
)


def _public_root(request: Request) -> str:
    """Where this simulator is reached, mount prefix included (`/_sim/orange` in the host)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    prefix = raw.decode("latin-1").split("/orange-money-webpay/", 1)[0]
    return f"{request.url.scheme}://{request.url.netloc}{prefix}"


def _bearer(sandbox: OrangeSandbox, request: Request) -> Response[Any] | None:
    """None when the bearer is valid, else Orange's gateway error."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer ") or not header[7:]:
        return gateway_error(401, 40, "Missing credentials", "Missing bearer token")
    grant = sandbox.grant(header, "webpay")
    if grant is None:
        return gateway_error(401, 41, "Invalid credentials", "Unknown bearer token")
    if grant.expiry < time.time():
        return gateway_error(401, 42, "Expired credentials", "The access token expired")
    return None


async def _gate(sandbox: OrangeSandbox, request: Request) -> Grant | Response[Any]:
    """The caller's grant, or Orange's refusal (or an injected failure)."""
    refused = await sandbox.gate(
        lambda: _bearer(sandbox, request),
        lambda status: gateway_error(status, 1, "Internal error", "Simulated failure"),
    )
    if refused is not None:
        return refused
    grant = sandbox.grant(request.headers.get("authorization", ""), "webpay")
    assert grant is not None  # `_bearer` let it through
    return grant


def web_status(txn: WebTxn) -> str:
    if txn.final is not None and time.time() >= txn.final_at:
        return txn.final
    return txn.status


def confirm(sandbox: OrangeSandbox, txn: WebTxn, payer: str, lead: float = 0.0) -> None:
    """The payer clicked "Confirmer": PENDING now, final after the delay.

    `lead`: auto-pay's payer takes that long more, so the gateway has stored the
    payment's reference before the notification comes."""
    case = scenario(payer)
    txn.payer = payer[-4:]
    if time.time() - txn.created > sandbox.settings.sim_webpay_validity:
        txn.status = "EXPIRED"
        sandbox.record(txn.pay_token, txn.account, status="EXPIRED")
        return
    if case == "cancelled":  # the payer went back to the merchant: stays INITIATED
        sandbox.record(txn.pay_token, txn.account, status="INITIATED", cancelled=True)
        return
    if case == "unreachable":  # confirmed after the token's validity
        txn.status = "EXPIRED"
        sandbox.record(txn.pay_token, txn.account, status="EXPIRED")
        return
    txn.status = "PENDING"
    declined = case in ("insufficient_funds", "wrong_pin")
    txn.final = "FAILED" if declined else "SUCCESS"
    txn.txnid = "MP" + time.strftime("%y%m%d.%H%M.") + secrets.token_hex(3).upper()
    txn.final_at = settle_at(sandbox.delay + lead)
    sandbox.record(
        txn.pay_token,
        txn.account,
        status=txn.final,
        txnid=txn.txnid,
        payer_last4=txn.payer,
        reason=case,
    )
    note = {"status": txn.final, "notif_token": txn.notif_token, "txnid": txn.txnid}
    sandbox.notify(
        txn.body.notif_url, msgspec.json.encode(note), case=case, delay=sandbox.delay, lead=lead
    )


def _merchant(
    sandbox: OrangeSandbox, grant: Grant, body: WebPayment, cc: str
) -> str | Response[Any]:
    """The account whose merchant key the body names, among the token's: another
    application's merchant key is refused as an unknown one; an application whose offer is
    one country (`webpay_country`) is refused any other country's path."""
    account = sandbox.holder(grant, lambda a: a.merchant_key == body.merchant_key)
    if account is None:
        return gateway_error(403, 50, "Access denied", "Invalid merchant_key")
    offer = sandbox.accounts[account].webpay_country.strip().lower()
    if offer and offer != cc:
        return gateway_error(
            403, 50, "Access denied", f"This application has no WebPay offer for {cc!r}"
        )
    return account


def _refusal(sandbox: OrangeSandbox, body: WebPayment, cc: str) -> Response[Any] | None:
    """WebPay's refusals of a well-formed webpayment body, or None."""
    if body.currency != WEBPAY_CURRENCY[cc]:
        return gateway_error(
            400, 24, "Invalid body field", f"currency must be {WEBPAY_CURRENCY[cc]} here"
        )
    for name, limit in TEXT_LIMITS:
        if len(getattr(body, name)) > limit:
            return gateway_error(400, 24, "Invalid body field", f"{name} is too long")
    if body.amount <= 0:
        return gateway_error(400, 24, "Invalid body field", "amount must be positive")
    if (body.merchant_key, body.order_id) in sandbox.orders:
        return gateway_error(400, 25, "Duplicate order_id", "This order_id was already used")
    return None


@post("/oauth/v3/token", status_code=200)
async def webpay_token(request: Request, sandbox: Sandbox) -> Response[Any]:
    settings = sandbox.settings
    return await basic_token(request, sandbox, "webpay", settings.sim_token_lifetime)


@post("/orange-money-webpay/{cc:str}/v1/webpayment", status_code=201)
async def webpayment(request: Request, cc: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    grant = await _gate(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    if cc not in WEBPAY_CURRENCY:
        return gateway_error(404, 60, "Resource not found", f"No WebPay offer for {cc!r}")
    try:
        body = msgspec.json.decode(await request.body(), type=WebPayment)
    except msgspec.MsgspecError as exc:
        return gateway_error(400, 23, "Missing body field", str(exc))
    account = _merchant(sandbox, grant, body, cc)
    if not isinstance(account, str):
        return account
    refused = _refusal(sandbox, body, cc)
    if refused is not None:
        return refused
    sandbox.orders.add((body.merchant_key, body.order_id))
    txn = WebTxn(
        account=account,
        pay_token=secrets.token_hex(32),
        notif_token=secrets.token_hex(16),
        body=body,
        cc=cc,
        created=time.time(),
    )
    sandbox.web[txn.pay_token] = txn
    sandbox.record(
        txn.pay_token,
        account,
        family="webpay",
        order_id=body.order_id,
        reference=body.reference,
        amount=body.amount,
        currency=body.currency,
        status="INITIATED",
    )
    page = _public_root(request) + f"/payment/pay_token/{txn.pay_token}"
    late = sandbox.injector.strikes_hang()
    if sandbox.autopay and not late:
        # the payer reaches Orange's page through the payment_url in this answer: one that
        # comes too late for the gateway never reaches a payer, who then never pays
        payer = request.headers.get("x-mmo-simulator-payer") or "0100"
        confirm(sandbox, txn, payer, lead=sandbox.delay)
    await sandbox.hang(late)
    return Response(
        {
            "status": 201,
            "message": "OK",
            "pay_token": txn.pay_token,
            "payment_url": page,
            "notif_token": txn.notif_token,
        },
        status_code=201,
    )


def _missing(query: TransactionStatusQuery) -> Response[Any] | None:
    for name, go in (("OrderId", "order_id"), ("Amount", "amount"), ("PayToken", "pay_token")):
        if getattr(query, go) in (None, ""):
            return gateway_error(
                400,
                23,
                "Missing body field",
                f"Key: 'GetTransactionStatusInfo.{name}' Error:Field validation for "
                f"'{name}' failed on the 'required' tag",
            )
    return None


@post("/orange-money-webpay/{cc:str}/v1/transactionstatus", status_code=201)
async def transactionstatus(request: Request, cc: FromPath[str], sandbox: Sandbox) -> Response[Any]:
    grant = await _gate(sandbox, request)
    if not isinstance(grant, Grant):
        return grant
    try:
        query = msgspec.json.decode(await request.body(), type=TransactionStatusQuery)
    except msgspec.MsgspecError as exc:
        return gateway_error(400, 23, "Missing body field", str(exc))
    refused = _missing(query)
    if refused is not None:
        return refused
    txn = sandbox.web.get(query.pay_token or "")
    if (
        txn is None
        or txn.account not in grant.accounts  # another application's order: as unknown
        or txn.cc != cc
        or txn.body.order_id != query.order_id
        or txn.body.amount != query.amount
    ):
        return gateway_error(404, 60, "Resource not found", "No such transaction")
    answer: dict[str, Any] = {"status": web_status(txn), "order_id": txn.body.order_id}
    if answer["status"] == "SUCCESS":
        answer["txnid"] = txn.txnid
    return Response(answer, status_code=201)


# -- the payment page ------------------------------------------------------------------------


def _page(txn: WebTxn, message: str = "", status: int = 200) -> Response[str]:
    action = f"/payment/pay_token/{txn.pay_token}"
    notice = f'<p class="error">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Orange Money - Paiement</title></head>
<body>
<h1>Orange Money</h1>
<p>{html.escape(txn.body.reference)} : {txn.body.amount} {html.escape(txn.body.currency)}</p>
{notice}
<form method="post" action="{html.escape(action)}">
  <label>Numero Orange Money <input name="msisdn" type="tel" required></label>
  <label>Code OTP (#144*82#) <input name="otp" type="password" required></label>
  <button type="submit" name="action" value="confirm">Confirmer</button>
  <button type="submit" name="action" value="cancel" formnovalidate>Annuler</button>
</form>
</body></html>"""
    return Response(body, media_type="text/html", status_code=status)


def _unknown_page() -> Response[str]:
    return Response("<p>Transaction introuvable</p>", media_type="text/html", status_code=404)


@get("/payment/pay_token/{pay_token:str}", media_type="text/html")
async def payment_page(pay_token: FromPath[str], sandbox: Sandbox) -> Response[str]:
    txn = sandbox.web.get(pay_token)
    if txn is None:
        return _unknown_page()
    if txn.status != "INITIATED":
        return Response(f"<p>Transaction {html.escape(txn.status)}</p>", media_type="text/html")
    return _page(txn)


@post("/payment/pay_token/{pay_token:str}", media_type="text/html", status_code=200)
async def payment_submit(
    request: Request, pay_token: FromPath[str], sandbox: Sandbox
) -> Response[Any]:
    txn = sandbox.web.get(pay_token)
    if txn is None:
        return _unknown_page()
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    if form.get("action") == "cancel":
        sandbox.record(txn.pay_token, txn.account, status="INITIATED", cancelled=True)
        return Response(
            "", status_code=303, headers={"Location": txn.body.cancel_url}, media_type="text/html"
        )
    if txn.status != "INITIATED":
        return _page(txn, f"Transaction {txn.status}", status=409)
    msisdn = re.sub(r"\D", "", form.get("msisdn", ""))
    if len(msisdn) < 8:
        return _page(txn, "Numero invalide", status=400)
    if form.get("otp") != sandbox.settings.sim_otp:
        return _page(txn, "Code OTP incorrect", status=400)
    confirm(sandbox, txn, msisdn)
    return Response(
        "", status_code=303, headers={"Location": txn.body.return_url}, media_type="text/html"
    )


ROUTES = [webpay_token, webpayment, transactionstatus, payment_page, payment_submit]
