"""A simulator of the Airtel Africa Open API sandbox, over real HTTP.

Same paths (with their trailing slashes), headers (`Authorization: Bearer`, `X-Country`,
`X-Currency`), envelopes (`{data, status: {code, message, result_code, response_code,
success}}`, `status.code` a string) and codes as Airtel, refusals answered with HTTP 200
and `status.success=false`; OAuth errors as `{error, error_description}` and ROUTER errors
as `{status_code, status_message}`. Disbursement PINs are decrypted with the simulator's
own RSA key pair, served at `/v1/rsa/encryption-keys`. Callbacks
`{"transaction": {id, message, status_code, airtel_money_id}}` (with `hash` when callback
authentication is on) go to the `callback_url` setting, standing for the portal's
configuration, or to the `X-Callback-Url` header of the request.

Test numbers (shared/DESIGN.md), by the last four digits: 0001 not enough balance
(DP00800001007 / DP00900001007), 1032 refused (DP00800001008 / DP00900001013), 1037 timed
out (DP00800001024 / DP00900001005), 2001 wrong PIN (DP00800001002; for a disbursement,
ROUTER115), 9990 no callback, 9991 two callbacks, 9992 a late callback; 0404 is an unknown
user for the KYC enquiry.

Built on `mmo_core.simulation.Simulation` (docs/testing.md): `state.AirtelSandbox` holds the
sandbox's state, indexed, and the guard of every product call; `envelope` Airtel's answers;
one module per API family: `oauth`, `collection`, `disbursement`, `account`.
"""

from __future__ import annotations

from litestar import Litestar

from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import account, collection, disbursement, oauth
from mmo_airtel.simulator.state import AirtelSandbox


def create_simulator(
    settings: AirtelSettings, accounts: dict[str, AirtelSettings] | None = None
) -> Litestar:
    """The simulator of every account in `accounts` (`settings` alone: one, `default`)."""
    sandbox = AirtelSandbox(settings, accounts)
    return sandbox.app([*oauth.ROUTES, *collection.ROUTES, *disbursement.ROUTES, *account.ROUTES])


__all__ = ["AirtelSandbox", "create_simulator"]
