"""Any bytes in a validly tokened MTN MoMo callback give a CallbackOutcome or a core error.

MoMo signs nothing: the URL token (with our payment id in `ref`) is all that vouches for a
callback, so its holder writes the whole body. Whatever they write, `parse_callback`
answers with a typed outcome, `InvalidRequest` or `CallbackVerificationFailed`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import mmo_mtn_momo.plugin as plugin
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mmo_core.callbacks import callback_token
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
from mmo_mtn_momo.settings import MtnMomoSettings

SECRET = "props-secret"
PAYMENT_ID = str(uuid.UUID(int=7))
CONTEXT = make_context(
    plugin.DECLARATION,
    msgspec.convert({"callback_delay": 0.0}, MtnMomoSettings, strict=False),
    base_url="https://sandbox.momodeveloper.mtn.com",
    public_url="https://gw.example",
    callback_secret=SECRET,
)
BODY = {
    "financialTransactionId": "600198217",
    "externalId": "ord-1001",
    "amount": "1500",
    "currency": "EUR",
    "payer": {"partyIdType": "MSISDN", "partyId": "56733123453"},
    "payerMessage": "m",
    "payeeNote": "n",
    "status": "SUCCESSFUL",
    "reason": {"code": "PAYER_NOT_FOUND", "message": "Payer not found"},
}
KINDS = st.sampled_from(["collection", "disbursement", "remittance", "refund"])
REFS = st.sampled_from([PAYMENT_ID, None])


def _query(kind: str, ref: str | None) -> dict[str, str]:
    query = {"ref": ref} if ref else {}
    query["token"] = callback_token(SECRET, "mtn_momo", kind, ref)
    return query


def _callback(kind, body, ref=PAYMENT_ID, *, query=None, headers=None) -> InboundCallback:
    return InboundCallback(
        provider="mtn_momo",
        kind=kind,
        method="PUT",
        path=f"/api/v1/webhooks/mtn-momo/{kind}",
        query=_query(kind, ref) if query is None else query,
        headers=headers or {},
        body=body,
    )


async def _parse(callback: InboundCallback):
    return await outcome_or_core_error(plugin.parse_callback(CONTEXT, callback))


async def test_the_real_body_is_accepted():
    outcome = await _parse(_callback("collection", encode(BODY)))
    assert not isinstance(outcome, MmoError), outcome
    assert outcome.update.amount == Decimal(1500)


@BOUNDED
@given(KINDS, REFS, st.binary(max_size=512))
async def test_any_bytes(kind, ref, body):
    await _parse(_callback(kind, body, ref))


@BOUNDED
@given(KINDS, REFS, json_bodies())
async def test_any_json(kind, ref, body):
    await _parse(_callback(kind, body, ref))


@BOUNDED
@given(KINDS, mutated(BODY), st.sampled_from(["ascii", "utf8", "surrogates"]))
async def test_mutations_of_the_real_body(kind, body, style):
    await _parse(_callback(kind, encode(body, style)))


@BOUNDED
@given(st.data(), KINDS, REFS, header_maps())
async def test_any_query_and_headers(data, kind, ref, headers):
    query = data.draw(query_strings(_query(kind, ref)))
    await _parse(_callback(kind, encode(BODY), query=query, headers=headers))


@BOUNDED
@given(KINDS, BAD_AMOUNTS)
async def test_amounts_no_currency_can_hold_are_invalid(kind, amount):
    body = set_at(BODY, ("amount",), amount)
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(CONTEXT, _callback(kind, encode(body)))


@pytest.mark.parametrize(("amount", "currency"), [("12.5", "UGX"), ("1.005", "EUR")])
async def test_more_decimals_than_the_currency_has_are_invalid(amount, currency):
    body = {**BODY, "amount": amount, "currency": currency}
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(CONTEXT, _callback("collection", encode(body)))
