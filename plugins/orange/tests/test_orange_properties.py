"""Any bytes in a validly tokened Orange callback give a CallbackOutcome or a core error.

Three families share the `callback` and `status` kinds: WebPay's notification (found by its
`notif_token`), Orange Cameroon's (our id in `ref`) and Sonatel's (its echoed `apiKey`,
sent right here so the property reaches the parser behind it). Whatever a holder of the
URL writes, `parse_callback` answers with a typed outcome, `InvalidRequest` or
`CallbackVerificationFailed`.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import mmo_orange.plugin as plugin
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mmo_core.errors import InvalidRequest, MmoError
from mmo_core.testing import make_context
from mmo_core.testing.properties import (
    BAD_AMOUNTS,
    BOUNDED,
    encode,
    header_maps,
    json_bodies,
    mutated,
    outcome_or_core_error,
    query_strings,
    set_at,
)
from mmo_core.types import InboundCallback
from mmo_orange.settings import OrangeSettings

CONTEXT = make_context(
    plugin.DECLARATION,
    OrangeSettings(),
    base_url="https://api.orange.com",
    public_url="http://gw.test",
)
API_KEY = CONTEXT.settings.sonatel_api_key
PAYMENT_ID = "00000000-0000-0000-0000-000000000009"
WEBPAY = {"status": "SUCCESS", "notif_token": "nt-1", "txnid": "MP1"}
CAMEROON = {"payToken": "MP123", "status": "FAILED", "message": "60011 :: PIN incorrect"}
SONATEL = {
    "apiKey": API_KEY,
    "transactionId": "MP7",
    "status": "SUCCESS",
    "reference": PAYMENT_ID,
    "amount": {"unit": "XOF", "value": 5000},
    "partner": {"idType": "CODE", "id": "599488"},
    "customer": {"idType": "MSISDN", "id": "771234567"},
    "metadata": {},
}
# each body with the kind it arrives on and the payment id its URL names
VALID = {
    "webpay": ("callback", WEBPAY, None),
    "cameroon": ("status", CAMEROON, PAYMENT_ID),
    "sonatel": ("callback", SONATEL, None),
}
FAMILIES = st.sampled_from(sorted(VALID))
KINDS = st.sampled_from(["callback", "status"])


def _query(kind: str, payment_id: str | None) -> dict[str, str]:
    return dict(httpx.URL(CONTEXT.callback_url(kind, payment_id)).params)


def _callback(kind, body, payment_id=None, *, query=None, headers=None) -> InboundCallback:
    return InboundCallback(
        provider="orange",
        kind=kind,
        method="POST",
        path=f"/api/v1/webhooks/orange/{kind}",
        query=_query(kind, payment_id) if query is None else query,
        headers=headers or {},
        body=body,
    )


def _real(family: str, body=None, style: str = "ascii", **kwargs) -> InboundCallback:
    kind, real, payment_id = VALID[family]
    return _callback(kind, encode(real if body is None else body, style), payment_id, **kwargs)


async def _parse(callback: InboundCallback):
    return await outcome_or_core_error(plugin.parse_callback(CONTEXT, callback))


@pytest.mark.parametrize("family", sorted(VALID))
async def test_the_real_bodies_are_accepted(family):
    outcome = await _parse(_real(family))
    assert not isinstance(outcome, MmoError), outcome


@BOUNDED
@given(KINDS, st.sampled_from([None, PAYMENT_ID]), st.binary(max_size=512))
async def test_any_bytes(kind, payment_id, body):
    await _parse(_callback(kind, body, payment_id))


@BOUNDED
@given(KINDS, st.sampled_from([None, PAYMENT_ID]), json_bodies())
async def test_any_json(kind, payment_id, body):
    await _parse(_callback(kind, body, payment_id))


@BOUNDED
@given(st.data(), FAMILIES, st.sampled_from(["ascii", "utf8", "surrogates"]))
async def test_mutations_of_real_bodies(data, family, style):
    body = data.draw(mutated(VALID[family][1]))
    await _parse(_real(family, body, style))


@BOUNDED
@given(st.data(), FAMILIES, header_maps())
async def test_any_query_and_headers(data, family, headers):
    kind, _, payment_id = VALID[family]
    query = data.draw(query_strings(_query(kind, payment_id)))
    await _parse(_real(family, query=query, headers=headers))


@BOUNDED
@given(BAD_AMOUNTS, st.sampled_from(["XOF", "XAF", "EUR", "GNF"]))
async def test_sonatel_amounts_no_currency_can_hold_are_invalid(amount, unit):
    body = set_at(SONATEL, ("amount",), {"unit": unit, "value": amount})
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(CONTEXT, _real("sonatel", body))


async def test_a_fractional_sonatel_amount_is_read_without_a_float():
    body = set_at(SONATEL, ("amount",), {"unit": "EUR", "value": 0.1})
    outcome = await plugin.parse_callback(CONTEXT, _real("sonatel", body))
    assert outcome.update.amount == Decimal("0.10")
