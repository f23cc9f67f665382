"""Every hook of the contract has a test: the fake provider implements them all, and a
parametrized test over the plugin manager's hooks fails when one has no test here."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from mmo_core.registry import ProviderRegistry
from mmo_core.types import InboundCallback, InboundPayment, Payment

from tests import fake_provider


def payment(**changes) -> Payment:
    values = dict(
        id=str(uuid.uuid4()),
        type="collection",
        amount=Decimal(1000),
        currency="TZS",
        msisdn="+255712345678",
        reference="H-1",
        country="TZ",
    )
    values.update(changes)
    return Payment(**values)


async def check_mmo_provider(provider, context):
    assert provider.call_sync("mmo_provider").name == "fake"


async def check_validate(provider, context):
    assert provider.call_sync("validate", context=context, payment=payment()) is None
    with pytest.raises(Exception, match="BAD"):
        provider.call_sync("validate", context=context, payment=payment(reference="BAD-1"))


async def check_initiate(provider, context):
    ack = await provider.call("initiate", context=context, payment=payment())
    assert ack.provider_reference.startswith("FK-")


async def check_prepare(provider, context):
    assert await provider.call("prepare", context=context, payment=payment()) is None
    prepared = await provider.call("prepare", context=context, payment=payment(reference="PREP-1"))
    assert prepared.provider_reference.startswith("FK-P-")
    assert prepared.provider_data == {"prepared": True}


async def check_status(provider, context):
    fake_provider.OPERATOR["FK-x"] = {"status": "pending"}
    report = await provider.call(
        "status", context=context, payment=payment(provider_reference="FK-x")
    )
    assert report.status == "pending"


async def check_parse_callback(provider, context):
    url = context.callback_url("notify")
    token = url.split("token=")[1]
    callback = InboundCallback(
        provider="fake",
        kind="notify",
        method="POST",
        path="/",
        query={"token": token},
        body=b'{"ref": "FK-1", "status": "failed"}',
    )
    outcome = await provider.call("parse_callback", context=context, callback=callback)
    assert outcome.update.status == "failed" and outcome.authenticated is False


async def check_health(provider, context):
    assert (await provider.call("health", context=context)).ok


async def check_reverse(provider, context):
    report = await provider.call(
        "reverse",
        context=context,
        payment=payment(),
        amount=None,
        reason="refund",
        reversal_id="00000000-0000-4000-8000-000000000001",
    )
    assert report.status == "reversed"


async def check_reversal_status(provider, context):
    from mmo_core.types import Reversal

    reversal = Reversal(id="rv-1", amount=Decimal(10), currency="TZS", status="pending")
    fake_provider.REVERSALS["rv-1"] = "reversed"
    report = await provider.call(
        "reversal_status", context=context, payment=payment(), reversal=reversal
    )
    assert report.status == "reversed" and report.provider_transaction_id == "RV-rv-1"


async def check_resend_prompt(provider, context):
    assert await provider.call("resend_prompt", context=context, payment=payment()) is None
    with pytest.raises(Exception, match="cannot be sent again"):
        await provider.call(
            "resend_prompt", context=context, payment=payment(msisdn="+255712340009")
        )


async def check_inbound_status(provider, context):
    inbound = InboundPayment(
        provider_transaction_id="RC-1", amount=Decimal(100), currency="TZS", country="TZ"
    )
    assert (await provider.call("inbound_status", context=context, inbound=inbound)).status == (
        "failed"
    )
    fake_provider.RECEIPTS["RC-1"] = Decimal(100)
    report = await provider.call("inbound_status", context=context, inbound=inbound)
    assert (report.status, report.amount) == ("succeeded", Decimal(100))


async def check_balance(provider, context):
    report = await provider.call("balance", context=context)
    assert report.balances[0].available == Decimal(5000)


async def check_lookup_account(provider, context):
    info = await provider.call("lookup_account", context=context, msisdn="+255712345678")
    assert info.active and info.name == "Fake Holder"


async def check_setup(provider, context):
    report = await provider.call("setup", context=context)
    assert report.settings == {"MMO_FAKE_API_KEY": "fake-key"}


async def check_simulator_app(provider, context):
    accounts = {context.account: context.settings}
    app = provider.call_sync("simulator_app", settings=context.settings, accounts=accounts)
    assert callable(app)


HOOK_CHECKS = {
    name[len("check_") :]: fn for name, fn in globals().items() if name.startswith("check_")
}


def all_hooks() -> list[str]:
    registry = ProviderRegistry(environ={})
    return sorted(name for name in dir(registry.pm.hook) if not name.startswith("_"))


@pytest.mark.parametrize("hook", all_hooks())
async def test_every_hook_has_a_test(hook, host):
    assert hook in HOOK_CHECKS, f"hook {hook!r} has no test in tests/test_hooks.py"
    provider = host.gateway.registry.get("fake")
    fake_provider.CALLS.clear()
    await HOOK_CHECKS[hook](provider, host.gateway.context("fake"))
    assert hook in fake_provider.CALLS or hook == "mmo_provider"
