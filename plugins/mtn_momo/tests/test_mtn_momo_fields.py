"""externalId, payerMessage and payeeNote derived from the payment (never a refusal for
MoMo's 160 characters or its `'` and `&`), the orchestrator's payer_message checked in
`validate`; through the simulator, which enforces MoMo's limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.errors import InvalidRequest
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment
from mmo_mtn_momo import client, fields, plugin
from mmo_mtn_momo.settings import MtnMomoSettings

# a 128-character reference of printable text MoMo's fields refuse or rarely see
ODD = "Order #42 'Tom' & Jerry <b>\"x\"</b> é ü 中文 😀 / ; = % ~ \\ tab"
REFERENCE_128 = (ODD * 3)[:128]


def payment(kind: str = "collection", **changes) -> Payment:
    values = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "amount": Decimal("150"),
        "currency": "EUR",
        "msisdn": "+46701234567",
        "reference": "ord-1001",
        "country": "SE",
    }
    values.update(changes)
    return Payment(**values)


# -- the derivation ------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 159, 160])
def test_text_that_fits_is_kept_as_it_is(length: int) -> None:
    text = ("Ab9-" * 50)[:length]
    assert fields.fit(text) == text


@pytest.mark.parametrize("length", [161, 200, 384])
def test_text_over_the_limit_is_cut_with_a_hash(length: int) -> None:
    text = ("Ab9-" * 100)[:length]
    got = fields.fit(text)
    assert len(got) == fields.TEXT_LIMIT
    assert got.startswith(text[:151])
    assert got == fields.fit(text), "the same text gives the same field"
    # two texts that share their first 160 characters still differ
    assert fields.fit(text[:160] + "X" * (length - 160)) != fields.fit(text[:160] + "Y" * 10)


def test_refused_characters_are_replaced() -> None:
    assert fields.fit("Tom's & co") == "Tom s and co"
    assert fields.fit("line\nbreak\ttab") == "line break tab"
    assert fields.fit("é ü 中文 😀 <b>") == "é ü 中文 😀 <b>"  # only what MoMo refuses changes
    # a reference of 128 '&' becomes 384 characters: cut, with the hash of the original
    got = fields.fit("&" * 128)
    assert len(got) == 160 and "&" not in got and got.startswith("and")


def test_a_128_character_reference_gives_fields_momo_takes() -> None:
    assert len(REFERENCE_128) == 128
    for kind in ("collection", "disbursement", "remittance"):
        p = payment(kind, reference=REFERENCE_128, description=None)
        derived = [fields.external_id(p), *fields.texts(p).values()]
        for value in derived:
            assert fields.accepted(value), value
        assert fields.external_id(p) == fields.external_id(msgspec.structs.replace(p))
        assert p.reference == REFERENCE_128  # the payment keeps the orchestrator's reference


def test_payer_message_goes_to_the_wallet_holder_field() -> None:
    collection = fields.texts(payment(payer_message="Pay for order 42", description="d"))
    assert collection == {"payer_message": "Pay for order 42", "payee_note": "ord-1001"}
    transfer = fields.texts(payment("disbursement", payer_message="Your salary"))
    assert transfer == {"payer_message": "ord-1001", "payee_note": "Your salary"}
    # without one: the description, else the reference
    assert fields.texts(payment(description="Tom's")) == {
        "payer_message": "Tom s",
        "payee_note": "ord-1001",
    }
    assert fields.texts(payment())["payer_message"] == "ord-1001"


# -- validate: payer_message ------------------------------------------------------------------


def context(**settings) -> object:
    return make_context(
        plugin.DECLARATION,
        msgspec.convert(settings, MtnMomoSettings, strict=False),
        base_url="https://momo.test",
        public_url="https://gw.example.com",
    )


@pytest.mark.parametrize("text", ["x", "y" * 160, "Merci é 中文 😀 <ok>"])
def test_a_payer_message_momo_takes_is_valid(text: str) -> None:
    plugin.validate(context(), payment(payer_message=text))


@pytest.mark.parametrize("text", ["y" * 161, "y" * 255, "Tom's", "A & B", "two\nlines"])
def test_a_payer_message_momo_refuses_is_refused_with_the_limit(text: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        plugin.validate(context(), payment(payer_message=text))
    assert refused.value.code == "invalid_payer_message"
    assert "payer_message: at most 160 characters for MTN MoMo" in refused.value.message


def test_a_long_odd_reference_is_never_refused_by_validate() -> None:
    plugin.validate(context(), payment(reference=REFERENCE_128, description=REFERENCE_128 * 2))


# -- through the simulator --------------------------------------------------------------------


class Served:
    def __init__(self, ctx, sim_url: str, recorder: CallbackRecorder) -> None:
        self.ctx, self.sim_url, self.recorder = ctx, sim_url, recorder

    async def read(self, product: str, mode: str, reference: str) -> dict:
        """What the simulator holds of a resource (raw, as MoMo's GET answers it)."""
        tok = await client.token(self.ctx, product)
        key = self.ctx.settings.credentials(product)[0]
        async with httpx.AsyncClient(base_url=self.sim_url) as http:
            response = await http.get(
                f"/{product}/v1_0/{mode}/{reference}",
                headers={
                    "Authorization": f"Bearer {tok}",
                    "Ocp-Apim-Subscription-Key": key,
                    "X-Target-Environment": "sandbox",
                },
            )
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def served(**settings) -> AsyncIterator[Served]:
    values = msgspec.convert({"callback_delay": 0.01, **settings}, MtnMomoSettings, strict=False)
    recorder = CallbackRecorder()
    with serve_app(plugin.simulator_app(values)) as sim, serve_app(recorder) as receiver:
        ctx = make_context(plugin.DECLARATION, values, base_url=sim.url, public_url=receiver.url)
        try:
            yield Served(ctx, sim.url, recorder)
        finally:
            await ctx.http.aclose()


CREATES = [
    ("collection", "requesttopay", {}, {}),
    ("collection", "requesttowithdraw", {"mtn_momo_collection": "requesttowithdraw"}, {}),
    ("disbursement", "transfer", {}, {}),
    ("disbursement", "deposit", {}, {"disbursement_mode": "deposit"}),
    ("remittance", "transfer", {}, {}),
]


@pytest.mark.parametrize(("kind", "mode", "metadata", "settings"), CREATES)
@pytest.mark.parametrize(
    "reference",
    [REFERENCE_128, "R" * 128, "&" * 128, "'" * 128, "ord-1001"],
    ids=["odd-128", "plain-128", "amp-128", "quote-128", "short"],
)
async def test_every_create_takes_a_derived_body(
    kind: str, mode: str, metadata: dict, settings: dict, reference: str
) -> None:
    async with served(**settings) as sim:
        p = payment(kind, reference=reference, description=REFERENCE_128 * 2, metadata=metadata)
        plugin.validate(sim.ctx, p)
        ack = await plugin.initiate(sim.ctx, p)
        assert ack.provider_data["mode"] == mode
        held = await sim.read(kind, mode, p.id)
        assert held["externalId"] == fields.external_id(p)
        assert held["payerMessage"] == fields.texts(p)["payer_message"]
        assert held["payeeNote"] == fields.texts(p)["payee_note"]
        for name in ("payerMessage", "payeeNote", "externalId"):
            assert len(held[name]) <= 160 and "'" not in held[name] and "&" not in held[name]
        if fields.accepted(reference):
            assert held["externalId"] == reference  # kept whole where MoMo takes it


@pytest.mark.parametrize(
    ("kind", "field"), [("collection", "payerMessage"), ("disbursement", "payeeNote")]
)
async def test_the_payer_message_reaches_the_wallet_holder(kind: str, field: str) -> None:
    async with served() as sim:
        text = "P" * 160  # at the limit
        p = payment(kind, payer_message=text, reference=REFERENCE_128)
        plugin.validate(sim.ctx, p)
        await plugin.initiate(sim.ctx, p)
        held = await sim.read(kind, "requesttopay" if kind == "collection" else "transfer", p.id)
        assert held[field] == text


async def test_a_refund_of_a_long_reference_goes_through() -> None:
    async with served() as sim:
        p = payment(reference="&" * 128)
        await plugin.initiate(sim.ctx, p)
        paid = msgspec.structs.replace(
            p, status="succeeded", provider_reference=p.id, provider_data={"accepted": True}
        )
        assert (await plugin.status(sim.ctx, paid)).status == "succeeded"
        reversal_id = str(uuid.uuid4())
        report = await plugin.reverse(
            sim.ctx, paid, None, "Customer's return & refund", reversal_id
        )
        assert report.status == "reversed"
        held = await sim.read("disbursement", "refund", reversal_id)
        assert held["externalId"] == fields.external_id(p)
        assert held["payerMessage"] == held["payeeNote"] == "Customer s return and refund"


async def test_the_simulator_enforces_momo_limits() -> None:
    """At the limit MoMo takes it; one over, or a `'` / `&`, is MoMo's 400."""
    async with served() as sim:
        tok = await client.token(sim.ctx, "collection")
        key = sim.ctx.settings.collection_subscription_key

        async def send(**texts: str) -> int:
            body = {
                "amount": "1",
                "currency": "EUR",
                "externalId": "x",
                "payer": {"partyIdType": "MSISDN", "partyId": "46701234567"},
                **texts,
            }
            async with httpx.AsyncClient(base_url=sim.sim_url) as http:
                response = await http.post(
                    "/collection/v1_0/requesttopay",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {tok}",
                        "Ocp-Apim-Subscription-Key": key,
                        "X-Target-Environment": "sandbox",
                        "X-Reference-Id": str(uuid.uuid4()),
                    },
                )
            return response.status_code

        assert await send(payerMessage="m" * 160, payeeNote="n" * 160) == 202
        assert await send(payerMessage="m" * 161) == 400
        assert await send(payeeNote="n" * 161) == 400
        assert await send(payerMessage="Tom's") == 400
        assert await send(payeeNote="a & b") == 400
