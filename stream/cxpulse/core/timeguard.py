"""Which event times may move stream time: the bound on how far ahead or how old.

Stream time is the largest event time accepted, and it is persisted. One event
stamped next year would otherwise push every window of its partition a year
ahead (later real events all late) and stay there across restarts; one
stamped in year 0001 would open a partition's history at year 1. So an event
time is checked against independent evidence of *when* the message arrived:

* live, the Kafka record timestamp (set by the producer when it sent the
  message; deterministic when a message is re-read after a crash);
* in `cxpulse report`, the time the report runs (`--received-at` to pin it).

Rules (reason codes go to the dead-letter topic and the deadletter counters):

* `timestamp_ahead`: `ts` > received + `max_event_ahead_ms` (default 1 h,
  generous for clock skew between helpdesk and Kafka);
* `timestamp_too_old`: `ts` before 2000-01-01T00:00:00Z, the contract's floor
  (no helpdesk event predates it; replays of old data stay possible).
"""

from __future__ import annotations

TS_AHEAD = "timestamp_ahead"
TS_TOO_OLD = "timestamp_too_old"
TIME_REASON_CODES = (TS_AHEAD, TS_TOO_OLD)
#: 2000-01-01T00:00:00Z in epoch ms.
FLOOR_MS = 946_684_800_000
DEFAULT_MAX_AHEAD_MS = 3_600_000


def time_rejection(ts_ms: int, received_ms: int, max_ahead_ms: int) -> tuple[str, str] | None:
    """(code, message) when `ts_ms` may not enter stream time, else None.

    Messages name the bound, never the event's content."""
    if ts_ms < FLOOR_MS:
        return TS_TOO_OLD, "ts is before 2000-01-01T00:00:00Z"
    if ts_ms > received_ms + max_ahead_ms:
        ahead_s = (ts_ms - received_ms) // 1000
        return (
            TS_AHEAD,
            f"ts is {ahead_s} s after the message was received (at most "
            f"{max_ahead_ms // 1000} s allowed)",
        )
    return None
