"""The provider chosen from the number (mmo_host.routing), through the public API."""

from __future__ import annotations

import uuid

import pytest
from mmo_core.errors import ConfigurationError, ProviderUnavailable
from mmo_host.breaker import BreakerState
from mmo_host.config import HostConfig
from mmo_host.routing import Router, parse_prefixes

from tests.conftest import wait_for_status

# the routing table of issue 13: number, currency, provider
TABLE = [
    ("+254712345678", "KES", "mpesa", "safaricom"),
    ("+254733345678", "KES", "airtel", "airtel"),
    ("+254753345678", "KES", "airtel", "airtel"),
    ("+256772345678", "UGX", "mtn_momo", "mtn"),
    ("+256782345678", "UGX", "mtn_momo", "mtn"),
    ("+256702345678", "UGX", "airtel", "airtel"),
    ("+256752345678", "UGX", "airtel", "airtel"),
    ("+233244345678", "GHS", "mtn_momo", "mtn"),
    ("+2250707345678", "XOF", "orange", "orange"),
    ("+221771345678", "XOF", "orange", "orange"),
    ("+237699345678", "XAF", "orange", "orange"),
    ("+237677345678", "XAF", "mtn_momo", "mtn"),
]


def body(msisdn: str, currency: str, **changes) -> dict:
    payload = {
        "type": "collection",
        "amount": "1000",
        "currency": currency,
        "msisdn": msisdn,
        "reference": "R-1",
    }
    payload.update(changes)
    return payload


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest.fixture
def installed(host):
    def check(*names: str) -> None:
        missing = [n for n in names if n not in host.gateway.registry.providers]
        if missing:
            pytest.skip(f"provider(s) not enabled: {', '.join(missing)}")

    return check


@pytest.mark.parametrize(("msisdn", "currency", "provider", "network"), TABLE)
async def test_payment_without_provider_goes_to_the_numbers_network(
    api, installed, msisdn, currency, provider, network
):
    installed(provider)
    response = await api.post("/api/v1/payments", json=body(msisdn, currency), headers=key())
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["provider"] == provider
    assert created["routing"] == {
        "network": network,
        "provider": provider,
        "account": "default",
        "reason": "network",
    }
    read = (await api.get(f"/api/v1/payments/{created['id']}")).json()
    assert read["routing"] == created["routing"]


async def test_a_named_provider_wins_and_is_checked(api, installed):
    installed("airtel", "mpesa")
    response = await api.post(
        "/api/v1/payments", json=body("+254712345678", "KES", provider="airtel"), headers=key()
    )
    assert response.status_code == 202, response.text
    assert response.json()["routing"] == {
        "network": "safaricom",
        "provider": "airtel",
        "account": "default",
        "reason": "requested",
    }
    refused = await api.post(
        "/api/v1/payments", json=body("+254712345678", "UGX", provider="mpesa"), headers=key()
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "not_supported"


async def test_a_network_no_provider_serves_is_a_422_naming_it(api):
    # +225 01... is Moov Côte d'Ivoire: no installed provider reaches it
    response = await api.post("/api/v1/payments", json=body("+2250101345678", "XOF"), headers=key())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "no_provider"
    assert error["details"] == {"country": "CI", "network": "moov"}
    assert "moov" in error["message"] and "CI" in error["message"]


async def test_a_currency_not_held_there_is_a_422_naming_the_accepted_ones(api, installed):
    installed("mpesa")
    response = await api.post("/api/v1/payments", json=body("+254712345678", "UGX"), headers=key())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_currency"
    assert error["details"]["accepted_currencies"] == ["KES"]
    assert "KES" in error["message"]


async def test_ugx_through_mtn_momo_succeeds_in_the_default_sandbox(api, installed):
    installed("mtn_momo")
    response = await api.post("/api/v1/payments", json=body("+256772345678", "UGX"), headers=key())
    assert response.status_code == 202, response.text
    assert response.json()["provider"] == "mtn_momo"
    done = await wait_for_status(api, response.json()["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done["failure"]


# -- configuration --------------------------------------------------------------------------


def test_the_prefix_table_overrides_the_carrier_data(host, installed):
    installed("airtel", "mpesa")
    config = HostConfig(network_prefixes="KE:25471234=airtel")
    router = Router(config, host.gateway.registry)
    located = router.locate("+254712345678")
    assert (located.country, located.network, located.source) == ("KE", "airtel", "prefix")
    decision = router.choose(
        requested=None, operation="collection", msisdn="+254712345678", currency="KES"
    )
    assert decision.record() == {
        "network": "airtel",
        "provider": "airtel",
        "account": "default",
        "reason": "prefix",
    }
    # other Safaricom numbers keep their network
    assert router.locate("+254712000000").network == "safaricom"


@pytest.mark.parametrize("text", ["KE25475=airtel", "ke:25475=airtel", "KE:2547x=airtel"])
def test_a_malformed_prefix_entry_stops_start_up(text):
    with pytest.raises(ConfigurationError, match="MMO_NETWORK_PREFIXES"):
        parse_prefixes(text)


class _Breakers:
    def __init__(self, state: str) -> None:
        self.value = state

    async def state(self, key: str) -> BreakerState:
        return BreakerState(self.value, 0, None)


async def test_fail_fast_refuses_while_the_preferred_provider_is_down(host, installed):
    installed("mpesa")
    config = HostConfig(routing_policy="KE/collection=mpesa:fail_fast", breaker_cooldown=7)
    router = Router(config, host.gateway.registry)
    decision = router.choose(
        requested=None, operation="collection", msisdn="+254712345678", currency="KES"
    )
    assert decision.reason == "preferred"
    assert await router.when_down(_Breakers("closed"), decision) == decision
    with pytest.raises(ProviderUnavailable) as refused:
        await router.when_down(_Breakers("open"), decision)
    assert refused.value.http_status == 503 and refused.value.retry_after == 7
    queued = Router(HostConfig(routing_policy="KE/collection=mpesa"), host.gateway.registry)
    decision = queued.choose(
        requested=None, operation="collection", msisdn="+254712345678", currency="KES"
    )
    # queue: nothing refused, the payment waits for the operator
    assert await queued.when_down(_Breakers("open"), decision) == decision


# -- predict and the catalogue -------------------------------------------------------------


@pytest.mark.parametrize(("msisdn", "currency", "provider", "network"), TABLE)
async def test_predict_answers_as_the_routing_does(
    api, installed, msisdn, currency, provider, network
):
    installed(provider)
    response = await api.post("/api/v1/providers/predict", json={"msisdn": msisdn})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["provider"] == provider and answer["network"] == network
    assert answer["currency"] == currency and "collection" in answer["operations"]
    assert all(limit["currency"] == currency for limit in answer["limits"])


async def test_predict_of_an_unserved_or_bad_number(api):
    moov = (await api.post("/api/v1/providers/predict", json={"msisdn": "+2250101345678"})).json()
    assert (moov["country"], moov["network"], moov["provider"]) == ("CI", "moov", None)
    bad = await api.post("/api/v1/providers/predict", json={"msisdn": "not a phone"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_msisdn"


async def test_the_catalogue_lists_active_providers_with_their_breakers(api, host):
    response = await api.get("/api/v1/providers")
    assert response.status_code == 200, response.text
    listed = {p["name"]: p for p in response.json()["data"]}
    assert set(listed) == set(host.gateway.registry.providers)
    if "mpesa" in listed:
        mpesa = listed["mpesa"]
        assert mpesa["networks"] == [{"country": "KE", "network": "safaricom"}]
        assert mpesa["markets"] == [{"country": "KE", "currency": "KES"}]
        assert mpesa["up"] is True and mpesa["routed"] is True
    if "example" in listed:
        assert listed["example"]["routed"] is False


async def test_the_provider_routes_need_a_key(host):
    import httpx

    async with httpx.AsyncClient(base_url=host.url) as anonymous:
        assert (await anonymous.get("/api/v1/providers")).status_code == 401
        predict = await anonymous.post(
            "/api/v1/providers/predict", json={"msisdn": "+254712345678"}
        )
        assert predict.status_code == 401


def test_env_example_lists_every_host_setting():
    """Every variable the host's config reads (routing's included) is in .env.example."""
    import re
    from pathlib import Path

    import mmo_host.config

    root = Path(__file__).resolve().parents[1]
    source = Path(mmo_host.config.__file__).read_text()
    read = set(re.findall(r'"(MMO_[A-Z_]+|DATABASE_URL|REDIS_URL)"', source))
    example = (root / ".env.example").read_text().splitlines()
    listed = {line.partition("=")[0].strip() for line in example if "=" in line}
    assert {"MMO_NETWORK_PREFIXES", "MMO_ROUTING_POLICY"} <= read
    assert sorted(read - listed) == []
