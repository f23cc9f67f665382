"""Any bytes in a validly tokened (and, when Airtel signs, validly hashed) callback give a
CallbackOutcome or a core error, never another exception.

With `callback_auth` on, each body below is sent with the hash Airtel would compute over
exactly those bytes (in the `hash` header), so the property reaches the parser behind the
signature check: a leaked private key is the case it covers.
"""

from __future__ import annotations

import mmo_airtel.plugin as plugin
from hypothesis import given
from hypothesis import strategies as st
from mmo_airtel import client
from mmo_airtel.settings import AirtelSettings
from mmo_core.callbacks import build_callback_url
from mmo_core.errors import CallbackVerificationFailed, MmoError
from mmo_core.testing import make_context
from mmo_core.testing.properties import (
    BOUNDED,
    encode,
    header_maps,
    json_bodies,
    mutated,
    outcome_or_core_error,
    query_strings,
)
from mmo_core.types import InboundCallback

SECRET = "whsec_props"
KEY = "portal-private-key"
PUBLIC = "https://gw.example"
PAYMENT_ID = "p-1"
CONTEXTS = {
    signed: make_context(
        plugin.DECLARATION,
        AirtelSettings(callback_auth=signed, callback_private_key=KEY if signed else None),
        base_url="https://openapiuat.airtel.africa",
        public_url=PUBLIC,
        callback_secret=SECRET,
    )
    for signed in (False, True)
}
BODY = {
    "transaction": {
        "id": PAYMENT_ID,
        "message": "done",
        "status_code": "TS",
        "airtel_money_id": "MP1",
    }
}
KINDS = st.sampled_from(["callback", "status"])
SIGNED = st.booleans()


def _query(kind: str, ref: str | None = PAYMENT_ID) -> dict[str, str]:
    url = build_callback_url(PUBLIC, "airtel-money", "airtel", kind, SECRET, ref)
    return dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))


def _callback(kind, body, signed, *, query=None, headers=None) -> InboundCallback:
    headers = dict(headers or {})
    if signed:
        headers["hash"] = client.callback_hash(KEY, body)
    return InboundCallback(
        provider="airtel",
        kind=kind,
        method="POST",
        path=f"/api/v1/webhooks/airtel-money/{kind}",
        query=_query(kind) if query is None else query,
        headers=headers,
        body=body,
    )


async def _parse(callback: InboundCallback, signed: bool):
    return await outcome_or_core_error(plugin.parse_callback(CONTEXTS[signed], callback))


async def test_the_real_body_is_accepted_signed_and_unsigned():
    for signed in (False, True):
        outcome = await _parse(_callback("callback", encode(BODY), signed), signed)
        assert not isinstance(outcome, MmoError), outcome
        assert outcome.authenticated is signed


@BOUNDED
@given(KINDS, SIGNED, st.binary(max_size=512))
async def test_any_bytes(kind, signed, body):
    await _parse(_callback(kind, body, signed), signed)


@BOUNDED
@given(KINDS, SIGNED, json_bodies())
async def test_any_json(kind, signed, body):
    await _parse(_callback(kind, body, signed), signed)


@BOUNDED
@given(KINDS, SIGNED, mutated(BODY), st.sampled_from(["ascii", "utf8", "surrogates"]))
async def test_mutations_of_the_real_body(kind, signed, body, style):
    await _parse(_callback(kind, encode(body, style), signed), signed)


@BOUNDED
@given(KINDS, SIGNED, mutated({**BODY, "hash": "x"}))
async def test_any_hash_in_the_body(kind, signed, body):
    outcome = await _parse(_callback(kind, encode(body), False), signed)
    if signed and not isinstance(outcome, MmoError):
        raise AssertionError(f"a body hash nobody computed was accepted: {body!r}")


@BOUNDED
@given(st.data(), KINDS, SIGNED, header_maps())
async def test_any_query_and_headers(data, kind, signed, headers):
    query = data.draw(query_strings(_query(kind)))
    callback = _callback(kind, encode(BODY), False, query=query, headers=headers)
    outcome = await _parse(callback, signed)
    if signed and headers.get("hash") != client.callback_hash(KEY, encode(BODY)):
        assert isinstance(outcome, CallbackVerificationFailed)
