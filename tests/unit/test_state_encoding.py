"""State values are encoded by msgspec (`cxpulse.core.tickets.dumps`) with exactly the bytes
the standard library's encoder gave, so changelogs written before read and compare the same
(the changelog rewrites a part only when its bytes differ)."""

from __future__ import annotations

import json

from cxpulse.core.tickets import dumps
from hypothesis import given
from hypothesis import strategies as st


def reference(obj: object) -> bytes:
    """The encoder state values were written with before msgspec."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


# What state values hold: str-keyed dicts, lists, ints within 64 bits, bools, None, and
# strings without lone surrogates (decode dead-letters those: `not_utf8`), including
# control characters, quotes, backslashes and non-ASCII text that must be escaped or not.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_same_bytes_as_the_standard_encoder(value: object) -> None:
    assert dumps(value) == reference(value)


def test_escapes_and_key_order() -> None:
    value = {"b": ["\u00e9\n\t\"\\\x01\u2028", 2**63 - 1], "a": {"z": None, "y": True}}
    assert dumps(value) == reference(value)
    assert dumps(value).startswith(b'{"a":{"y":true,"z":null},"b":')
