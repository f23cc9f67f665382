"""One simulator for Orange Money's API families, over real HTTP.

- OAuth v3 (`POST /oauth/v3/token`, Basic auth + form body), WebPay `webpayment` and
  `transactionstatus` under `/orange-money-webpay/{cc}/v1/` (both answer 201), the
  payment page `/payment/pay_token/{pay_token}` as a real HTML form (number + OTP), and
  notifications `{status, notif_token, txnid}` to `notif_url` for SUCCESS or FAILED only.
- Orange Cameroon: `POST /token`, then `/omcoreapis/{version}/{mp|cashin}/init`, `/pay`,
  `mp/push/{payToken}`, `/paymentstatus/{payToken}` with Bearer + X-AUTH-TOKEN; business
  errors as HTTP 417 `NNNNN :: text`; notifications `{payToken, status, message}`.
- Orange Senegal (Sonatel): `POST /oauth/token` (and `/oauth/v1/token`, form client_id and
  client_secret), `GET /api/account/v1/publicKeys` (an RSA key made at start-up; PINs are
  decrypted with it), `/api/eWallet/v1/payments` (CLASSIC: INITIATED, the payer confirms),
  `/payments/onestep` (OTP), `/cashins` (retailer PIN), `/transactions/{id}/status`,
  `/account/retailer/balance`, `POST /api/notification/v1/merchantcallback`; errors as
  RFC-7807-like problems; callbacks to the registered URL with the registered apiKey.
- Gateway errors `{code, message, description}`: 401/40 missing, 401/41 invalid, 401/42
  expired credentials; 404/60 for an unknown path.

Test numbers (shared/DESIGN.md) by the payer's last four digits. WebPay never receives the
payer's number: on the HTML page it is the number typed in; in auto-pay mode the plugin's
`X-Mmo-Simulator-Payer` header (last four digits, sent to this simulator only).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from mmo_core.simulation import Simulation, scenario, simulator_routes

from mmo_orange.settings import OrangeSettings
from mmo_orange.wire import (
    MpPay,
    SonatelMerchantCallback,
    SonatelParty,
    SonatelTransaction,
    TransactionStatusQuery,
    WebPayment,
)

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
CAMEROON_MSISDN = re.compile(r"^(69\d{7}|65[5-9]\d{6})$")

# Cameroon outcomes by scenario: (final status, code, text). 60019 is documented [O7];
# the others are this simulator's (derived) wording of the same envelope.
CAMEROON_FINAL = {
    "cancelled": ("CANCELLED", None, "Transaction annulee par le client"),
    "unreachable": ("EXPIRED", None, "Transaction expiree"),
    "wrong_pin": ("FAILED", "60011", "Le code PIN saisi est incorrect"),
}
INSUFFICIENT = ("60019", "Le solde du compte du payeur est insuffisant")
# `mp/push` on a payToken that is no longer pending: (code, text) by its status; the sources
# give no refusal for this case, so code and wording are this simulator's (derived)
PUSH_REFUSED = {
    "SUCCESSFULL": ("60100", "Transaction deja effectuee"),
    "EXPIRED": ("60101", "Transaction expiree"),
    "CANCELLED": ("60102", "Transaction annulee"),
    "FAILED": ("60102", "Transaction deja traitee"),
}

SENEGAL_MSISDN = re.compile(r"^7[78]\d{7}$")
# Sonatel outcomes settled after the delay: (status, description). 2000 is documented [O9];
# the other problem codes (2011, 2040, 2041, 2050) are this simulator's (derived).
SONATEL_FINAL = {
    "cancelled": ("CANCELLED", "Transaction annulee par le client"),
    "unreachable": ("FAILED", "Delai de confirmation depasse"),
    "wrong_pin": ("REJECTED", "Code PIN incorrect"),
}


def _gateway_error(status: int, code: int, message: str, description: str) -> Response[Any]:
    return Response(
        {"code": code, "message": message, "description": description}, status_code=status
    )


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _public_root(request: Request) -> str:
    """Where this simulator is reached, mount prefix included (`/_sim/orange` in the host)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    prefix = raw.decode("latin-1").split("/orange-money-webpay/", 1)[0]
    return f"{request.url.scheme}://{request.url.netloc}{prefix}"


def _settle_at(delay: float) -> float:
    """When a payment reads final: a little before its notification leaves, so a status
    query made on receipt of the notification (as the gateway does) already agrees."""
    return time.time() + max(delay - 0.02, delay * 0.5)


def _both(endpoint: str) -> list[str]:
    """The mp (merchant payment) and cashin paths of one endpoint."""
    return [f"/omcoreapis/{{version:str}}/{kind}/{endpoint}" for kind in ("mp", "cashin")]


def _kind(request: Request) -> str:
    return "cashin" if "/cashin/" in request.url.path else "mp"


@dataclass
class WebTxn:
    pay_token: str
    notif_token: str
    body: WebPayment
    cc: str
    created: float
    status: str = "INITIATED"
    txnid: str | None = None
    final: str | None = None
    final_at: float = 0.0
    payer: str | None = None


@dataclass
class MpTxn:
    pay_token: str
    kind: str
    used: bool = False
    body: MpPay | None = None
    txnid: str | None = None
    final: tuple[str, str | None, str] | None = None
    final_at: float = 0.0
    pushes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SonatelTxn:
    transaction_id: str
    kind: str
    body: SonatelTransaction
    status: str
    description: str | None = None
    final: tuple[str, str | None] | None = None
    final_at: float = 0.0


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[Any]:
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


def create_simulator(settings: OrangeSettings) -> Litestar:
    sim = Simulation()
    tokens: dict[str, float] = {}  # bearer -> expiry (both families)
    web: dict[str, WebTxn] = {}
    orders: set[tuple[str, str]] = set()
    mp: dict[str, MpTxn] = {}
    mode = {"autopay": settings.sim_autopay}
    # seconds before a payment settles and notifies: `callback_delay`, changeable at run time
    # (POST /_simulator/orange/delay) so a test can keep a payment pending a while
    timing = {"delay": settings.callback_delay}
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sonatel: dict[str, SonatelTxn] = {}
    merchant_callbacks: dict[str, SonatelMerchantCallback] = {}
    retailer = {"balance": 10_000_000}

    def _new_token(lifetime: int) -> dict[str, Any]:
        value = secrets.token_urlsafe(24)
        tokens[value] = time.time() + lifetime
        return {"token_type": "Bearer", "access_token": value, "expires_in": lifetime}

    def _bearer(request: Request) -> Response[Any] | None:
        """None when the bearer is valid, else Orange's gateway error."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:]:
            return _gateway_error(401, 40, "Missing credentials", "Missing bearer token")
        expiry = tokens.get(header[7:])
        if expiry is None:
            return _gateway_error(401, 41, "Invalid credentials", "Unknown bearer token")
        if expiry < time.time():
            return _gateway_error(401, 42, "Expired credentials", "The access token expired")
        return None

    async def _token(request: Request, user: str, password: str, lifetime: int) -> Response[Any]:
        await sim.injector.latency()
        credentials = _basic(request.headers.get("authorization", ""))
        if credentials is None:
            return _gateway_error(401, 40, "Missing credentials", "Basic authorization expected")
        if credentials != (user, password):
            return _gateway_error(
                401, 41, "Invalid credentials", "Invalid or missing client_id / client_secret"
            )
        form = parse_qs((await request.body()).decode(errors="replace"))
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ) or form.get("grant_type") != ["client_credentials"]:
            return Response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "form body grant_type=client_credentials expected",
                },
                status_code=400,
            )
        return Response(_new_token(lifetime), status_code=200)

    # -- WebPay ----------------------------------------------------------------------------

    @post("/oauth/v3/token", status_code=200)
    async def webpay_token(request: Request) -> Response[Any]:
        return await _token(
            request, settings.client_id, settings.client_secret, settings.sim_token_lifetime
        )

    def _web_status(txn: WebTxn) -> str:
        if txn.final is not None and time.time() >= txn.final_at:
            return txn.final
        return txn.status

    def _confirm(txn: WebTxn, payer: str, lead: float = 0.0) -> None:
        """The payer clicked "Confirmer": PENDING now, final after the delay.

        `lead`: auto-pay's payer takes that long more, so the gateway has stored the
        payment's reference before the notification comes."""
        case = scenario(payer)
        txn.payer = payer[-4:]
        if time.time() - txn.created > settings.sim_webpay_validity:
            txn.status = "EXPIRED"
            sim.ledger.record(txn.pay_token, status="EXPIRED")
            return
        if case == "cancelled":  # the payer went back to the merchant: stays INITIATED
            sim.ledger.record(txn.pay_token, status="INITIATED", cancelled=True)
            return
        if case == "unreachable":  # confirmed after the token's validity
            txn.status = "EXPIRED"
            sim.ledger.record(txn.pay_token, status="EXPIRED")
            return
        txn.status = "PENDING"
        declined = case in ("insufficient_funds", "wrong_pin")
        txn.final = "FAILED" if declined else "SUCCESS"
        txn.txnid = "MP" + time.strftime("%y%m%d.%H%M.") + secrets.token_hex(3).upper()
        txn.final_at = _settle_at(timing["delay"] + lead)
        sim.ledger.record(
            txn.pay_token, status=txn.final, txnid=txn.txnid, payer_last4=txn.payer, reason=case
        )
        if case == "no_callback":
            return
        note = {"status": txn.final, "notif_token": txn.notif_token, "txnid": txn.txnid}
        delay = lead + timing["delay"] * (10 if case == "late_callback" else 1)
        sim.callbacks.schedule(
            txn.body.notif_url,
            msgspec.json.encode(note),
            delay=delay,
            copies=2 if case == "double_callback" else 1,
        )

    async def _gate(
        request: Request,
        authorise: Callable[[Request], Response[Any] | None],
        fault: Callable[[int], Response[Any]],
    ) -> Response[Any] | None:
        """What every operator endpoint does first: latency, credentials, injected 5xx."""
        await sim.injector.latency()
        refused = authorise(request)
        if refused is not None:
            return refused
        failure = sim.injector.error_status()
        return None if failure is None else fault(failure)

    async def _webpay_gate(request: Request) -> Response[Any] | None:
        return await _gate(
            request,
            _bearer,
            lambda status: _gateway_error(status, 1, "Internal error", "Simulated failure"),
        )

    @post("/orange-money-webpay/{cc:str}/v1/webpayment", status_code=201)
    async def webpayment(request: Request, cc: FromPath[str]) -> Response[Any]:
        refused = await _webpay_gate(request)
        if refused is not None:
            return refused
        if cc not in WEBPAY_CURRENCY:
            return _gateway_error(404, 60, "Resource not found", f"No WebPay offer for {cc!r}")
        try:
            body = msgspec.json.decode(await request.body(), type=WebPayment)
        except msgspec.MsgspecError as exc:
            return _gateway_error(400, 23, "Missing body field", str(exc))
        if body.merchant_key != settings.merchant_key:
            return _gateway_error(403, 50, "Access denied", "Invalid merchant_key")
        if body.currency != WEBPAY_CURRENCY[cc]:
            return _gateway_error(
                400, 24, "Invalid body field", f"currency must be {WEBPAY_CURRENCY[cc]} here"
            )
        for name in ("order_id", "reference"):
            if len(getattr(body, name)) > 30:
                return _gateway_error(400, 24, "Invalid body field", f"{name} is too long")
        for name in ("return_url", "cancel_url", "notif_url"):
            if len(getattr(body, name)) > 120:
                return _gateway_error(400, 24, "Invalid body field", f"{name} is too long")
        if body.amount <= 0:
            return _gateway_error(400, 24, "Invalid body field", "amount must be positive")
        if (body.merchant_key, body.order_id) in orders:
            return _gateway_error(400, 25, "Duplicate order_id", "This order_id was already used")
        orders.add((body.merchant_key, body.order_id))
        txn = WebTxn(
            pay_token=secrets.token_hex(32),
            notif_token=secrets.token_hex(16),
            body=body,
            cc=cc,
            created=time.time(),
        )
        web[txn.pay_token] = txn
        sim.ledger.record(
            txn.pay_token,
            family="webpay",
            order_id=body.order_id,
            amount=body.amount,
            currency=body.currency,
            status="INITIATED",
        )
        page = _public_root(request) + f"/payment/pay_token/{txn.pay_token}"
        if mode["autopay"]:
            payer = request.headers.get("x-mmo-simulator-payer") or "0100"
            _confirm(txn, payer, lead=timing["delay"])
        await sim.injector.maybe_hang()
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

    @post("/orange-money-webpay/{cc:str}/v1/transactionstatus", status_code=201)
    async def transactionstatus(request: Request, cc: FromPath[str]) -> Response[Any]:
        refused = await _webpay_gate(request)
        if refused is not None:
            return refused
        try:
            query = msgspec.json.decode(await request.body(), type=TransactionStatusQuery)
        except msgspec.MsgspecError as exc:
            return _gateway_error(400, 23, "Missing body field", str(exc))
        for name, go in (("OrderId", "order_id"), ("Amount", "amount"), ("PayToken", "pay_token")):
            if getattr(query, go) in (None, ""):
                return _gateway_error(
                    400,
                    23,
                    "Missing body field",
                    f"Key: 'GetTransactionStatusInfo.{name}' Error:Field validation for "
                    f"'{name}' failed on the 'required' tag",
                )
        txn = web.get(query.pay_token or "")
        if (
            txn is None
            or txn.cc != cc
            or txn.body.order_id != query.order_id
            or txn.body.amount != query.amount
        ):
            return _gateway_error(404, 60, "Resource not found", "No such transaction")
        answer: dict[str, Any] = {"status": _web_status(txn), "order_id": txn.body.order_id}
        if answer["status"] == "SUCCESS":
            answer["txnid"] = txn.txnid
        return Response(answer, status_code=201)

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

    @get("/payment/pay_token/{pay_token:str}", media_type="text/html")
    async def payment_page(pay_token: FromPath[str]) -> Response[str]:
        txn = web.get(pay_token)
        if txn is None:
            return Response(
                "<p>Transaction introuvable</p>", media_type="text/html", status_code=404
            )
        if txn.status != "INITIATED":
            return Response(f"<p>Transaction {html.escape(txn.status)}</p>", media_type="text/html")
        return _page(txn)

    @post("/payment/pay_token/{pay_token:str}", media_type="text/html", status_code=200)
    async def payment_submit(request: Request, pay_token: FromPath[str]) -> Response[Any]:
        txn = web.get(pay_token)
        if txn is None:
            return Response(
                "<p>Transaction introuvable</p>", media_type="text/html", status_code=404
            )
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("action") == "cancel":
            sim.ledger.record(txn.pay_token, status="INITIATED", cancelled=True)
            return Response(
                "",
                status_code=303,
                headers={"Location": txn.body.cancel_url},
                media_type="text/html",
            )
        if txn.status != "INITIATED":
            return _page(txn, f"Transaction {txn.status}", status=409)
        msisdn = re.sub(r"\D", "", form.get("msisdn", ""))
        if len(msisdn) < 8:
            return _page(txn, "Numero invalide", status=400)
        if form.get("otp") != settings.sim_otp:
            return _page(txn, "Code OTP incorrect", status=400)
        _confirm(txn, msisdn)
        return Response(
            "", status_code=303, headers={"Location": txn.body.return_url}, media_type="text/html"
        )

    # -- Orange Cameroon omcoreapis --------------------------------------------------------

    @post("/token", status_code=200)
    async def cameroon_token(request: Request) -> Response[Any]:
        return await _token(
            request, settings.cameroon_consumer_key, settings.cameroon_consumer_secret, 3600
        )

    def _fault(status: int, code: int, message: str, description: str) -> Response[Any]:
        return Response(
            {"fault": {"code": code, "message": message, "description": description}},
            status_code=status,
        )

    def _cameroon_auth(request: Request) -> Response[Any] | None:
        header = request.headers.get("authorization", "")
        expiry = tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if expiry is None:
            return _fault(401, 900901, "Invalid Credentials", "Access failure for API")
        if expiry < time.time():
            return _fault(401, 900901, "Invalid Credentials", "The access token expired")
        if request.headers.get("x-auth-token") != settings.cameroon_auth_token:
            return Response({"message": "Invalid X-AUTH-TOKEN", "data": None}, status_code=403)
        return None

    def _mp_data(txn: MpTxn) -> dict[str, Any]:
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
            "confirmtxnstatus": code
            if status not in ("PENDING", "SUCCESSFULL")
            else ("200" if status == "SUCCESSFULL" else None),
            "confirmtxnmessage": text,
        }

    async def _cameroon_gate(request: Request) -> Response[Any] | None:
        return await _gate(
            request,
            _cameroon_auth,
            lambda status: _fault(status, 101503, "Runtime Error", "Simulated failure"),
        )

    @post(_both("init"), status_code=200)
    async def mp_init(request: Request, version: FromPath[str]) -> Response[Any]:
        kind = _kind(request)
        refused = await _cameroon_gate(request)
        if refused is not None:
            return refused
        prefix = "MP" if kind == "mp" else "CI"
        txn = MpTxn(pay_token=prefix + secrets.token_hex(13).upper(), kind=kind)
        mp[txn.pay_token] = txn
        return Response(
            {
                "message": "Payment request successfully initiated",
                "data": {"payToken": txn.pay_token},
            }
        )

    @post(_both("pay"), status_code=200)
    async def mp_pay(request: Request, version: FromPath[str]) -> Response[Any]:
        kind = _kind(request)
        refused = await _cameroon_gate(request)
        if refused is not None:
            return refused
        try:
            body = msgspec.json.decode(await request.body(), type=MpPay)
        except msgspec.MsgspecError as exc:
            return Response({"message": f"Bad request: {exc}", "data": None}, status_code=400)
        txn = mp.get(body.payToken)
        if txn is None or txn.kind != kind or txn.used:
            return Response(
                {"message": "PayToken invalide ou deja utilise", "data": None}, status_code=400
            )
        for name in ("subscriberMsisdn", "channelUserMsisdn"):
            if not CAMEROON_MSISDN.match(getattr(body, name)):
                return Response(
                    {"message": f"{name} invalide (9 chiffres sans 237)", "data": None},
                    status_code=400,
                )
        if (
            body.channelUserMsisdn != settings.cameroon_channel_msisdn
            or body.pin != settings.cameroon_pin
        ):
            return _declined(txn, "00068", "Le code PIN du marchand est incorrect", 417)
        txn.used = True
        txn.body = body
        case = scenario(body.subscriberMsisdn)
        sim.ledger.record(
            txn.pay_token,
            family="cameroon",
            kind=kind,
            order_id=body.orderId,
            amount=body.amount,
            currency="XAF",
            status="PENDING",
        )
        if case == "insufficient_funds":
            return _declined(txn, *INSUFFICIENT, 417)
        txn.txnid = (
            f"{'MP' if kind == 'mp' else 'CI'}{time.strftime('%y%m%d.%H%M')}."
            + secrets.token_hex(3).upper()
        )
        final = CAMEROON_FINAL.get(case, ("SUCCESSFULL", "200", "Successful Payment"))
        txn.final = final
        txn.final_at = _settle_at(timing["delay"])
        sim.ledger.record(txn.pay_token, status=final[0], txnid=txn.txnid, reason=case)
        if case != "no_callback":
            message = f"{final[1]} :: {final[2]}" if final[1] not in (None, "200") else final[2]
            note = {"payToken": txn.pay_token, "status": final[0], "message": message}
            delay = timing["delay"] * (10 if case == "late_callback" else 1)
            sim.callbacks.schedule(
                body.notifUrl,
                msgspec.json.encode(note),
                delay=delay,
                copies=2 if case == "double_callback" else 1,
            )
        await sim.injector.maybe_hang()
        data = _mp_data(txn) | {
            "id": len(mp),
            "createtime": str(int(time.time())),
            "txnmode": body.orderId,
            "notifUrl": body.notifUrl,
            "description": body.description,
            "channelUserMsisdn": body.channelUserMsisdn,
            "status": "PENDING",
            "confirmtxnstatus": None,
            "confirmtxnmessage": None,
        }
        return Response({"message": "Merchant payment successfully initiated", "data": data})

    def _declined(txn: MpTxn, code: str, text: str, status: int) -> Response[Any]:
        txn.used = True
        # final at once: a later paymentstatus (or push) sees FAILED, not PENDING
        txn.final, txn.final_at = ("FAILED", code, text), time.time()
        sim.ledger.record(txn.pay_token, status="FAILED", code=code)
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

    @get("/omcoreapis/{version:str}/mp/push/{pay_token:str}")
    async def mp_push(
        request: Request, version: FromPath[str], pay_token: FromPath[str]
    ) -> Response[Any]:
        """Send the USSD prompt of a pending merchant payment again [O7, O15].

        Answers the `{message, data}` envelope of `mp/pay` with "Push sent to customer"
        [O7 stub]. A payToken no longer pending (paid, failed, cancelled, expired) is refused
        with a 417 business error `NNNNN :: text` (code and wording derived).
        """
        refused = await _cameroon_gate(request)
        if refused is not None:
            return refused
        txn = mp.get(pay_token)
        if txn is None or txn.kind != "mp":
            return Response({"message": "PayToken introuvable", "data": None}, status_code=404)
        if txn.body is None:
            return Response(
                {"message": "Aucun paiement initie pour ce payToken", "data": None},
                status_code=400,
            )
        data = _mp_data(txn)
        if data["status"] != "PENDING":
            code, text = PUSH_REFUSED.get(data["status"], PUSH_REFUSED["FAILED"])
            sim.ledger.record(txn.pay_token, push_refused=data["status"])
            return Response({"message": f"{code} :: {text}", "data": data}, status_code=417)
        txn.pushes += 1
        sim.ledger.record(txn.pay_token, pushes=txn.pushes)
        await sim.injector.maybe_hang()
        body = txn.body
        data |= {
            "txnmode": body.orderId,
            "notifUrl": body.notifUrl,
            "description": body.description,
            "channelUserMsisdn": body.channelUserMsisdn,
        }
        return Response({"message": "Push sent to customer", "data": data})

    @get(_both("paymentstatus/{pay_token:str}"))
    async def mp_status(
        request: Request, version: FromPath[str], pay_token: FromPath[str]
    ) -> Response[Any]:
        kind = _kind(request)
        refused = await _cameroon_gate(request)
        if refused is not None:
            return refused
        txn = mp.get(pay_token)
        if txn is None or txn.kind != kind:
            return Response({"message": "Transaction introuvable", "data": None}, status_code=404)
        if txn.body is None:
            data = {"payToken": txn.pay_token, "status": "INITIATED"}
        else:
            data = _mp_data(txn)
        if txn.final is not None and txn.final[0] == "FAILED" and txn.body is None:
            data["status"] = "FAILED"
        return Response({"message": "Transaction retrieved successfully", "data": data})

    # -- Orange Senegal (Sonatel) ----------------------------------------------------------

    @post(["/oauth/token", "/oauth/v1/token"], status_code=200)
    async def sonatel_token(request: Request) -> Response[Any]:
        await sim.injector.latency()
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Response(
                {"error": "unsupported_grant_type", "error_description": "client_credentials"},
                status_code=400,
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            settings.sonatel_client_id,
            settings.sonatel_client_secret,
        ):
            return Response(
                {"error": "invalid_client", "error_description": "Bad client credentials"},
                status_code=401,
            )
        return Response(_new_token(3600) | {"scope": "eWallet"}, status_code=200)

    def _sonatel_auth(request: Request) -> Response[Any] | None:
        header = request.headers.get("authorization", "")
        expiry = tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if expiry is None or expiry < time.time():
            return _problem(
                401,
                "401",
                "Unauthorized",
                "Invalid or expired access token",
                instance=request.url.path,
            )
        return None

    def _pin_ok(party: SonatelParty) -> bool:
        if not party.encryptedPinCode:
            return False
        try:
            clear = private_key.decrypt(
                base64.b64decode(party.encryptedPinCode), padding.PKCS1v15()
            )
        except (ValueError, binascii.Error):
            return False
        return secrets.compare_digest(clear, settings.sonatel_pin.encode())

    def _sonatel_view(txn: SonatelTxn) -> dict[str, Any]:
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

    @get("/api/account/v1/publicKeys")
    async def sonatel_public_key(request: Request) -> Response[Any]:
        refused = _sonatel_auth(request)
        if refused is not None:
            return refused
        return Response(
            {
                "keyId": "sim-" + secrets.token_hex(4),
                "keyType": "RSA",
                "keySize": 2048,
                "key": base64.b64encode(public_der).decode(),
            }
        )

    @post(
        [
            "/api/eWallet/v1/payments",
            "/api/eWallet/v1/payments/onestep",
            "/api/eWallet/v1/cashins",
        ],
        status_code=200,
    )
    async def sonatel_transaction(request: Request) -> Response[Any]:
        path = request.url.path
        kind = (
            "cashin" if path.endswith("/cashins") else "onestep" if "onestep" in path else "payment"
        )
        instance = path[path.index("/api/") :]
        await sim.injector.latency()
        refused = _sonatel_auth(request)
        if refused is not None:
            return refused
        failure = sim.injector.error_status()
        if failure is not None:
            return _problem(failure, str(failure), "Server Error", "Simulated failure")
        try:
            body = msgspec.json.decode(await request.body(), type=SonatelTransaction)
        except msgspec.MsgspecError as exc:
            return _problem(
                400,
                "400",
                "Bad Request",
                "Invalid request body",
                instance=instance,
                violations=[{"message": str(exc)}],
            )
        if (
            body.amount.unit != "XOF"
            or not isinstance(body.amount.value, int)
            or body.amount.value <= 0
        ):
            return _problem(
                400,
                "400",
                "Bad Request",
                "amount must be a positive XOF integer",
                instance=instance,
                violations=[{"field": "amount", "message": "invalid"}],
            )
        if len(body.reference) > 50:
            return _problem(400, "400", "Bad Request", "reference is too long", instance=instance)
        customer = body.customer
        if customer.idType != "MSISDN" or not SENEGAL_MSISDN.match(customer.id):
            return _problem(
                400, "2000", "Bad Request", "Customer account does not exist", instance=instance
            )
        if kind == "cashin":
            if body.partner.id != settings.sonatel_retailer_msisdn or not _pin_ok(body.partner):
                return _problem(
                    400, "2041", "Bad Request", "Invalid partner PIN code", instance=instance
                )
        elif body.partner.idType != "CODE" or body.partner.id != settings.sonatel_merchant_code:
            return _problem(400, "2050", "Bad Request", "Unknown merchant code", instance=instance)
        case = scenario(customer.id)
        if case == "insufficient_funds":
            return _problem(400, "2011", "Bad Request", "Solde insuffisant", instance=instance)
        if kind == "onestep" and (customer.otp != settings.sim_otp or case == "wrong_pin"):
            return _problem(400, "2040", "Bad Request", "OTP invalide ou expire", instance=instance)
        prefix = "CI" if kind == "cashin" else "MP"
        txn = SonatelTxn(
            transaction_id=f"{prefix}{time.strftime('%y%m%d.%H%M')}.{secrets.token_hex(3).upper()}",
            kind=kind,
            body=body,
            status={"cashin": "PENDING", "onestep": "SUCCESS"}.get(kind, "INITIATED"),
        )
        sonatel[txn.transaction_id] = txn
        # one-step payments are settled on the spot: only the synchronous refusals above
        final = (
            ("SUCCESS", None) if kind == "onestep" else SONATEL_FINAL.get(case, ("SUCCESS", None))
        )
        txn.final = final
        lead = timing["delay"]  # the gateway stores the transactionId first
        txn.final_at = _settle_at(timing["delay"] + lead)
        if kind == "cashin" and final[0] == "SUCCESS":
            retailer["balance"] -= body.amount.value
        sim.ledger.record(
            txn.transaction_id,
            family="sonatel",
            kind=kind,
            reference=body.reference,
            amount=body.amount.value,
            currency=body.amount.unit,
            status=final[0],
            reason=case,
        )
        registered = merchant_callbacks.get(settings.sonatel_merchant_code)
        if registered is not None and case != "no_callback":
            note = {
                "apiKey": registered.apiKey,
                "transactionId": txn.transaction_id,
                "status": final[0],
                "reference": body.reference,
                "amount": {"unit": body.amount.unit, "value": body.amount.value},
                "partner": {"idType": body.partner.idType, "id": body.partner.id},
                "customer": {"idType": "MSISDN", "id": customer.id},
                "type": "CASHIN" if kind == "cashin" else "MERCHANT_PAYMENT",
                "metadata": body.metadata or {},
            }
            delay = lead + timing["delay"] * (10 if case == "late_callback" else 1)
            sim.callbacks.schedule(
                registered.callbackUrl,
                msgspec.json.encode(note),
                delay=delay,
                copies=2 if case == "double_callback" else 1,
            )
        await sim.injector.maybe_hang()
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
    async def sonatel_status(request: Request, transaction_id: FromPath[str]) -> Response[Any]:
        await sim.injector.latency()
        refused = _sonatel_auth(request)
        if refused is not None:
            return refused
        failure = sim.injector.error_status()
        if failure is not None:
            return _problem(failure, str(failure), "Server Error", "Simulated failure")
        txn = sonatel.get(transaction_id)
        if txn is None:
            return _problem(
                404, "404", "Not Found", "Transaction not found", instance=request.url.path
            )
        return Response(_sonatel_view(txn))

    @post("/api/eWallet/v1/account/retailer/balance", status_code=200)
    async def sonatel_balance(request: Request) -> Response[Any]:
        refused = _sonatel_auth(request)
        if refused is not None:
            return refused
        try:
            party = msgspec.json.decode(await request.body(), type=SonatelParty)
        except msgspec.MsgspecError as exc:
            return _problem(400, "400", "Bad Request", str(exc))
        if party.id != settings.sonatel_retailer_msisdn or not _pin_ok(party):
            return _problem(400, "2041", "Bad Request", "Invalid partner PIN code")
        return Response({"value": retailer["balance"], "unit": "XOF"})

    @post("/api/notification/v1/merchantcallback", status_code=200)
    async def sonatel_merchant_callback(request: Request) -> Response[Any]:
        refused = _sonatel_auth(request)
        if refused is not None:
            return refused
        try:
            body = msgspec.json.decode(await request.body(), type=SonatelMerchantCallback)
        except msgspec.MsgspecError as exc:
            return _problem(400, "400", "Bad Request", str(exc))
        if body.code != settings.sonatel_merchant_code:
            return _problem(400, "2050", "Bad Request", "Unknown merchant code")
        merchant_callbacks[body.code] = body
        return Response({"code": body.code, "name": body.name, "callbackUrl": body.callbackUrl})

    # -- simulator controls ----------------------------------------------------------------

    @post("/_simulator/orange/webpay", status_code=200, include_in_schema=False)
    async def webpay_mode(request: Request) -> dict[str, Any]:
        wanted = msgspec.json.decode(await request.body(), type=dict[str, bool])
        mode["autopay"] = wanted.get("autopay", mode["autopay"])
        return dict(mode)

    @post("/_simulator/orange/delay", status_code=200, include_in_schema=False)
    async def set_delay(request: Request) -> dict[str, float]:
        wanted = msgspec.json.decode(await request.body(), type=dict[str, float])
        seconds = wanted.get("seconds", settings.callback_delay)
        if seconds < 0:
            seconds = settings.callback_delay
        timing["delay"] = seconds
        return {"seconds": timing["delay"]}

    @post("/_simulator/orange/expire-tokens", status_code=200, include_in_schema=False)
    async def expire_tokens() -> dict[str, Any]:
        for value in tokens:
            tokens[value] = 0.0
        return {"expired": len(tokens)}

    def not_found(request: Request, exc: Exception) -> Response[Any]:
        return _gateway_error(404, 60, "Resource not found", "The requested URI does not exist")

    return Litestar(
        route_handlers=[
            webpay_token,
            webpayment,
            transactionstatus,
            payment_page,
            payment_submit,
            cameroon_token,
            mp_init,
            mp_pay,
            mp_push,
            mp_status,
            sonatel_token,
            sonatel_public_key,
            sonatel_transaction,
            sonatel_status,
            sonatel_balance,
            sonatel_merchant_callback,
            webpay_mode,
            set_delay,
            expire_tokens,
            *simulator_routes(sim),
        ],
        exception_handlers={NotFoundException: not_found},
        on_shutdown=[sim.callbacks.close],
        openapi_config=None,
    )
