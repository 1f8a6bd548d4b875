"""DDSketch: the stated relative-error bound, exact merge and subtraction."""

from __future__ import annotations

import math

from cxpulse.core.sketch import LogMapping, Sketch
from hypothesis import given
from hypothesis import strategies as st

M = LogMapping(0.01)
values = st.lists(st.integers(0, 10 * 86_400_000), min_size=1, max_size=300)


@given(values, st.floats(0.0, 1.0))
def test_quantile_within_relative_accuracy(xs: list[int], q: float) -> None:
    s = Sketch()
    for x in xs:
        s.add(x, M)
    exact = sorted(xs)[math.floor(q * (len(xs) - 1))]
    (got,) = s.quantiles([q], M)
    assert got is not None
    assert abs(got - exact) <= 0.01 * exact * (1 + 1e-9)


@given(values, values)
def test_merge_equals_union_and_subtract_undoes_it(a: list[int], b: list[int]) -> None:
    sa, sb, su = Sketch(), Sketch(), Sketch()
    for x in a:
        sa.add(x, M)
        su.add(x, M)
    for x in b:
        sb.add(x, M)
        su.add(x, M)
    merged = sa.copy()
    merged.merge(sb)
    assert merged.to_json() == su.to_json()
    merged.merge(sb, -1)
    assert merged.to_json() == sa.to_json()


@given(values)
def test_order_insensitive_and_json_round_trip(xs: list[int]) -> None:
    s1, s2 = Sketch(), Sketch()
    for x in xs:
        s1.add(x, M)
    for x in reversed(xs):
        s2.add(x, M)
    assert s1.to_json() == s2.to_json()
    assert Sketch.from_json(s1.to_json()).to_json() == s1.to_json()


def test_retraction_to_empty() -> None:
    s = Sketch()
    s.add(1500, M)
    s.add(0, M)
    s.add(1500, M, -1)
    s.add(0, M, -1)
    assert s.is_empty() and s.quantiles([0.5], M) == [None]


def test_known_bucket_value() -> None:
    # gamma = 1.01 / 0.99; 1000 ms lands in bucket ceil(ln 1000 / ln gamma) = 346,
    # represented by 2 gamma^346 / (gamma + 1), within 1 % of 1000.
    s = Sketch()
    s.add(1000, M)
    assert s.bins == {346: 1}
    (v,) = s.quantiles([0.5], M)
    assert v is not None and abs(v - 1000) <= 10
