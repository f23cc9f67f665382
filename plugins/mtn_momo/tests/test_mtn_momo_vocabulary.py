"""Every MTN reason code of the notes (shared/providers/mtn_momo.md §7 and §8) maps to the
gateway's failure vocabulary (mmo_core.failures); an unknown code is operator_error,
logged once."""

from __future__ import annotations

import logging
import uuid

import pytest
from mmo_core import failures
from mmo_mtn_momo import client
from mmo_mtn_momo.wire import REASONS

# notes §7: the ErrorReason enum (17), the extra reasons, the older status words, the HTTP
# answers' codes; each with the gateway code an orchestrator acts on
EXPECTED = {
    # ErrorReason
    "PAYEE_NOT_FOUND": failures.PAYER_NOT_FOUND,
    "PAYER_NOT_FOUND": failures.PAYER_NOT_FOUND,
    "NOT_ALLOWED": failures.ACCOUNT_ERROR,
    "NOT_ALLOWED_TARGET_ENVIRONMENT": failures.ACCOUNT_ERROR,
    "INVALID_CALLBACK_URL_HOST": failures.ACCOUNT_ERROR,
    "INVALID_CURRENCY": failures.OPERATOR_ERROR,
    "SERVICE_UNAVAILABLE": failures.PROVIDER_UNAVAILABLE,
    "INTERNAL_PROCESSING_ERROR": failures.OPERATOR_ERROR,
    "NOT_ENOUGH_FUNDS": failures.INSUFFICIENT_FUNDS,
    "PAYER_LIMIT_REACHED": failures.PAYER_LIMIT_REACHED,
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": failures.PAYEE_NOT_ALLOWED,
    "PAYMENT_NOT_APPROVED": failures.WRONG_PIN,
    "RESOURCE_NOT_FOUND": failures.NOT_RECEIVED,
    "APPROVAL_REJECTED": failures.PAYER_DECLINED,
    "EXPIRED": failures.PROMPT_EXPIRED,
    "TRANSACTION_CANCELED": failures.PAYER_DECLINED,
    "RESOURCE_ALREADY_EXIST": failures.DUPLICATE,
    # extra reasons (D-upd, D-err)
    "COULD_NOT_PERFORM_TRANSACTION": failures.PROMPT_EXPIRED,
    "SENDER_ACCOUNT_NOT_ACTIVE": failures.PAYER_NOT_ALLOWED,
    "TRANSACTION_NOT_FOUND": failures.NOT_RECEIVED,
    # status words of the older docs
    "FAILED": failures.OPERATOR_ERROR,
    "REJECTED": failures.OPERATOR_ERROR,
    "TIMEOUT": failures.PROMPT_EXPIRED,
    # HTTP answers without a product code (400, 401, 403) and the token's login_failed
    "REQUEST_REJECTED": failures.OPERATOR_ERROR,
    "ACCESS_DENIED": failures.ACCOUNT_ERROR,
    "FORBIDDEN_IP": failures.ACCOUNT_ERROR,
    "login_failed": failures.ACCOUNT_ERROR,
}


def test_every_documented_reason_is_mapped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mmo.failures"):
        got = {code: client.VOCABULARY.code(code) for code in EXPECTED}
    assert got == EXPECTED
    assert not caplog.records, "a documented code fell through to the unknown-code log"
    # and every reason the plugin has a text for is among them
    assert set(REASONS) <= set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_a_failure_keeps_mtn_code_and_text(code: str) -> None:
    failure = client.failure_for(code, "MoMo's words")
    assert failure.code == EXPECTED[code]
    assert (failure.provider_code, failure.provider_message) == (code, "MoMo's words")


def test_prompt_timeouts_end_expired() -> None:
    for code in ("EXPIRED", "COULD_NOT_PERFORM_TRANSACTION", "TIMEOUT"):
        assert failures.status_of(client.VOCABULARY.code(code)) == "expired"
    assert failures.status_of(client.VOCABULARY.code("APPROVAL_REJECTED")) == "failed"


def test_an_unknown_reason_is_operator_error_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = f"NEW_REASON_{uuid.uuid4().hex[:6].upper()}"
    with caplog.at_level(logging.WARNING, logger="mmo.failures"):
        first = client.failure_for(code)
        second = client.failure_for(code)
    assert first.code == second.code == failures.OPERATOR_ERROR
    assert first.provider_code == code
    assert sum(code in r.getMessage() for r in caplog.records) == 1
