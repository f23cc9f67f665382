"""A host that shrugs off garbage: every bad input gets a 4xx in the gateway's error shape.

Through real HTTP against the served gateway (tests/conftest.py): NUL bytes, deep JSON,
invalid UTF-8, odd Content-Types, non-ASCII digits, oversized bodies, and webhooks whose
path or token is garbage (the row is kept all the same: the operator's request is evidence).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from mmo_host import db

from tests.test_webhooks import create_fake_payment, fake_url

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
FIVE_MIB = 5 * 1024 * 1024


def payment_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "collection",
        "amount": "1000",
        "currency": "TZS",
        "msisdn": "+255712345678",
        "provider": "fake",
        "reference": "H-1",
    }
    body.update(changes)
    return body


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    if code is not None:
        assert body["error"]["code"] == code, body


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def raw_post(url: str, content: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, content=content, headers=headers)


async def callback_rows() -> list:
    return await db.fetch("SELECT * FROM callbacks ORDER BY received_at")


# -- the API --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"reference": "INV\x00-1"},
        {"description": "Order\x00"},
        {"metadata": {"order": "a\x00b"}},
        {"metadata": {"k\x00": 1}},
        {"metadata": {"deep": [{"x": ["\x00"]}]}},
    ],
    ids=["reference", "description", "metadata-value", "metadata-key", "metadata-nested"],
)
async def test_nul_in_a_payment_field_is_refused(api, changes):
    response = await api.post("/api/v1/payments", json=payment_body(**changes), headers=key())
    assert_error(response, 400, "invalid_request")


async def test_nul_in_a_reversal_reason_is_refused(api):
    payment = await create_fake_payment(api)
    response = await api.post(
        f"/api/v1/payments/{payment['id']}/reversal", json={"reason": "oops\x00"}, headers=key()
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("query", ["reference=%00", "status=a%00", "cursor=%00", "provider=%00"])
async def test_nul_in_a_query_parameter_is_refused(api, query):
    assert_error(await api.get(f"/api/v1/payments?{query}"), 400, "invalid_request")


@pytest.mark.parametrize("query", ["reference=%FF", "reference=%C3%28"])
async def test_invalid_utf8_in_a_query_parameter_is_refused(api, query):
    assert_error(await api.get(f"/api/v1/payments?{query}"), 400, "invalid_request")


@pytest.mark.parametrize("path", ["/api/v1/payments/%00", "/api/v1/payments/%FF/reversals"])
async def test_nul_or_invalid_utf8_in_a_path_segment_is_refused(api, path):
    assert_error(await api.get(path), 400, "invalid_request")


async def test_nul_or_control_in_the_idempotency_key_is_refused(api):
    response = await api.post(
        "/api/v1/payments", json=payment_body(), headers={"Idempotency-Key": "a\x01b"}
    )
    if response.headers.get("content-type", "").startswith("application/json"):
        assert_error(response, 400)
    else:  # httptools (uvicorn's parser, issue 17) refuses the field before the app sees it
        assert response.status_code == 400 and b"Traceback" not in response.content


async def test_invalid_utf8_in_a_header_the_host_stores_is_refused(api):
    response = await api.post(
        "/api/v1/payments",
        json=payment_body(),
        headers=[("Idempotency-Key", b"key-\xff\xfe")],  # type: ignore[arg-type]
    )
    assert_error(response, 400)


async def test_deep_json_on_the_api_is_refused(api):
    response = await api.post(
        "/api/v1/payments", content=DEEP, headers={**key(), "Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")
    response = await api.post(
        "/api/v1/payments",
        content=DEEP_OBJECT,
        headers={**key(), "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")
    response = await api.post(
        "/api/v1/payments",
        json=payment_body(metadata={"a": nested(40)}),
        headers=key(),
    )
    assert_error(response, 400, "invalid_request")


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


async def test_json_within_the_depth_limit_is_served(api):
    response = await api.post(
        "/api/v1/payments", json=payment_body(metadata={"a": nested(20)}), headers=key()
    )
    assert response.status_code == 202, response.text


async def test_invalid_utf8_body_is_refused(api):
    body = b'{"type":"collection","amount":"1000","currency":"TZS","msisdn":"+255712345678",'
    body += b'"provider":"fake","reference":"\xff\xfe"}'
    response = await api.post(
        "/api/v1/payments", content=body, headers={**key(), "Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_the_api_takes_json_only(api, content_type):
    headers = {**key()}
    if content_type:
        headers["Content-Type"] = content_type
    body = b'{"type":"collection","amount":"1000","currency":"TZS","msisdn":"+255712345678"}'
    response = await api.post("/api/v1/payments", content=body, headers=headers)
    assert_error(response, 415, "unsupported_media_type")


async def test_json_with_a_charset_is_json(api):
    import json

    response = await api.post(
        "/api/v1/payments",
        content=json.dumps(payment_body()).encode(),
        headers={**key(), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "amount",
    [
        "100\n",
        "\uff11\uff10\uff10",
        "\u0661\u0660\u0660",
        "\u06f1\u06f0\u06f0",
        "100\n.5",
        " 100",
        "100 ",
        "1e3",
        "+100",
        ".5",
    ],
)
async def test_amounts_are_ascii_decimal_strings(api, amount):
    response = await api.post("/api/v1/payments", json=payment_body(amount=amount), headers=key())
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("amount", ["100\n", "\uff11\uff10\uff10", "\u0661\u0660\u0660"])
async def test_reversal_amounts_are_ascii_decimal_strings(api, amount):
    payment = await create_fake_payment(api)
    response = await api.post(
        f"/api/v1/payments/{payment['id']}/reversal",
        json={"reason": "r", "amount": amount},
        headers=key(),
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/payments/{id}/settle",
        "/api/v1/payments/{id}/reversals/{rid}/settle",
        "/api/v1/payments/{id}/reversal",
        "/api/v1/payments",
    ],
)
async def test_a_large_body_to_the_api_gets_413(api, path):
    url = path.format(id=uuid.uuid4(), rid=uuid.uuid4())
    body = b'{"note": "' + b"x" * FIVE_MIB + b'"}'
    response = await api.post(url, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request_too_large")


# -- webhooks -------------------------------------------------------------------------------


async def test_a_large_webhook_body_gets_413_not_a_reset(api, host):
    response = await raw_post(fake_url(host), b"x" * FIVE_MIB)
    assert_error(response, 413, "request_too_large")


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
async def test_deep_json_on_a_webhook_is_malformed_and_kept(api, host, body):
    response = await raw_post(fake_url(host), body, **{"Content-Type": "application/json"})
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and bytes(row["body"]) == body


async def test_invalid_utf8_on_a_webhook_is_malformed_and_kept(api, host):
    body = b'{"ref": "\xff\xfe", "status": "succeeded"}'
    response = await raw_post(fake_url(host), body)
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and bytes(row["body"]) == body


async def test_nul_in_a_webhook_body_is_malformed_and_kept(api, host):
    body = b'{"ref": "a\\u0000", "status": "succeeded"}'
    response = await raw_post(fake_url(host), body)
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and bytes(row["body"]) == body


async def test_a_long_webhook_segment_is_malformed_and_kept(api, host):
    url = f"{host.url}/api/v1/webhooks/{'a' * 65}/notify?token=x"
    response = await raw_post(url, b"{}")
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and row["path"].endswith("/notify")
    assert len(row["provider"]) <= 64


@pytest.mark.parametrize("segment", ["fake%00money", "fake%FFmoney", "Fake Money"])
async def test_a_garbage_webhook_segment_is_malformed_and_kept(api, host, segment):
    response = await raw_post(f"{host.url}/api/v1/webhooks/{segment}/notify", b"{}")
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed"


@pytest.mark.parametrize("token", ["%00", "a%00b", "x" * 300, "%FF", "abc%20def"])
async def test_a_garbage_token_is_malformed_and_kept(api, host, token):
    url = f"{host.url}/api/v1/webhooks/fake-money/notify?token={token}"
    response = await raw_post(url, b'{"ref": "x"}')
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and bytes(row["body"]) == b'{"ref": "x"}'
    assert row["provider"] == "fake-money"


async def test_nul_in_another_webhook_query_parameter_is_kept_escaped(api, host):
    url = fake_url(host) + "&note=a%00b"
    response = await raw_post(url, b'{"ref": "x"}')
    assert_error(response, 400)
    [row] = await callback_rows()
    assert row["flag"] == "malformed" and "\x00" not in row["query"]


async def test_a_wrong_token_is_still_unverified(api, host):
    url = f"{host.url}/api/v1/webhooks/fake-money/notify?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    response = await raw_post(url, b'{"ref": "x"}')
    assert response.status_code == 401
    [row] = await callback_rows()
    assert row["flag"] == "unverified"
