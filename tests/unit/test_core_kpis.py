"""Interval formulas against values worked by hand."""

from __future__ import annotations

import pytest
from cxpulse.core.events import SurveyKind
from cxpulse.core.kpis import nps_interval, ratio, survey_stats, wilson


def test_wilson_known_values() -> None:
    # 8 / 10, z = 1.96: centre (0.8 + 0.19207) / 1.38415 = 0.71679,
    # half = 1.96 sqrt(0.016 + 0.0096) / 1.38415 = 0.22656 -> [0.4902, 0.9433]
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(0, 5)  # type: ignore[misc]
    assert low == 0.0 and 0 < high < 1
    low, high = wilson(5, 5)  # type: ignore[misc]
    assert high == 1.0 and 0 < low < 1


def test_nps_interval_by_hand() -> None:
    # p = 0.6, d = 0.2, n = 50: NPS 40, Var = 1e4 (0.8 - 0.16) / 50 = 128,
    # sd 11.3137, z sd = 22.174 -> [17.826, 62.174]
    low, high = nps_interval(30, 10, 50)  # type: ignore[misc]
    assert low == pytest.approx(17.826, abs=1e-3)
    assert high == pytest.approx(62.174, abs=1e-3)


def test_ratio_of_nothing_is_undefined() -> None:
    assert ratio(0, 0) is None
    assert ratio(0, 3) == 0.0


def test_survey_stats_ignore_out_of_scale_slots() -> None:
    counts = [0] * 11
    counts[5] = 3
    counts[1] = 1
    s = survey_stats(SurveyKind.CSAT, counts, 30)
    assert (s.value, s.mean, s.n) == (0.75, 4.0, 4)  # (15 + 1) / 4
