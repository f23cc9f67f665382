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

Several accounts (`accounts`, one `MtnMomoSettings` each) are served at once: a token is
its API user's account's, and one account's token on another's X-Reference-Id gets 404
`RESOURCE_NOT_FOUND`, as MoMo answers for a reference it does not know.

Built on `mmo_core.simulation.Simulation` (docs/testing.md): `state.MomoSandbox` holds the
sandbox's state, indexed; `numbers` the sandbox and shared test numbers; `common` the error
body and path helpers; one module per API family: `provisioning` (API users and keys),
`tokens`, `payments` (the five operations and delivery notifications), `accounts`.
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Litestar

from mmo_mtn_momo.settings import MtnMomoSettings
from mmo_mtn_momo.simulator import accounts as balances
from mmo_mtn_momo.simulator import payments, provisioning, tokens
from mmo_mtn_momo.simulator.state import MomoSandbox


def create_simulator(
    settings: MtnMomoSettings, accounts: Mapping[str, MtnMomoSettings] | None = None
) -> Litestar:
    """The simulator of every account in `accounts` (by default one, `default`, of
    `settings`): each account's credentials, resources, balances and ledger entries
    (`account=<name>`) are its own (`state.MomoSandbox`)."""
    sandbox = MomoSandbox(settings, accounts)
    return sandbox.app([*provisioning.ROUTES, *tokens.ROUTES, *payments.ROUTES, *balances.ROUTES])


__all__ = ["MomoSandbox", "create_simulator"]
