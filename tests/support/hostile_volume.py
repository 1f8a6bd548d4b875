"""Hostile volumes of valid events, and what a worker wrote for them (tests and bench).

The inputs of issue 10 that made one per-partition state value pass the
broker's 1 MB limit (a crash loop: every restart failed the same batch):
thousands of team and agent names in one minute slice, one ticket with
thousands of events, many tickets with many events each. Each generator
returns JSONL lines in event-time order; `cxpulse replay` keys and routes
them like a producer following the contract would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxpulse.core.decode import encode_bytes, parse_ts
from cxpulse.core.events import Author, TicketCreated, TicketMessage

#: After the simulated hour of the integration tests (08:00-09:00).
START = "2026-11-02T09:10:00Z"


def _ms(text: str) -> int:
    ts = parse_ts(text)
    assert isinstance(ts, int)
    return ts


def many_labels(teams: int = 5_000, agents: int = 20_000, start: str = START) -> list[bytes]:
    """`agents` tickets within about 10 minutes, spread over `teams` team names, each
    answered by its own agent: every minute slice holds thousands of names."""
    t0 = _ms(start)
    step = max(1, 500_000 // agents)
    out: list[tuple[int, bytes]] = []
    for i in range(agents):
        ts = t0 + i * step
        tid = f"T-LBL-{i:06d}"
        out.append((ts, encode_bytes(TicketCreated(f"lc-{i}", ts, tid, f"team-{i % teams:05d}",
                                                   "email"))))  # fmt: skip
        reply = TicketMessage(f"lr-{i}", ts + 30_000, tid, Author.AGENT, f"agent-{i:06d}")
        out.append((ts + 30_000, encode_bytes(reply)))
    out.sort(key=lambda x: x[0])
    return [line for _, line in out]


def long_tickets(
    tickets: int = 1, events: int = 20_000, start: str = "2026-11-02T09:20:00Z", step_ms: int = 100
) -> Iterator[bytes]:
    """`tickets` tickets of `events` events each (created, then customer and agent
    messages in turn), interleaved in event-time order."""
    t0 = _ms(start)
    for j in range(events):
        for i in range(tickets):
            ts = t0 + (j * tickets + i) * step_ms
            tid = f"T-LONG-{i:05d}"
            if j == 0:
                yield encode_bytes(TicketCreated(f"ln-{i}-0", ts, tid, f"long-{i % 7}", "chat"))
            elif j % 2:
                yield encode_bytes(TicketMessage(f"ln-{i}-{j}", ts, tid, Author.CUSTOMER))
            else:
                yield encode_bytes(
                    TicketMessage(f"ln-{i}-{j}", ts, tid, Author.AGENT, f"agent-{i % 50}")
                )


def write_lines(path: Path, lines: Iterable[bytes]) -> Path:
    with path.open("wb") as f:
        for line in lines:
            f.write(line + b"\n")
    return path


@dataclass
class ChangelogStats:
    records: int
    bytes: int  # keys + values
    largest: int  # largest key + value
    part_records: int  # records of split values' parts


def changelog_stats(records: Iterable[Any]) -> ChangelogStats:
    """Sizes of the changelog records read back (`read_topic`)."""
    n = total = largest = parts = 0
    for r in records:
        size = len(r.key or b"") + len(r.value or b"")
        n += 1
        total += size
        largest = max(largest, size)
        key = r.key or b""
        if b"/x/" in key or b"/y/" in key:  # parts by index (format 1) or by digest (2)
            parts += 1
    return ChangelogStats(n, total, largest, parts)


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (VmHWM), read before it exits."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")
