"""The owners of the host's decisions: how an operator call ended (`operator.ask`), how
long to wait (`schedule`), and that the operator's Retry-After reaches the API and the
queue."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from mmo_core.errors import (
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.types import StatusReport
from mmo_host import jobs, operator
from mmo_host.reconcile import agrees
from mmo_host.schedule import Backoff, Schedule

from tests.test_webhooks import create_fake_payment

# -- the schedule ----------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_gives_up_past_its_horizon():
    backoff = Backoff(first=2.0, cap=10.0, jitter=0.0, horizon=60.0)
    assert [backoff.after(n) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.after(1, age=59.9) == 2.0
    assert backoff.after(1, age=60.0) is None


def test_backoff_never_comes_before_the_operators_retry_after():
    backoff = Backoff(first=1.0, cap=5.0, jitter="full")
    assert all(backoff.after(n, retry_after=42.0) >= 42.0 for n in range(1, 20))
    assert all(0.0 <= backoff.after(3) <= 4.0 for _ in range(50))


def test_fixed_steps_end():
    schedule = Schedule()
    assert [schedule.rematch.after(n) for n in range(1, 8)] == [1, 3, 10, 30, 60, 300, None]
    spread = [schedule.delivery.after(1) for _ in range(50)]
    assert all(54 <= d <= 66 for d in spread)


def test_each_provider_polls_first_after_its_own_delay():
    schedule = Schedule(poll_first={"mpesa": 15.0}, default_poll_first=30.0)
    assert schedule.first_poll("mpesa") == 15.0 and schedule.first_poll("other") == 30.0
    poll = schedule.poll("mpesa")
    assert poll.horizon == schedule.poll_for and poll.cap == schedule.max_poll_delay


# -- how a call ended --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (OperatorDeclined("no", provider="fake"), "declined"),
        (InvalidRequest("bad", provider="fake"), "declined"),
        (NotSupported("no", provider="fake"), "declined"),
        (ProviderAuthenticationError("key", provider="fake"), "declined"),
        (ProviderUnavailable("down", provider="fake", retry_after=7), "not_sent"),
        (RateLimited("slow down", provider="fake", retry_after=3), "not_sent"),
        (operator.BreakerOpen("fake"), "not_sent"),
        (OutcomeUnknown("read timeout", provider="fake"), "unknown"),
        (TimeoutError(), "unknown"),
        (RuntimeError("bug"), "unknown"),
        (UnknownToOperator("never heard of it", provider="fake"), "unknown_to_operator"),
    ],
)
async def test_every_way_a_call_ends_has_one_reading(host, monkeypatch, raised, kind):
    async def scripted(gateway, target, hook, **kwargs):
        raise raised

    monkeypatch.setattr(operator, "call", scripted)
    answer = await operator.ask(host.gateway, operator.Target("fake"), "status")
    assert answer.kind == kind and not answer.ok
    if isinstance(raised, ProviderUnavailable):
        assert answer.retry_after == raised.retry_after
    if isinstance(raised, operator.BreakerOpen):
        assert answer.retry_after == host.gateway.config.breaker_cooldown


async def test_an_answer_of_the_wrong_type_is_unknown(host, monkeypatch):
    async def scripted(gateway, target, hook, **kwargs):
        return None

    monkeypatch.setattr(operator, "call", scripted)
    answer = await operator.ask(
        host.gateway, operator.Target("fake"), "status", expect=StatusReport
    )
    assert (answer.kind, answer.reason) == ("unknown", "unexpected_answer")


# -- Retry-After, end to end -------------------------------------------------------------------


async def test_the_operators_retry_after_reaches_the_api_caller(api, monkeypatch):
    async def scripted(gateway, target, hook, **kwargs):
        raise ProviderUnavailable("busy", provider="fake", retry_after=7.2)

    monkeypatch.setattr(operator, "call", scripted)
    response = await api.get("/api/v1/admin/providers/fake/balance")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "8"
    assert response.json()["error"]["code"] == "provider_unavailable"


async def test_a_queued_payment_is_not_sent_before_the_operators_retry_after(api, monkeypatch):
    real = operator.call

    async def scripted(gateway, target, hook, **kwargs):
        if hook == "initiate":
            raise ProviderUnavailable("busy", provider="fake", retry_after=120)
        return await real(gateway, target, hook, **kwargs)

    monkeypatch.setattr(operator, "call", scripted)
    payment = await create_fake_payment(api)
    assert payment["status"] == "new"
    [send] = [j for j in await jobs.open_jobs(uuid.UUID(payment["id"])) if j["kind"] == "send"]
    assert send["run_at"] >= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=110)


# -- reconciliation's agreement ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "reversed_minor", "theirs", "agree"),
    [
        ("reversed", 100, "succeeded", True),
        ("reversed", 100, "reversed", True),
        ("succeeded", 40, "reversed", True),
        ("succeeded", 0, "reversed", False),
        ("failed", 0, "succeeded", False),
        ("succeeded", 0, "pending", True),
        ("expired", 0, "failed", False),
    ],
)
def test_which_final_statuses_agree(ours, reversed_minor, theirs, agree):
    assert agrees(ours, reversed_minor, theirs) is agree
