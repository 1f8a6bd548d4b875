"""What happened to one consumed event: shared by the engine, the evaluation and the shell."""

from __future__ import annotations

from enum import StrEnum

from cxpulse.core.events import SURVEYS, TICKETS

#: The two input roles of a partition (co-partitioned topics).
ROLES = (TICKETS, SURVEYS)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"
