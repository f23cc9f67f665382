"""The API's documents tell the truth: every error code the code can return is in
docs/api.md, and every error the OpenAPI document lists is one the gateway answers, in
the gateway's `{"error": {...}}` shape."""

from __future__ import annotations

import importlib
import pathlib
import re

from mmo_core.errors import MmoError
from mmo_host.errors import _HTTP_CODES

ROOT = pathlib.Path(__file__).parents[1]
# codes that never reach an API caller, and where they go instead
NOT_FOR_API_CALLERS = {
    "configuration_error": "start-up and `mmo` commands (a message naming the setting)",
    "unknown_to_operator": "an answer of a provider's hook read by the host (operator.ask)",
    "no_answer_yet": "an answer of a provider's `status` hook read by the host (operator.ask)",
    "callback_verification_failed": "answered to operators (docs/webhooks.md)",
    "malformed_callback": "answered to operators (docs/api.md, Operators' webhooks)",
    "invalid_client": "`mmo keys` (the command line)",
    "invalid_duration": "`mmo keys`",
    "invalid_expiry": "`mmo keys`",
    "invalid_key": "`mmo keys`",
    "invalid_scope": "`mmo keys`",
    "key_not_active": "`mmo keys`",
}
MODULES = [
    "mmo_core.errors",
    "mmo_host.operator",
    "mmo_host.payments",
    "mmo_host.keys",
    "mmo_host.reversals",
    "mmo_host.routing",
    "mmo_host.controllers.operations",
]


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def codes_in_the_code() -> set[str]:
    """Every error code: the error classes' and every `code="..."` given when raising."""
    for module in MODULES:
        importlib.import_module(module)
    codes = {cls.code for cls in _subclasses(MmoError)} | {MmoError.code}
    for folder in ("core/src", "host/src", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            if "/tests/" in str(path) or "/simulator" in str(path):
                continue
            codes |= set(re.findall(r'\bcode="([a-z_]+)"', path.read_text()))
    return codes | set(_HTTP_CODES.values()) | {"internal_error"}


def test_every_error_code_is_documented():
    documented = (ROOT / "docs" / "api.md").read_text()
    missing = sorted(
        code
        for code in codes_in_the_code() - set(NOT_FOR_API_CALLERS)
        if f"`{code}`" not in documented
    )
    assert missing == [], f"error codes missing from docs/api.md: {missing}"


def _statuses_answered() -> set[int]:
    """What the error handlers can answer: every error class's status, Litestar's own
    (mapped in mmo_host.errors) and 500."""
    for module in MODULES:
        importlib.import_module(module)
    statuses = {cls.http_status for cls in _subclasses(MmoError)} | {MmoError.http_status}
    return statuses | set(_HTTP_CODES) | {500}


async def test_the_openapi_document_lists_only_real_errors_in_the_gateways_shape(api):
    document = (await api.get("/schema/openapi.json")).json()
    answered = _statuses_answered()
    wrong = []
    for path, methods in document["paths"].items():
        if not path.startswith("/api/"):  # /health/ready answers its checks, even in 503
            continue
        for method, operation in methods.items():
            for status, response in operation.get("responses", {}).items():
                if int(status) < 400:
                    continue
                where = f"{method.upper()} {path} {status}"
                if int(status) not in answered:
                    wrong.append(f"{where}: no error of the gateway answers it")
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema != {"$ref": "#/components/schemas/ErrorBody"}:
                    wrong.append(f"{where}: not the gateway's error body ({schema})")
    assert wrong == [], "\n".join(wrong)
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["error"]
    create = document["paths"]["/api/v1/payments"]["post"]
    key = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
