"""A simulator of Safaricom's Daraja sandbox, over real HTTP.

Same paths, methods, auth and error envelopes as Daraja (shared/providers/mpesa.md):
OAuth (`GET /oauth/v1/generate`), STK push and query, B2C v3, Transaction Status,
Reversal, Account Balance, C2B register URL and simulate (v1 and v2). Each product answers
an invalid token with its own code, a wrong method with `405.001`, each invalid field with
`400.002.02 Bad Request - Invalid <Field>`, a wrong STK Password with `500.001.1001 Wrong
credentials`, a body not declared `application/json` with Daraja's documented `400.002.02
Bad Request - Invalid BusinessShortCode`, an unknown path with `404.001.01 Resource not found`
(checked with public SDKs: tests/test_mpesa_fidelity.py). SecurityCredential is decrypted
with the simulator's own TEST key pair (`sandbox/simulator-key.pem`), whose certificate is
the plugin's sandbox default; a wrong initiator or password gives ResultCode 2001 in the
asynchronous Result, as on Daraja.

Outcomes follow the shared test numbers (last four digits) in Daraja's own ResultCodes.

Built on `mmo_core.simulation.Simulation` (docs/testing.md): `state.MpesaSandbox` holds the
sandbox's state, indexed; `daraja` what every product shares (envelopes, field checks, the
product gate, the asynchronous Result); one module per product: `oauth`, `stk` (M-Pesa
Express), `b2c`, `transaction_status`, `reversal`, `account_balance`, `c2b`.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, route
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from mmo_mpesa.settings import MpesaSettings
from mmo_mpesa.simulator import account_balance, b2c, c2b, oauth, reversal, stk
from mmo_mpesa.simulator import transaction_status as status
from mmo_mpesa.simulator.daraja import error
from mmo_mpesa.simulator.state import MpesaSandbox

PRODUCT_PATHS = (
    "/mpesa/stkpush/v1/processrequest",
    "/mpesa/stkpushquery/v1/query",
    "/mpesa/b2c/v3/paymentrequest",
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/reversal/v1/request",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/c2b/v1/registerurl",
    "/mpesa/c2b/v2/registerurl",
    "/mpesa/c2b/v1/simulate",
    "/mpesa/c2b/v2/simulate",
)


@route(list(PRODUCT_PATHS), http_method=["GET", "PUT", "PATCH", "DELETE"], status_code=405)
async def wrong_method() -> Response[Any]:
    return error("405.001", "Method Not Allowed")


def not_found(request: Request, exc: Exception) -> Response[Any]:
    return error("404.001.01", "Resource not found")


def not_allowed(request: Request, exc: Exception) -> Response[Any]:
    return error("405.001", "Method Not Allowed")


def create_simulator(
    settings: MpesaSettings, accounts: dict[str, MpesaSettings] | None = None
) -> Litestar:
    """One sandbox serving every account (a Daraja app each: its consumer key and secret,
    shortcodes, passkey and initiator); `settings` alone is the one account `default`."""
    sandbox = MpesaSandbox(settings, accounts)
    app = sandbox.app(
        [
            *oauth.ROUTES,
            *stk.ROUTES,
            *b2c.ROUTES,
            *status.ROUTES,
            *reversal.ROUTES,
            *account_balance.ROUTES,
            *c2b.ROUTES,
            wrong_method,
        ],
        exception_handlers={NotFoundException: not_found, MethodNotAllowedException: not_allowed},
    )
    app.state.tokens = sandbox.tokens
    return app


__all__ = ["MpesaSandbox", "create_simulator"]
