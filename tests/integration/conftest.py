"""Fixtures of the worker tests."""

from __future__ import annotations

import pytest

#: Both worker runtimes keep the same contract, so every worker test runs on both.
RUNTIMES = ("direct", "faust")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    """`direct` (the default aiokafka loop) or `faust` (the faust-streaming agent)."""
    return str(request.param)
