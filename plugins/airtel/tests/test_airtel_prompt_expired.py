"""A payer's prompt that timed out ends `expired` with `prompt_expired`, not `failed`
(issue 13): the enquiry's DP00800001024 / DP00800001029 / DP00800001005 and TE, and a
callback's TE or a TF whose text says the prompt timed out; through the simulator's 1037."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from mmo_airtel import plugin
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.callbacks import build_callback_url
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.testing.conformance import to_inbound
from mmo_core.types import InboundCallback, Payment

PUBLIC = "https://gateway.example"
SECRET = "expired-secret"


def _inbound(state: str, message: str) -> InboundCallback:
    url = build_callback_url(PUBLIC, "airtel-money", "airtel", "callback", SECRET, None)
    query = dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))
    body = {"transaction": {"id": "p-1", "message": message, "status_code": state}}
    return InboundCallback(
        provider="airtel",
        kind="callback",
        method="POST",
        path="/api/v1/webhooks/airtel-money/callback",
        query=query,
        headers={},
        body=json.dumps(body).encode(),
    )


@pytest.mark.parametrize(
    ("state", "message", "status", "code"),
    [
        ("TF", "Transaction timed out", "expired", "prompt_expired"),
        ("TF", "Transaction Expired", "expired", "prompt_expired"),
        ("TF", "User did not enter the PIN", "expired", "prompt_expired"),
        ("TE", "anything", "expired", "prompt_expired"),
        ("TF", "Not enough balance", "failed", "operator_error"),
        ("TF", "Transaction refused by the payer", "failed", "operator_error"),
    ],
)
async def test_callbacks_that_mean_the_prompt_timed_out(
    state: str, message: str, status: str, code: str
) -> None:
    context = make_context(
        plugin.DECLARATION,
        AirtelSettings(),
        base_url="http://127.0.0.1:9",
        public_url=PUBLIC,
        callback_secret=SECRET,
    )
    outcome = await plugin.parse_callback(context, _inbound(state, message))
    update = outcome.update
    assert update is not None and update.failure is not None
    assert (update.status, update.failure.code) == (status, code)
    assert (update.failure.provider_code, update.failure.provider_message) == (state, message)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, CallbackRecorder, str]]:
    recorder = CallbackRecorder()
    with serve_app(recorder) as receiver:
        settings = AirtelSettings(callback_delay=0.01)
        with serve_app(create_simulator(settings)) as simulator:
            yield simulator.url, recorder, receiver.url


async def test_the_simulators_timed_out_prompt_ends_expired(
    served: tuple[str, CallbackRecorder, str],
) -> None:
    simulator, recorder, receiver = served
    context = make_context(
        plugin.DECLARATION, AirtelSettings(), base_url=simulator, public_url=receiver
    )
    try:
        pay = Payment(
            id=str(uuid.uuid4()),
            type="collection",
            amount=Decimal(5000),
            currency="UGX",
            msisdn="+256752601037",
            reference="Order 1042",
            country="UG",
        )
        seen = len(recorder.requests)
        result = await plugin.initiate(context, pay)
        recorded = (await asyncio.to_thread(recorder.wait_for, seen + 1, 10.0))[seen]
        outcome = await plugin.parse_callback(context, to_inbound("airtel", recorded))
        assert outcome.update is not None and outcome.update.failure is not None
        assert (outcome.update.status, outcome.update.failure.code) == (
            "expired",
            "prompt_expired",
        )
        pending: dict[str, Any] = {f: getattr(pay, f) for f in pay.__struct_fields__}
        pending |= {"status": "pending", "provider_reference": result.provider_reference}
        report = await plugin.status(context, Payment(**pending))
        assert report.failure is not None
        assert (report.status, report.failure.code, report.failure.provider_code) == (
            "expired",
            "prompt_expired",
            "DP00800001024",
        )
    finally:
        await context.http.aclose()
