"""When the demo's incident team stalls, and at which simulated time of day."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from cxpulse.mixin.tiles import human_duration
from cxpulse.sim import params
from cxpulse.sim.model import first_midnight
from cxpulse.sim.params import Slowdown

#: how much slower the incident team works: a stall (a tool outage, the team pulled into
#: an escalation), so almost every ticket of the incident breaches and the page is clear
INCIDENT_FACTOR = 30.0
INCIDENT_CSAT_SHARE = 0.45  # satisfied share of the tickets the incident delayed

#: Faster than real time the simulated hour of day is free to choose, and the demo puts
#: the first incident at this hour (UTC) of its simulated day (see `simulated_span`).
INCIDENT_HOUR = 10
_DAY_MS = 86_400_000
#: At speed 1 the demo first produces this much simulated history at once, so the wall and
#: the KPIs have a day behind them in the first minute instead of an empty screen.
BACKFILL_MS = _DAY_MS


def simulated_span(now_ms: int, duration_ms: int, speed: float,
                   incident: IncidentPlan | None) -> tuple[int, int]:
    """(start, duration) in epoch ms of the simulation the demo produces.

    Faster than real time the simulation starts in the past so that its clock
    reaches the wall clock when it ends (events are never stamped ahead of the
    time they are sent). That fixes the end, not the hour of day at which the
    first incident falls: left to the wall clock (start = now - duration *
    (1 - 1/speed)), an evening demo put it in a simulated night, when a team
    gets well under 1% of a day's tickets an hour, and the burn-rate page's
    minimum of 10 deadlines came only as the stall ended: no page, a demo that
    seemed broken. So the simulation is made longer (by less than a simulated
    day, about 24 real minutes at speed 60) until the first incident starts at
    `INCIDENT_HOUR`:00 UTC of its simulated day. At speed 1 (or slower) the
    simulation is the present and nothing moves."""
    if speed <= 1:
        return now_ms - int(duration_ms * (1 - 1 / speed)), duration_ms
    k = 1 - 1 / speed
    if incident is not None:
        first = now_ms - duration_ms * k + incident.after_ms
        back = (first - INCIDENT_HOUR * 3_600_000) % _DAY_MS  # simulated ms to move it back
        duration_ms += int(back / k)
    return now_ms - int(duration_ms * k), duration_ms


def with_backfill(start_ms: int, duration_ms: int, speed: float,
                  incident: IncidentPlan | None) -> tuple[int, int, int, IncidentPlan | None]:
    """(start, duration, live_ms, incident) once the history is added: at speed 1 (or
    slower) the simulation starts `BACKFILL_MS` earlier, everything before `live_ms` (the
    present) is produced at once, and incidents count from the present, so the first one
    is `--incident-after` away as the user asked. Faster than real time the simulation
    already starts in the past (`simulated_span`) and nothing changes."""
    if speed > 1:
        return start_ms, duration_ms, start_ms, incident
    shifted = None if incident is None else IncidentPlan(
        incident.team, incident.after_ms + BACKFILL_MS, incident.length_ms, incident.every_ms)
    return start_ms - BACKFILL_MS, duration_ms + BACKFILL_MS, start_ms, shifted


@dataclass(frozen=True)
class IncidentPlan:
    """When the simulated team stalls, in simulated time from the simulation's start.

    Why offsets from the start rather than clock times (like the `incident`
    scenario's 09:00): the demo's simulation starts whenever it is run, and an
    incident fixed to a time of day may fall before its start and never
    happen. `every_ms == 0`: a single incident."""

    team: str
    after_ms: int
    length_ms: int
    every_ms: int

    def spans(self, start_ms: int, duration_ms: int) -> list[tuple[int, int]]:
        """(begin, end) epoch ms of every incident inside [start, start + duration)."""
        out: list[tuple[int, int]] = []
        at = self.after_ms
        while at < duration_ms:
            out.append((start_ms + at, start_ms + min(at + self.length_ms, duration_ms)))
            if self.every_ms <= 0:
                break
            at += self.every_ms
        return out

    def slowdowns(self, start_ms: int, duration_ms: int) -> tuple[Slowdown, ...]:
        midnight = first_midnight(start_ms)
        return tuple(
            Slowdown(self.team, begin - midnight, end - begin, factor=INCIDENT_FACTOR,
                     csat_share=INCIDENT_CSAT_SHARE)
            for begin, end in self.spans(start_ms, duration_ms))


def incident_plan(args: argparse.Namespace) -> IncidentPlan | str | None:
    """The `--incident-*` flags as a plan; a string is the one-line usage error."""
    if args.incident_team == "none":
        return None
    if args.incident_team not in params.TEAMS:
        return (f"--incident-team: {args.incident_team!r} is not a team; choose from "
                f"{', '.join(params.TEAMS)} or none")
    if args.incident_every and args.incident_every < args.incident_length:
        return "--incident-every: shorter than --incident-length (incidents would overlap)"
    return IncidentPlan(args.incident_team, args.incident_after, args.incident_length,
                        args.incident_every)


def human(ms: float) -> str:
    """`3h`, `2m 30s`, `45s`: for the console."""
    return human_duration(ms / 1000)


