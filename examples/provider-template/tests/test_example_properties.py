"""Any body, correctly signed and on a validly tokened URL, gives a CallbackOutcome or a
core error: the property every provider's `parse_callback` keeps (copy this module).

Example Pay signs its callbacks, so each body is sent with the signature computed over
exactly its bytes: the property covers a leaked webhook secret, and reaches the parser.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlsplit

import mmo_example.plugin as plugin
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mmo_core.errors import CallbackVerificationFailed, InvalidRequest, MmoError
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
from mmo_example.settings import ExampleSettings

SETTINGS = ExampleSettings()
CONTEXT = make_context(
    plugin.DECLARATION, SETTINGS, base_url="https://example.test", public_url="https://gw.example"
)
PAYMENT_ID = str(uuid.UUID(int=3))
BODY = {
    "id": "ex-1",
    "reference": PAYMENT_ID,
    "status": "SUCCESSFUL",
    "amount": "150.00",
    "currency": "KES",
    "msisdn": "+254712345678",
    "reason_code": None,
    "reason": None,
}
KIND = plugin.DECLARATION.webhook_kinds[0]
REFS = st.sampled_from([PAYMENT_ID, None])


def _query(ref: str | None) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(CONTEXT.callback_url(KIND, ref)).query))


def _callback(body: bytes, ref=PAYMENT_ID, *, query=None, headers=None) -> InboundCallback:
    signed = {plugin.SIGNATURE_HEADER: plugin.sign(SETTINGS.webhook_secret, body)}
    return InboundCallback(
        provider="example",
        kind=KIND,
        method="POST",
        path=urlsplit(CONTEXT.callback_url(KIND)).path,
        query=_query(ref) if query is None else query,
        headers=signed if headers is None else headers,
        body=body,
    )


async def _parse(callback: InboundCallback):
    return await outcome_or_core_error(plugin.parse_callback(CONTEXT, callback))


async def test_the_real_body_is_accepted():
    outcome = await _parse(_callback(encode(BODY)))
    assert not isinstance(outcome, MmoError), outcome


@BOUNDED
@given(REFS, st.binary(max_size=512))
async def test_any_bytes(ref, body):
    await _parse(_callback(body, ref))


@BOUNDED
@given(REFS, json_bodies())
async def test_any_json(ref, body):
    await _parse(_callback(body, ref))


@BOUNDED
@given(mutated(BODY), st.sampled_from(["ascii", "utf8", "surrogates"]))
async def test_mutations_of_the_real_body(body, style):
    await _parse(_callback(encode(body, style)))


@BOUNDED
@given(st.data(), REFS, header_maps())
async def test_any_query_and_headers(data, ref, headers):
    query = data.draw(query_strings(_query(ref)))
    outcome = await _parse(_callback(encode(BODY), ref, query=query, headers=headers))
    assert isinstance(outcome, CallbackVerificationFailed)  # unsigned: refused, whatever else


@BOUNDED
@given(BAD_AMOUNTS)
async def test_amounts_no_currency_can_hold_are_invalid(amount):
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(CONTEXT, _callback(encode(set_at(BODY, ("amount",), amount))))
