"""schemathesis against the host's own OpenAPI document: every route, valid and invalid data.

The served gateway (tests/conftest.py `host`: real Postgres, real simulators) must never
answer 5xx, and every status code and content type it answers must be in its document.
Bounded for CI: `MMO_FUZZ_EXAMPLES` examples per operation and generation mode (default
60), derandomized, no deadline. The cases run in a thread: the server shares the test's
event loop, and schemathesis calls it synchronously.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.conftest import API_KEY

EXAMPLES = int(os.environ.get("MMO_FUZZ_EXAMPLES", "60"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@dataclass
class Findings:
    cases: int = 0
    server_errors: set[tuple[str, int]] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)


def fuzz_operation(operation: Any, base_url: str, findings: Findings) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=auth, timeout=30)
            findings.cases += 1
            label = f"{operation.method.upper()} {operation.path}"
            if response.status_code >= 500:
                findings.server_errors.add((label, response.status_code))
            try:
                case.validate_response(response, checks=CHECKS, headers=auth)
            except (FailureGroup, Failure) as exc:  # a failed check: count it, keep fuzzing
                failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
                for failure in failures:
                    title = getattr(failure, "title", type(failure).__name__)
                    key = f"{label}: {title} ({response.status_code})"
                    findings.failures[key] += 1
                    findings.examples.setdefault(key, response.text[:200])

        try:
            run()
        except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE


def fuzz(document: dict[str, Any], base_url: str) -> Findings:
    schema = schemathesis.openapi.from_dict(document)
    findings = Findings()
    for result in schema.get_all_operations():
        fuzz_operation(result.ok(), base_url, findings)
    return findings


async def test_the_gateway_keeps_to_its_own_openapi_document(api, host):
    document = (await host.client.get("/schema/openapi.json")).json()
    findings = await asyncio.to_thread(fuzz, document, host.url)
    report = "\n".join(
        f"{count:4d} x {key}: {findings.examples[key]}"
        for key, count in findings.failures.most_common()
    )
    print(f"\n{findings.cases} cases, {len(findings.server_errors)} distinct 5xx\n{report}")
    assert findings.cases > 0
    assert not findings.server_errors, findings.server_errors
    assert not findings.failures, report
