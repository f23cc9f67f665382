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

Several accounts at once: each account's credentials get tokens of that account (and of
one family); a transaction belongs to the account that made it, and another account's
token, merchant key, X-AUTH-TOKEN or merchant code on it is refused as for an unknown one
(WebPay 404/60 or 403/50, Cameroon 404/400/403, Sonatel 404 or 2050/2041 problems). Every
ledger entry names its `account`.

Built on `mmo_core.simulation.Simulation` (docs/testing.md): `state.OrangeSandbox` holds the
state of the three families, indexed; `gateway` the gateway's errors and token requests; one
module per family: `webpay`, `cameroon`, `sonatel`; `controls` the simulator-only switches.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.exceptions import NotFoundException

from mmo_orange.settings import OrangeSettings
from mmo_orange.simulator import cameroon, controls, sonatel, webpay
from mmo_orange.simulator.gateway import not_found
from mmo_orange.simulator.state import OrangeSandbox


def create_simulator(
    settings: OrangeSettings, accounts: dict[str, OrangeSettings] | None = None
) -> Litestar:
    """The simulator of every account in `accounts` (by name; only `settings`, as
    "default", when None)."""
    sandbox = OrangeSandbox(settings, accounts)
    return sandbox.app(
        [*webpay.ROUTES, *cameroon.ROUTES, *sonatel.ROUTES, *controls.ROUTES],
        exception_handlers={NotFoundException: not_found},
    )


__all__ = ["OrangeSandbox", "create_simulator"]
