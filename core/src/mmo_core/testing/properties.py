"""Hypothesis strategies for the property every `parse_callback` must keep.

A callback URL is a bearer secret that leaks; with its token an attacker writes the body,
headers and query of a webhook. Whatever they send, the hook must return a
`CallbackOutcome` or raise one of the core's errors (`InvalidRequest` for a malformed body,
`CallbackVerificationFailed` for a bad token or signature), never anything else: the host
answers any other exception 503, and the operator retries it forever.

Needs `hypothesis` (the workspace's dev dependency group); nothing imports this module but
the property tests.

- `BOUNDED`: the settings of these properties (200 examples, no deadline, derandomized, so
  CI sees the same examples every run).
- `json_values()`: any JSON document, with huge integers, NaN and infinities, strings with
  NUL and lone surrogates; `json_bodies()` the same as bytes, encoded several ways, plus
  documents nested far deeper than any decoder recurses.
- `mutated(document)`: a real body with one to three fields removed, replaced by another
  JSON type, or set to an extreme value.
- `query_strings(valid)` / `header_maps()`: arbitrary query parameters and headers.
- `BAD_AMOUNTS`: amounts no currency holds (negative, zero, not a number, too many decimals).
- `outcome_or_core_error(awaitable)`: the property itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mmo_core.errors import MmoError
from mmo_core.types import CallbackOutcome

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text an operator's body may carry: any code point, lone surrogates and NUL included.
# `st.text()` drops surrogates even from an alphabet that holds them: join characters.
CHARACTERS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(["\x00", "\ufeff", "\u202e", "\uff11", "\u0661", "\n", '"', "\\"]),
)
TEXT = st.lists(CHARACTERS, max_size=24).map("".join)

HUGE_INTEGERS = st.sampled_from(
    [2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 10**400, -(10**400)]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTEGERS,
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["", "0", "-1", "1e3", "NaN", "Infinity", "1_000", "\uff11\uff10\uff10"]),
)


def json_values(max_leaves: int = 24) -> st.SearchStrategy[Any]:
    """Any JSON document (and a few things JSON cannot hold: NaN, infinities, surrogates)."""
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(TEXT, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def deeply_nested(depth: int, core: bytes = b"1") -> bytes:
    """A valid JSON document `depth` levels deep: past any decoder's recursion limit."""
    return b'{"a":[' * depth + core + b"]}" * depth


# Stands for a value nested past the recursion limit; `encode` writes it out as bytes
# (Python's own json module could not build such a document).
DEEP_VALUE = "\x00mmo-deeply-nested\x00"
_DEEP_JSON = json.dumps(DEEP_VALUE).encode()


def encode(document: Any, style: str = "ascii") -> bytes:
    """`document` as a body: JSON escapes (`ascii`), raw UTF-8 where it can be (`utf8`), or
    raw bytes with lone surrogates left in, which is not UTF-8 at all (`surrogates`)."""
    if style == "ascii":
        body = json.dumps(document, allow_nan=True).encode()
    else:
        text = json.dumps(document, allow_nan=True, ensure_ascii=False)
        body = text.encode("utf-8", "surrogatepass" if style == "surrogates" else "replace")
    return body.replace(_DEEP_JSON, deeply_nested(5000))


DEEP = st.integers(min_value=500, max_value=200_000).map(deeply_nested)


def json_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are JSON, or nearly: any document in any encoding, and very deep ones."""
    return st.one_of(
        st.builds(encode, json_values(), st.sampled_from(["ascii", "utf8", "surrogates"])),
        DEEP,
    )


# Extreme values a field of a real body may be set to.
EXTREMES: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            -0.0,
            2**63,
            10**400,
            float("nan"),
            float("inf"),
            float("-inf"),
            1e308,
            5e-324,
            "",
            "\x00",
            "\ud800",
            "9" * 5000,
            "x" * 20_000,
            [],
            {},
            DEEP_VALUE,
        ]
    ),
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths.extend(_paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths.extend(_paths(value, (*prefix, index)))
    return paths


def _mutate(document: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        copy: Any = dict(document)
    else:
        copy = list(document)
    if not rest and action == "remove":
        del copy[head]
        return copy
    copy[head] = _mutate(document[head], rest, action, value)
    return copy


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one to three of its fields removed, retyped or set to an extreme."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        action = draw(st.sampled_from(["remove", "retype", "extreme"]))
        if action == "remove" and not path:
            action = "retype"
        value = draw(json_values(max_leaves=6) if action == "retype" else EXTREMES)
        document = _mutate(document, path, action, value)
    return document


def set_at(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `document` with the field at `path` set to `value`."""
    return _mutate(document, path, "set", value)


# Amounts no currency holds, as an operator might send them (JSON numbers or text). An
# empty string is not among them: operators send it for "no amount".
BAD_AMOUNTS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            "0",
            "-5",
            "-0.01",
            "abc",
            "NaN",
            "Infinity",
            "1e3",
            "1_000",
            " 100",
            "100\n",
            "\uff11\uff10\uff10",
            "\u0661\u0660\u0660",
            "12.345",
            "0.001",
            True,
            [],
            {},
            {"value": 100},
            10**400,
            "9" * 60,
        ]
    ),
    st.integers(max_value=0),
    st.decimals(max_value=Decimal(0), allow_nan=False, places=2).map(str),
    st.lists(CHARACTERS, min_size=1, max_size=8)
    .map("".join)
    .filter(lambda text: not (text.isascii() and text.isdecimal())),
)

HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "content-type",
            "content-length",
            "authorization",
            "x-signature",
            "x-auth-token",
            "hash",
            "x-callback-signature",
            "x-forwarded-for",
        ]
    ),
    st.lists(CHARACTERS, max_size=12).map("".join),
)


def header_maps() -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(HEADER_NAMES, TEXT, max_size=6)


def query_strings(valid: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    """Arbitrary query parameters, and the valid ones with parameters changed or added."""
    anything = st.dictionaries(
        st.one_of(st.sampled_from(["token", "ref", "notif_token"]), TEXT), TEXT, max_size=5
    )
    return st.one_of(
        anything,
        st.fixed_dictionaries({"token": TEXT, "ref": TEXT}),
        st.builds(lambda ref: {**valid, "ref": ref}, TEXT),
        st.builds(lambda extra: {**valid, **extra}, anything),
        st.builds(lambda extra: {**extra, **valid}, anything),
    )


async def outcome_or_core_error(awaitable: Awaitable[Any]) -> CallbackOutcome | MmoError:
    """The property: a `CallbackOutcome` or one of the core's errors, nothing else."""
    try:
        outcome = await awaitable
    except MmoError as exc:
        return exc
    assert isinstance(outcome, CallbackOutcome), f"not a CallbackOutcome: {outcome!r}"
    return outcome


__all__ = [
    "BAD_AMOUNTS",
    "BOUNDED",
    "DEEP",
    "DEEP_VALUE",
    "EXTREMES",
    "deeply_nested",
    "encode",
    "header_maps",
    "json_bodies",
    "json_values",
    "mutated",
    "outcome_or_core_error",
    "query_strings",
    "set_at",
]
