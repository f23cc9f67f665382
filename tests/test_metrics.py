"""`GET /metrics`: the named series, with their labels and values, after a payment made
through the API and called back by the example simulator over real HTTP."""

from __future__ import annotations

import uuid

import httpx
from mmo_core.testing import serving
from mmo_host import attention, metrics
from mmo_host.app import create_app
from mmo_host.config import HostConfig
from mmo_host.worker import Worker
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _free_port, host_environ, wait_for_status

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    """Every sample of `/metrics`, read without an API key."""
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def payment() -> dict[str, str]:
    return {
        "type": "collection",
        "amount": "150",
        "currency": "KES",
        "msisdn": "+254712345678",
        "provider": "example",
        "reference": "MET-1",
    }


async def test_metrics_after_a_payment_through_the_api(api, host):
    before = await scrape(host.url)
    created = await api.post(
        "/api/v1/payments", json=payment(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert created.status_code == 202, created.text
    paid = await wait_for_status(api, created.json()["id"], {"succeeded"})
    await attention.flag(uuid.UUID(paid["id"]), "gave_up_polling", {"by": "test"})

    waiting = await scrape(host.url)
    # the payment's events wait for the worker: the queue has due delivery jobs
    assert value(waiting, "mmo_jobs_due", kind="deliver") >= 3
    assert value(waiting, "mmo_jobs_open", kind="deliver") >= 3
    assert value(waiting, "mmo_jobs_oldest_due_age_seconds", kind="deliver") >= 0
    assert ("mmo_jobs_oldest_due_age_seconds", frozenset({("kind", "deliver")})) in waiting
    assert value(waiting, "mmo_attention_open") == 1
    assert value(waiting, "mmo_metrics_database_up") == 1

    await Worker(host.gateway, worker_id="metrics-worker").drain()
    after = await scrape(host.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP requests by route template (not the path with its id) and status
    assert (
        delta("mmo_http_requests_total", method="POST", route="/api/v1/payments", status="202") == 1
    )
    polled = delta(
        "mmo_http_requests_total", method="GET", route="/api/v1/payments/{payment_id}", status="200"
    )
    assert polled >= 1
    assert not any(paid["id"] in dict(labels).get("route", "") for _, labels in after), (
        "a route label holds a payment id"
    )
    assert (
        delta("mmo_http_request_duration_seconds_count", method="POST", route="/api/v1/payments")
        == 1
    )
    # the operator call, timed by provider, account, hook and outcome
    call = {"provider": "example", "account": "default", "hook": "initiate", "outcome": "ok"}
    assert delta("mmo_operator_call_duration_seconds_count", **call) == 1
    assert delta("mmo_operator_call_duration_seconds_sum", **call) > 0
    assert delta("mmo_operator_call_duration_seconds_bucket", **call, le="+Inf") == 1
    # the callback, applied; the payment's statuses; the events delivered
    assert delta("mmo_callbacks_total", outcome="applied") == 1
    for status in ("pending", "succeeded"):
        labels = {"provider": "example", "type": "collection", "status": status}
        assert delta("mmo_payments_total", **labels, failure_code="") == 1, status
    for event in ("payment.created", "payment.pending", "payment.succeeded"):
        assert delta("mmo_event_deliveries_total", type=event, outcome="delivered") == 1, event
    assert delta("mmo_event_deliveries_total", type="payment.succeeded", outcome="failed") == 0
    # read at scrape time from their owners
    breaker = {"key": "example", "provider": "example", "account": "default"}
    assert value(after, "mmo_breaker_state", **breaker, state="closed") == 1
    assert value(after, "mmo_breaker_state", **breaker, state="open") == 0
    assert value(after, "mmo_breaker_recent_failures", **breaker) == 0
    assert value(after, "mmo_jobs_due", kind="deliver") == 0
    assert value(after, "mmo_token_refreshes_total") == host.gateway.tokens.fetches
    assert value(after, "mmo_attention_open") == 1


async def test_a_failed_payment_counts_its_failure_code(api, host):
    before = await scrape(host.url)
    created = await api.post(
        "/api/v1/payments",
        # the simulators decline numbers ending in 0001 (insufficient funds)
        json=payment() | {"msisdn": "+254712340001"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 202, created.text
    failed = await wait_for_status(api, created.json()["id"], {"failed"})
    code = failed["failure"]["code"]
    assert code == "insufficient_funds"
    after = await scrape(host.url)
    labels = {"provider": "example", "type": "collection", "status": "failed"}
    seen = value(after, "mmo_payments_total", **labels, failure_code=code)
    assert seen - value(before, "mmo_payments_total", **labels, failure_code=code) == 1


async def test_an_open_breaker_is_shown_and_counts_calls_not_made(api, host):
    gateway = host.gateway
    for _ in range(gateway.config.breaker_threshold):
        await gateway.breakers.failure("example")
    try:
        response = await api.post(
            "/api/v1/payments",
            json=payment() | {"reference": "MET-BRK"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code in (202, 503), response.text
        samples = await scrape(host.url)
    finally:
        await gateway.breakers.success("example")
    breaker = {"key": "example", "provider": "example", "account": "default"}
    assert value(samples, "mmo_breaker_state", **breaker, state="open") == 1
    assert value(samples, "mmo_breaker_state", **breaker, state="closed") == 0
    skipped = {"provider": "example", "account": "default", "hook": "initiate"}
    assert value(samples, "mmo_operator_calls_not_made_total", **skipped) >= 1


async def test_metrics_are_not_in_the_api_schema(host):
    async with httpx.AsyncClient(base_url=host.url) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_each_app_has_its_registry_and_the_flag_turns_metrics_off(migrated_db, host):
    port = _free_port()
    config = HostConfig.from_env(
        host_environ(
            migrated_db,
            MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MMO_PORT=str(port),
            MMO_ENABLED_PROVIDERS="example",
            MMO_METRICS="false",
        )
    )
    assert config.metrics is False
    app = create_app(config)  # a second app in this process: no series collide
    other = metrics.of(app.state.gateway)
    assert other is not metrics.of(host.gateway)
    assert other.registry is not metrics.of(host.gateway).registry
    async with serving(app, port=port) as served, httpx.AsyncClient(base_url=served.url) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200 and live.headers["x-request-id"]  # ids stay on
        assert (await client.get("/metrics")).status_code == 404
    # with the flag off, nothing is counted by route
    assert (
        other.registry.get_sample_value(
            "mmo_http_requests_total", {"method": "GET", "route": "/health/live", "status": "200"}
        )
        is None
    )
    assert HostConfig.from_env({}).metrics is True
