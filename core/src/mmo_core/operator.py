"""Authenticated calls to an operator, and the health probe: the loop every plugin needs.

Every operator hands out an OAuth-style access token and refuses it, sooner or later, with a
401. `OperatorClient` owns what to do about that, once for every plugin: take the token from
the core's cache (`context.tokens`), send, and when the operator refuses the token, forget
it, fetch a new one and send again, once. It also owns what a transport failure means
(`mmo_core.http.transport_error`): a request that never left is `ProviderUnavailable` /
`ProviderTimeout`; one that may have arrived is `OutcomeUnknown` when the call moves money,
and `ProviderUnavailable` when it only reads.

A plugin keeps only its operator's specifics: how to get a token (`fetch_token`), the
headers of every call, what a refused token looks like (`token_refused`, a 401 by default),
and its one function that reads the operator's answers, decorated with
`@honours_retry_after` so that the `Retry-After` of a 429 or 503 answer reaches
`ProviderUnavailable.retry_after` / `RateLimited.retry_after`, which the host honours.

`probe` times a real request to the operator for the `health` hook: `OperatorClient.probe`
fetches a new token, bypassing the cache, so "healthy" means the operator answered now and
accepted our credential, not that a token is in memory.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import httpx

from mmo_core.errors import MmoError, ProviderUnavailable
from mmo_core.http import transport_error
from mmo_core.types import HealthReport

if TYPE_CHECKING:
    from mmo_core.context import ProviderContext
    from mmo_core.tokens import AccessToken

P = ParamSpec("P")
T = TypeVar("T")

# The answers whose Retry-After the host honours: "too many requests" and "unavailable".
RETRY_AFTER_STATUSES = frozenset({429, 503})
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


# -- Retry-After ----------------------------------------------------------------------------


def retry_after(response: httpx.Response, *, now: dt.datetime | None = None) -> float | None:
    """The `Retry-After` of an answer in seconds from now, None when absent or unreadable.

    RFC 9110 allows delay-seconds (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00
    GMT`); a date in the past is 0 seconds.
    """
    value = response.headers.get("retry-after")
    if not value:
        return None
    match = _SECONDS.match(value)
    if match is not None:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    moment = now or dt.datetime.now(dt.UTC)
    return max((when - moment).total_seconds(), 0.0)


def honours_retry_after(
    interpret: Callable[Concatenate[httpx.Response, P], T],
) -> Callable[Concatenate[httpx.Response, P], T]:
    """Decorate an operator's one answer-reading function (`raise_for`, `interpret`).

    Its first argument must be the `httpx.Response`. When it raises `ProviderUnavailable`
    (or `RateLimited`) for a 429 or 503 answer that carries a readable `Retry-After`, the
    error's `retry_after` is set to it: the operator's own word beats a plugin's default.
    """

    @functools.wraps(interpret)
    def reading(response: httpx.Response, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return interpret(response, *args, **kwargs)
        except ProviderUnavailable as exc:
            if response.status_code in RETRY_AFTER_STATUSES:
                seconds = retry_after(response)
                if seconds is not None:
                    exc.retry_after = seconds
            raise

    return reading


# -- sending ---------------------------------------------------------------------------------


async def request(
    context: ProviderContext,
    method: str,
    url: str,
    operation: str,
    *,
    moves_money: bool,
    **kwargs: Any,
) -> httpx.Response:
    """One request on `context.http` without a bearer token (a token or key request).

    A transport failure is raised as the core error it means (see `transport_error`);
    `kwargs` go to `httpx.AsyncClient.request` as they are.
    """
    try:
        return await context.http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise transport_error(exc, context.name, operation, moves_money=moves_money) from exc


def is_unauthorized(response: httpx.Response) -> bool:
    """The default test of a refused token: HTTP 401."""
    return response.status_code == 401


class OperatorClient:
    """Authenticated calls to one operator with one credential.

    - `token_key`: the token's key in `context.tokens` (build it with `context.token_key`).
    - `fetch_token`: asks the operator for a new token (use `request` inside it); it raises
      the core's errors for a refusal.
    - `headers`: sent on every call (a subscription key, a country header...).
    - `token_refused`: does this answer refuse our token, so that a new one may cure it?
      A 401 by default; operators that say it otherwise (M-Pesa's codes, Airtel's 403
      `invalid_token`) pass their own test.

    It is cheap to build: a plugin may build one per call.
    """

    def __init__(
        self,
        context: ProviderContext,
        *,
        token_key: str,
        fetch_token: Callable[[], Awaitable[AccessToken]],
        headers: Mapping[str, str] | None = None,
        token_refused: Callable[[httpx.Response], bool] = is_unauthorized,
    ) -> None:
        self.context = context
        self.token_key = token_key
        self._fetch_token = fetch_token
        self._headers = dict(headers or {})
        self._token_refused = token_refused

    async def token(self) -> str:
        """The bearer token, from the cache while it is fresh."""
        return await self.context.tokens.get(self.token_key, self._fetch_token)

    async def fresh_token(self) -> str:
        """A new token from the operator, bypassing the cache (which then keeps it)."""
        return await self.context.tokens.refresh(self.token_key, self._fetch_token)

    async def send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        moves_money: bool,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one call with the bearer token; on a refused token, one new token and one resend.

        `moves_money`: True for a call that may move money (a payment, a refund), whose
        lost answer is then `OutcomeUnknown`; False for a read (status, balance, lookup),
        whose lost answer is `ProviderUnavailable`. The answer is returned as it is, for the
        plugin's own reading; the second answer is returned even when it refuses again.
        """
        token = await self.token()
        response = await self._send(token, method, url, operation, moves_money, headers, kwargs)
        if not self._token_refused(response):
            return response
        self.context.log.info(
            "%s: token refused on %s; fetching a new one", self.context.name, operation
        )
        await self.context.tokens.invalidate(self.token_key, refused=token)
        token = await self.token()
        return await self._send(token, method, url, operation, moves_money, headers, kwargs)

    async def _send(
        self,
        token: str,
        method: str,
        url: str,
        operation: str,
        moves_money: bool,
        headers: Mapping[str, str] | None,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        sent = {**self._headers, **(headers or {}), "Authorization": f"Bearer {token}"}
        return await request(
            self.context, method, url, operation, moves_money=moves_money, headers=sent, **kwargs
        )

    async def probe(self, detail: str = "operator reached") -> HealthReport:
        """The `health` answer for this credential: a new token, timed (see `probe`)."""
        return await probe(self.fresh_token, detail=detail)


# -- health ----------------------------------------------------------------------------------


async def probe(check: Callable[[], Awaitable[object]], *, detail: str) -> HealthReport:
    """Time `check`, a real and harmless request to the operator, as a `HealthReport`.

    `check` must reach the operator every time (a new token with `fresh_token`, a balance,
    a status query of an id that does not exist): never a cached answer. A core error it
    raises is an unhealthy report naming the error's code and, when the operator gave one,
    its own code; the latency is reported either way. Anything else is a bug and raises.
    """
    started = time.perf_counter()
    try:
        await check()
    except MmoError as exc:
        return HealthReport(ok=False, detail=_failed(exc), latency_ms=_since(started))
    return HealthReport(ok=True, detail=detail, latency_ms=_since(started))


def _failed(exc: MmoError) -> str:
    text = f"{exc.code}: {exc.message}"
    if exc.provider_code and exc.provider_code not in text:
        text = f"{text} [{exc.provider_code}]"
    return text


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = [
    "RETRY_AFTER_STATUSES",
    "OperatorClient",
    "honours_retry_after",
    "is_unauthorized",
    "probe",
    "request",
    "retry_after",
]
