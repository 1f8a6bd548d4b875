"""`cxpulse demo` (placeholder until written below)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    del sub
