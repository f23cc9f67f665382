"""Any bytes in a validly tokened M-Pesa callback give a CallbackOutcome or a core error.

A leaked callback URL lets its holder write the body, headers and query of a webhook:
whatever they write, `parse_callback` answers with a typed outcome, `InvalidRequest` or
`CallbackVerificationFailed`, never another exception (which the host answers 503, so that
Daraja retries it forever).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import mmo_mpesa.plugin as plugin
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
from mmo_mpesa.settings import MpesaSettings

PAYMENT_ID = str(uuid.UUID(int=42))
CONTEXT = make_context(
    plugin.DECLARATION,
    MpesaSettings(result_wait=0.2),
    base_url="https://sandbox.safaricom.co.ke",
    public_url="https://gw.example",
)

STK = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "m1",
            "CheckoutRequestID": "ws_CO_1",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 150.00},
                    {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20191219102115},
                    {"Name": "PhoneNumber", "Value": 254712345678},
                ]
            },
        }
    }
}
RESULT = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": PAYMENT_ID,
        "ConversationID": "AG_20240715_1",
        "TransactionID": "SGF7Z9Y8X1",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": 500},
                {"Key": "TransactionReceipt", "Value": "SGF7Z9Y8X1"},
                {"Key": "ReceiverPartyPublicName", "Value": "254712345678 - JANE DOE"},
                {"Key": "AccountBalance", "Value": "Utility Account|KES|98500.00|98400.00"},
            ]
        },
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x"}},
    }
}
C2B = {
    "TransactionType": "Pay Bill",
    "TransID": "SGF5A1B2C3",
    "TransTime": "20240715110402",
    "TransAmount": "250.00",
    "BusinessShortCode": "600984",
    "BillRefNumber": "ACC-7781",
    "MSISDN": "254708374149",
    "FirstName": "JANE",
}
# each kind with a real body of it, and whether the URL names our payment
VALID = {
    "stk-callback": (STK, PAYMENT_ID),
    "b2c-result": (RESULT, PAYMENT_ID),
    "timeout": (RESULT, PAYMENT_ID),
    "status-result": (RESULT, None),
    "reversal-result": (RESULT, None),
    "balance-result": (RESULT, None),
    "c2b-validation": (C2B, None),
    "c2b-confirmation": (C2B, None),
}
KINDS = st.sampled_from(sorted(VALID))
# where each body carries an amount
AMOUNTS = {
    "stk-callback": ("Body", "stkCallback", "CallbackMetadata", "Item", 0, "Value"),
    "b2c-result": ("Result", "ResultParameters", "ResultParameter", 0, "Value"),
    "c2b-confirmation": ("TransAmount",),
}


def _callback(kind: str, body: bytes, *, query=None, headers=None) -> InboundCallback:
    url = CONTEXT.callback_url(kind, VALID[kind][1])
    return InboundCallback(
        provider="mpesa",
        kind=kind,
        method="POST",
        path=urlsplit(url).path,
        query=dict(parse_qsl(urlsplit(url).query)) if query is None else query,
        headers=headers or {"content-type": "application/json"},
        body=body,
    )


def _valid_query(kind: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(CONTEXT.callback_url(kind, VALID[kind][1])).query))


def test_the_real_bodies_are_accepted():
    import asyncio

    for kind, (body, _) in VALID.items():
        outcome = asyncio.run(
            outcome_or_core_error(plugin.parse_callback(CONTEXT, _callback(kind, encode(body))))
        )
        assert not isinstance(outcome, MmoError), (kind, outcome)


@BOUNDED
@given(KINDS, st.binary(max_size=512))
async def test_any_bytes(kind, body):
    await outcome_or_core_error(plugin.parse_callback(CONTEXT, _callback(kind, body)))


@BOUNDED
@given(KINDS, json_bodies())
async def test_any_json(kind, body):
    await outcome_or_core_error(plugin.parse_callback(CONTEXT, _callback(kind, body)))


@BOUNDED
@given(st.data(), KINDS, st.sampled_from(["ascii", "utf8", "surrogates"]))
async def test_mutations_of_real_bodies(data, kind, style):
    body = data.draw(mutated(VALID[kind][0]))
    await outcome_or_core_error(
        plugin.parse_callback(CONTEXT, _callback(kind, encode(body, style)))
    )


@BOUNDED
@given(st.data(), KINDS, header_maps())
async def test_any_query_and_headers(data, kind, headers):
    query = data.draw(query_strings(_valid_query(kind)))
    callback = _callback(kind, encode(VALID[kind][0]), query=query, headers=headers)
    await outcome_or_core_error(plugin.parse_callback(CONTEXT, callback))


@BOUNDED
@given(st.sampled_from(sorted(AMOUNTS)), BAD_AMOUNTS)
async def test_amounts_no_shilling_can_hold_are_invalid(kind, amount):
    body = set_at(VALID[kind][0], AMOUNTS[kind], amount)
    with pytest.raises(InvalidRequest):
        await plugin.parse_callback(CONTEXT, _callback(kind, encode(body)))


@pytest.mark.parametrize("kind", sorted(AMOUNTS))
async def test_a_good_amount_is_read_exactly(kind):
    body = set_at(VALID[kind][0], AMOUNTS[kind], "150.50" if kind == "c2b-confirmation" else 150)
    outcome = await plugin.parse_callback(CONTEXT, _callback(kind, encode(body)))
    report = outcome.inbound or outcome.update
    assert report.amount in (Decimal("150.50"), Decimal(150))
