"""The conformance suite every provider package can run against itself.

Subclass `ProviderConformance` in a test module of your package::

    import mmo_myop.plugin
    from mmo_core.testing import ProviderConformance

    class TestConformance(ProviderConformance):
        plugin = mmo_myop.plugin
        msisdn = "+254712345678"      # a wallet your simulator serves
        currency = "KES"
        amount = "150"

pytest then checks that the declaration is valid, the hooks are present and typed, a
payment goes initiate -> callback -> status against the plugin's own simulator over real
HTTP on loopback, a declined test number ends failed with the operator's code, a tampered
or malformed callback gives the core's errors, and bad input is refused with them.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import msgspec
import pytest

from mmo_core import failures, hookspecs, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import CallbackVerificationFailed, InvalidRequest, MmoError, NotSupported
from mmo_core.http import create_http_client
from mmo_core.registry import Provider, ProviderRegistry, validate_declaration
from mmo_core.settings import ProviderSettings
from mmo_core.testing.servers import CallbackRecorder, RecordedRequest, serve_app
from mmo_core.tokens import TokenCache
from mmo_core.types import (
    CallbackOutcome,
    InboundCallback,
    InitiateResult,
    Payment,
    ProviderDeclaration,
    StatusReport,
)

# read from the hook specifications, so that a new hook is checked as it is declared
ASYNC_HOOKS = tuple(
    name
    for name in (*hookspecs.REQUIRED_HOOKS, *hookspecs.OPTIONAL_HOOKS)
    if inspect.iscoroutinefunction(getattr(hookspecs, name))
)
SYNC_HOOKS = tuple(
    name
    for name in (*hookspecs.REQUIRED_HOOKS, *hookspecs.OPTIONAL_HOOKS)
    if name not in ASYNC_HOOKS
)


def make_context(
    declaration: ProviderDeclaration,
    settings: ProviderSettings,
    *,
    base_url: str,
    public_url: str,
    callback_secret: str = "conformance-secret",
    environment: str = "sandbox",
    account: str = "default",
) -> ProviderContext:
    """A ProviderContext as the host builds it, pointed at `base_url`."""
    return ProviderContext(
        declaration=declaration,
        settings=settings,
        http=create_http_client(
            base_url=base_url, timeout=settings.timeout, connect_timeout=settings.connect_timeout
        ),
        tokens=TokenCache(),
        public_url=public_url,
        callback_secret=callback_secret,
        environment=environment,
        account=account,
    )


def to_inbound(provider: str, recorded: RecordedRequest) -> InboundCallback:
    kind = recorded.path.rstrip("/").rsplit("/", 1)[-1]
    return InboundCallback(
        provider=provider,
        kind=kind,
        method=recorded.method,
        path=recorded.path,
        query=recorded.query,
        headers=recorded.headers,
        body=recorded.body,
        remote_addr="127.0.0.1",
    )


class ProviderConformance:
    """Checks of the provider contract. Set the class attributes in your subclass."""

    plugin: ClassVar[Any]
    msisdn: ClassVar[str] = "+254712345678"
    declined_msisdn: ClassVar[str | None] = None  # by default: msisdn ending in 0001
    currency: ClassVar[str] = "KES"
    amount: ClassVar[str] = "150"
    payment_type: ClassVar[str] = "collection"
    settings_env: ClassVar[dict[str, str]] = {}
    callback_timeout: ClassVar[float] = 15.0
    # test number (last four digits) -> the gateway failure code its payment must end with
    # (mmo_core.failures.SCENARIO_CODES): every plugin is held to the same vocabulary. A
    # plugin whose operator cannot tell two scenarios apart removes them here, and says so.
    failure_scenarios: ClassVar[dict[str, str]] = dict(failures.SCENARIO_CODES)
    # settings fields of a second account of the same operator with other credentials
    # (another shortcode, subscription, application, merchant key): the kit runs both in
    # one simulator and checks that nothing crosses between them
    second_account: ClassVar[dict[str, Any]] = {}

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def provider(self) -> Provider:
        registry = ProviderRegistry(environ={})
        return registry.register(self.plugin)

    @pytest.fixture
    def settings(self, provider: Provider) -> ProviderSettings:
        from mmo_core.settings import load_settings

        return load_settings(provider.name, provider.settings_type, self.settings_env)

    @pytest.fixture
    async def harness(self, provider: Provider, settings: ProviderSettings) -> AsyncIterator[Any]:
        recorder = CallbackRecorder()
        app = provider.call_sync("simulator_app", settings=settings, accounts={"default": settings})
        with serve_app(app) as simulator, serve_app(recorder) as receiver:
            context = make_context(
                provider.declaration, settings, base_url=simulator.url, public_url=receiver.url
            )
            try:
                yield _Harness(provider, context, recorder)
            finally:
                await context.http.aclose()

    @pytest.fixture
    async def two_accounts(
        self, provider: Provider, settings: ProviderSettings
    ) -> AsyncIterator[tuple[Any, Any]]:
        """Harnesses of two accounts (`default` and `second`) served by one simulator."""
        assert self.second_account, "set second_account: a second account's settings"
        second = msgspec.structs.replace(settings, **self.second_account)
        recorders = CallbackRecorder(), CallbackRecorder()
        app = provider.call_sync(
            "simulator_app", settings=settings, accounts={"default": settings, "second": second}
        )
        with (
            serve_app(app) as simulator,
            serve_app(recorders[0]) as first_receiver,
            serve_app(recorders[1]) as second_receiver,
        ):
            contexts = [
                make_context(
                    provider.declaration,
                    account_settings,
                    base_url=simulator.url,
                    public_url=receiver.url,
                    account=name,
                )
                for name, account_settings, receiver in (
                    ("default", settings, first_receiver),
                    ("second", second, second_receiver),
                )
            ]
            try:
                yield (
                    _Harness(provider, contexts[0], recorders[0], simulator.url),
                    _Harness(provider, contexts[1], recorders[1], simulator.url),
                )
            finally:
                for context in contexts:
                    await context.http.aclose()

    def new_payment(self, provider: Provider, msisdn: str | None = None, **changes: Any) -> Payment:
        number = msisdn or self.msisdn
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "type": self.payment_type,
            "amount": Decimal(self.amount),
            "currency": self.currency,
            "msisdn": number,
            "reference": "CONF-" + uuid.uuid4().hex[:6].upper(),
            "country": phones.region_of(number),
            "description": "Conformance",
        }
        values.update(changes)
        return Payment(**values)

    # -- declaration and hooks -------------------------------------------------------------

    def test_declaration_is_valid(self, provider: Provider) -> None:
        validate_declaration(provider.declaration)
        assert provider.declaration.currencies
        assert self.currency in provider.declaration.currencies

    def test_required_hooks_are_present(self, provider: Provider) -> None:
        for hook in hookspecs.REQUIRED_HOOKS:
            assert provider.implements(hook), f"missing hook {hook}"
        assert provider.implements("simulator_app"), "every provider ships a simulator"

    def test_hooks_are_typed(self, provider: Provider) -> None:
        for hook in provider.hooks:
            impl = next(
                i
                for i in getattr(provider.registry.pm.hook, hook).get_hookimpls()
                if i.plugin is provider.plugin
            )
            spec = inspect.signature(getattr(hookspecs, hook))
            signature = inspect.signature(impl.function)
            assert set(signature.parameters) <= set(spec.parameters), hook
            if hook in ASYNC_HOOKS:
                assert inspect.iscoroutinefunction(impl.function), f"{hook} must be async def"
            else:
                assert not inspect.iscoroutinefunction(impl.function), f"{hook} must be sync"
            assert (
                signature.return_annotation is not inspect.Signature.empty
                or hook == "simulator_app"
            ), f"{hook} has no return annotation"

    def test_operations_match_hooks(self, provider: Provider) -> None:
        operations = provider.declaration.operations
        assert ("reversal" in operations) == provider.implements("reverse")
        assert ("balance" in operations) == provider.implements("balance")
        assert ("lookup" in operations) == provider.implements("lookup_account")
        assert ("resend_prompt" in operations) == provider.implements("resend_prompt")
        if provider.implements("reversal_status"):
            assert provider.implements("reverse"), "reversal_status without reverse"

    # -- round trip against the simulator -------------------------------------------------

    async def test_round_trip(self, harness: _Harness) -> None:
        payment = self.new_payment(harness.provider)
        ack = await harness.call("initiate", payment=payment)
        assert isinstance(ack, InitiateResult)
        payment = msgspec.structs.replace(
            payment,
            status="pending",
            provider_reference=ack.provider_reference,
            provider_data=ack.provider_data,
        )
        outcome = await harness.next_callback()
        assert isinstance(outcome, CallbackOutcome)
        assert outcome.update is not None
        assert outcome.update.status == "succeeded"
        assert outcome.update.payment_id == payment.id or (
            outcome.update.provider_reference == payment.provider_reference
        )
        if outcome.update.amount is not None:
            assert outcome.update.amount == payment.amount
        report = await harness.call("status", payment=payment)
        assert isinstance(report, StatusReport)
        assert report.status == "succeeded"

    async def test_declined_number_fails_with_operator_code(self, harness: _Harness) -> None:
        declined = self.declined_msisdn or self.msisdn[:-4] + "0001"
        payment = self.new_payment(harness.provider, msisdn=declined)
        try:
            ack = await harness.call("initiate", payment=payment)
        except MmoError as exc:
            assert exc.provider_code, "a refusal keeps the operator's code"
            return
        payment = msgspec.structs.replace(
            payment,
            status="pending",
            provider_reference=ack.provider_reference,
            provider_data=ack.provider_data,
        )
        outcome = await harness.next_callback()
        assert outcome.update is not None and outcome.update.status in {"failed", "expired"}
        assert outcome.update.failure is not None and outcome.update.failure.code
        report = await harness.call("status", payment=payment)
        assert report.status == outcome.update.status

    async def test_scenarios_end_with_their_gateway_codes(self, harness: _Harness) -> None:
        """0001 -> insufficient_funds, 1032 -> payer_declined, 1037 -> prompt_expired (and
        `expired`), 2001 -> wrong_pin: as the refusal's `failure_code`, or as the failure of
        the final status the `status` hook reports."""
        wrong = {}
        for last4, expected in self.failure_scenarios.items():
            payment = self.new_payment(harness.provider, msisdn=self.msisdn[:-4] + last4)
            got = await _final_failure(harness, payment, self.callback_timeout)
            # the code and the status are strict: a timed-out prompt ends `expired`
            if got[1] != expected or got[0] != failures.status_of(expected):
                wrong[last4] = (got, expected)
        assert not wrong, f"test numbers that end with another code: {wrong}"

    async def test_tampered_callback_is_refused(self, harness: _Harness) -> None:
        await harness.call("initiate", payment=self.new_payment(harness.provider))
        recorded = (await harness.wait_for_requests(1))[-1]
        forged = InboundCallback(
            provider=harness.provider.name,
            kind=to_inbound(harness.provider.name, recorded).kind,
            method=recorded.method,
            path=recorded.path,
            query={k: v for k, v in recorded.query.items() if k != "token"} | {"token": "forged"},
            headers=recorded.headers,
            body=recorded.body,
        )
        with pytest.raises(CallbackVerificationFailed):
            await harness.call("parse_callback", callback=forged)

    async def test_malformed_callback_gives_core_error(self, harness: _Harness) -> None:
        await harness.call("initiate", payment=self.new_payment(harness.provider))
        recorded = (await harness.wait_for_requests(1))[-1]
        garbage = msgspec.structs.replace(
            to_inbound(harness.provider.name, recorded), body=b"{not json"
        )
        with pytest.raises((InvalidRequest, CallbackVerificationFailed)):
            await harness.call("parse_callback", callback=garbage)

    # -- bad input -------------------------------------------------------------------------

    async def test_unsupported_currency_is_refused(self, harness: _Harness) -> None:
        unknown = next(
            c for c in ("XXX", "JPY", "CHF") if c not in harness.provider.declaration.currencies
        )
        payment = self.new_payment(harness.provider, currency=unknown)
        with pytest.raises((InvalidRequest, NotSupported)):
            if harness.provider.implements("validate"):
                harness.provider.call_sync("validate", context=harness.context, payment=payment)
            await harness.call("initiate", payment=payment)

    async def test_status_of_unknown_payment_gives_core_error(self, harness: _Harness) -> None:
        payment = self.new_payment(
            harness.provider, status="pending", provider_reference="unknown-ref"
        )
        try:
            report = await harness.call("status", payment=payment)
        except MmoError:
            return
        assert isinstance(report, StatusReport)

    async def test_health_reports_ok(self, harness: _Harness) -> None:
        report = await harness.call("health")
        assert report.ok, report.detail

    # -- accounts --------------------------------------------------------------------------

    async def test_long_reference_goes_through(self, harness: _Harness) -> None:
        """The orchestrator's reference (up to 128 characters) is never refused for an
        operator's field limit: the plugin derives the operator's fields from it."""
        payment = self.new_payment(harness.provider, reference="ORDER-" + "7" * 34)
        assert len(payment.reference) == 40
        if harness.provider.implements("validate"):
            harness.provider.call_sync("validate", context=harness.context, payment=payment)
        ack = await harness.call("initiate", payment=payment)
        assert isinstance(ack, InitiateResult)
        outcome = await harness.next_callback()
        assert outcome.update is not None and outcome.update.status == "succeeded"

    async def test_two_accounts_do_not_cross(self, two_accounts: tuple[Any, Any]) -> None:
        """A payment of one account: its callback is refused by the other account, the
        other account's status query does not report it paid, and it is in its own
        account's ledger only."""
        first, second = two_accounts
        payment = await self._paid_through(first)
        assert await first.ledger("default"), "the payment is in its account's ledger"
        assert not await first.ledger("second"), "the other account's ledger is empty"
        recorded = (await first.wait_for_requests(1))[-1]
        with pytest.raises(CallbackVerificationFailed):
            await second.call("parse_callback", callback=to_inbound(first.provider.name, recorded))
        await _refused_across(second, payment)
        # and the second account works on its own, without seeing the first's
        other = await self._paid_through(second)
        assert await first.ledger("second"), "the second account's payment is in its ledger"
        await _refused_across(first, other)

    async def _paid_through(self, harness: _Harness) -> Payment:
        """A payment initiated through `harness`, its callback verified and succeeded."""
        payment = self.new_payment(harness.provider)
        ack = await harness.call("initiate", payment=payment)
        outcome = await harness.next_callback()
        assert outcome.update is not None and outcome.update.status == "succeeded"
        payment = msgspec.structs.replace(
            payment,
            status="pending",
            provider_reference=ack.provider_reference,
            provider_data=ack.provider_data,
        )
        assert (await harness.call("status", payment=payment)).status == "succeeded"
        return payment


async def _final_failure(
    harness: _Harness, payment: Payment, timeout: float
) -> tuple[str, str | None]:
    """(final status, gateway failure code) of a payment, by `initiate` then `status`."""
    try:
        ack = await harness.call("initiate", payment=payment)
    except MmoError as exc:
        assert exc.provider_code, "a refusal keeps the operator's code"
        return "failed", exc.failure_code
    payment = msgspec.structs.replace(
        payment,
        status="pending",
        provider_reference=ack.provider_reference,
        provider_data=ack.provider_data,
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        report = await harness.call("status", payment=payment)
        if report.status not in ("pending", "unknown") or (
            asyncio.get_running_loop().time() > deadline
        ):
            break
        await asyncio.sleep(0.05)
    if report.failure is not None:
        assert report.failure.provider_code, "a failure keeps the operator's code"
    return report.status, report.failure.code if report.failure else None


async def _refused_across(harness: _Harness, payment: Payment) -> None:
    """Another account's status query on `payment` must not report it paid."""
    try:
        crossed = await harness.call("status", payment=payment)
    except MmoError:
        return
    assert crossed.status != "succeeded", "a status query crossed accounts"


class _Harness:
    def __init__(
        self,
        provider: Provider,
        context: ProviderContext,
        recorder: CallbackRecorder,
        simulator_url: str = "",
    ):
        self.provider = provider
        self.context = context
        self.recorder = recorder
        self.simulator_url = simulator_url or context.base_url
        self._seen = 0

    async def ledger(self, account: str) -> list[dict[str, Any]]:
        """The simulator's ledger entries of one account."""
        async with httpx.AsyncClient(base_url=self.simulator_url) as client:
            response = await client.get("/_simulator/ledger", params={"account": account})
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    async def call(self, hook: str, **kwargs: Any) -> Any:
        return await self.provider.call(hook, context=self.context, **kwargs)

    async def wait_for_requests(self, count: int, timeout: float = 15.0) -> list[RecordedRequest]:
        return await asyncio.to_thread(self.recorder.wait_for, count, timeout)

    async def next_callback(self) -> CallbackOutcome:
        requests = await self.wait_for_requests(self._seen + 1)
        recorded = requests[self._seen]
        self._seen += 1
        return await self.call("parse_callback", callback=to_inbound(self.provider.name, recorded))


__all__ = ["ProviderConformance", "make_context", "to_inbound"]
