"""Prometheus alert rules generated from the targets file.

Why generated: the same target must drive in-stream SLA counting, alerts and
dashboard thresholds; a hand-edited rule file drifts the first time someone
changes a target. `cxpulse generate` writes `alerts/cxpulse-rules.yml`, and a
test fails while the checked-in file differs from what this module produces.

Paging philosophy (on-call judges us by "pages at the right time and not
otherwise"; docs/alerts.md has the design and the measured figures):

* Two pages per team, both about the FRT promise, which is the only KPI that
  can go badly wrong within minutes: a *predictive* page when the team's queue
  stalls (unanswered tickets far above what the team and the current demand
  usually have, with tickets already half-way to their target), which fires
  before any ticket breaches; and the SRE-workbook multiwindow burn-rate page
  as the backstop for what the queue signal cannot see.
* Chronic misses and survey KPIs are tickets for team leads: a minimum sample,
  a 24 h window, firing only when the miss is statistically clear (the 95 %
  interval is below target) and holding until the value is back at target
  (hysteresis through `ALERTS`) plus `keep_firing_for`.
* One owner per alert: no rule matches `team="all"` (the organisation is the
  sum of its teams, it would page twice); `team="unknown"` is a real owner
  routed explicitly in alerts/alertmanager.yml.
* Every KPI alert has `keep_firing_for`: a KPI source that dies makes its series
  vanish, which must not read as "resolved"; `CxpulseKpisUnavailable` fires
  (and inhibits KPI alerts) well before `keep_firing_for` runs out.
* KPI series come from 1 or 2 exporter replicas that differ only by `instance`;
  every selector goes through `dedup` (the ONE place that drops it).
"""

from __future__ import annotations

import math
from typing import Any

from cxpulse import metric_names as m
from cxpulse.core.config import FORECAST_PACE_MS, FORECAST_SILENCE_EVIDENCE
from cxpulse.core.durations import parse_duration_ms
from cxpulse.core.targets import BurnRate, Targets
from cxpulse.mixin.promql import one_replica

KPI_DELAY = m.KPI_DELAY
LATE_EVENTS = m.EVENTS_TOTAL + '{outcome="late"}'
WORKER_JOB = "cxpulse-worker"
EXPORTER_JOB = "cxpulse-exporter"

#: The KPI window whose series exist for every team active in the last day.
LONGEST_WINDOW = "24h"
# Per-team series of the roll-up over the other ticket dimensions; never the org.
NOT_ORG = 'team!="all"'
TEAM_TICKETS = f'channel="all",priority="all",{NOT_ORG}'
TEAM_SURVEYS = f'channel="all",agent="all",touchpoint="all",{NOT_ORG}'

#: Component label: Alertmanager inhibits `kpi` alerts only when no KPI source is up.
KPI, PIPELINE = "kpi", "pipeline"


def dedup(selector: str, func: str | None = None, window: str | None = None,
          offset: str | None = None) -> str:
    """A KPI selector (optionally `func(selector[window] offset o)`) with the exporter
    replicas collapsed (`cxpulse.mixin.promql.one_replica`).

    Replicas serve identical values, so `max` is exact; for counters the
    function (`increase`, `rate`) is applied per replica first, then deduplicated.
    The rules' form of the one replica helper the dashboards use too."""
    inner = selector
    if func is not None:
        rng = f"{selector}[{window}]" + (f" offset {offset}" if offset else "")
        inner = f"{func}({rng})"
    return one_replica(inner)


def _alert(
    targets: Targets, name: str, expr: str, for_: str, severity: str, component: str,
    summary: str, description: str, keep_firing_for: str | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr, "for": for_}
    if keep_firing_for:
        rule["keep_firing_for"] = keep_firing_for
    rule["labels"] = {"severity": severity, "component": component}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{targets.runbook_base_url}#{name.lower()}",
    }
    return rule


def _team_clause(targets: Targets, kpi: str) -> tuple[str, list[str]]:
    """Teams with their own target get their own rule; the default rule excludes them."""
    overridden = sorted(t for t, o in targets.teams.items() if kpi in o)
    if not overridden:
        return "", []
    return ',team!~"' + "|".join(overridden) + '"', overridden


def _held(name: str, fire: str, hold: str) -> str:
    """Hysteresis: fire on `fire`; once firing, stay while `hold` is true."""
    return (
        f"(\n{fire}\n)\nor\n(\n{hold}\n"
        f'and on (team) ALERTS{{alertname="{name}",alertstate="firing"}}\n)'
    )


def _score_alerts(targets: Targets) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    pct = "{{ $value | humanizePercentage }}"
    score = '{{ $value | printf "%.0f" }}'
    spec = {
        "csat": ("CSAT", m.CSAT, m.SURVEY_RESPONSES["csat"], TEAM_SURVEYS, pct),
        "ces": ("CES", m.CES, m.SURVEY_RESPONSES["ces"], TEAM_SURVEYS, pct),
        "nps": ("NPS", m.NPS, m.SURVEY_RESPONSES["nps"], TEAM_SURVEYS, score),
        "fcr": ("FCR", m.FCR, m.FIRST_SOLVES, TEAM_TICKETS, pct),
    }
    for kpi, (title, value_metric, sample_metric, rollup, shown) in spec.items():
        window = targets.scores[kpi].window
        exclude, overridden = _team_clause(targets, kpi)
        groups = [(targets.score_for(kpi), exclude, "")]
        groups += [(targets.score_for(kpi, t), f',team="{t}"', t) for t in overridden]
        for target, team_sel, team in groups:
            name = f"Cxpulse{title}BelowTarget" + (f"_{team}" if team else "")
            sel = f'{{window="{window}",{rollup}{team_sel}}}'
            value = dedup(value_metric + sel)
            n = dedup(sample_metric + sel)
            if kpi == "fcr":
                # No interval is exported for FCR: the normal approximation of a share's.
                upper = f"({value} + 1.96 * sqrt({value} * (1 - {value}) / {n}))"
            else:
                upper = dedup(m.SURVEY_CI_UPPER[kpi] + sel)
            enough = f"{n} >= {targets.min_sample}"
            fire = f"{value} < {target:g}\nand {upper} < {target:g}\nand {enough}"
            hold = f"{value} < {target:g}\nand {enough}"
            unit = "" if kpi == "nps" else " (ratio)"
            rules.append(_alert(
                targets, name, _held(name, fire, hold), "30m", "ticket", KPI,
                f"{title} of team {{{{ $labels.team }}}} is {shown}, below target",
                f"{title}{unit} over the last {window} is below its target {target:g}, "
                f"clearly (its 95 % interval is below it too), with at least "
                f"{targets.min_sample} samples. It clears when the value is back at target.",
                targets.paging.ticket_keep_firing_for,
            ))
    return rules


def _response_rate_alerts(targets: Targets) -> list[dict[str, Any]]:
    """(opt-in: `response_rate_floor` under csat / nps / ces) responses per survey offered
    below the floor, per team, over the KPI's window, with at least `min_sample` offers.

    A ticket, never a page: nobody waits on a survey; what suffers is the survey
    KPI's own evidence (fewer answers, and the unhappy customers who do not answer
    are the ones it misses)."""
    rules: list[dict[str, Any]] = []
    for kpi, title in (("csat", "CSAT"), ("nps", "NPS"), ("ces", "CES")):
        spec = targets.scores[kpi]
        floor = spec.response_rate_floor
        if floor is None:
            continue
        name = f"Cxpulse{title}ResponseRateLow"
        sel = f'{{window="{spec.window}",{TEAM_SURVEYS}}}'
        rate = dedup(m.SURVEY_RESPONSE_RATE[kpi] + sel)
        offers = dedup(m.SURVEY_OFFERS[kpi] + sel)
        rules.append(_alert(
            targets, name, f"{rate} < {floor:g}\nand {offers} >= {targets.min_sample}", "1h",
            "ticket", KPI,
            f"{title} response rate of team {{{{ $labels.team }}}} is "
            "{{ $value | humanizePercentage }}, below its floor",
            f"Responses per {title} survey offered over the last {spec.window} are under "
            f"{floor:g}, with at least {targets.min_sample} offers: the {title} figure rests "
            "on fewer answers than it should. It clears when the rate is back at the floor.",
            targets.paging.ticket_keep_firing_for,
        ))
    return rules


#: The collapse alerts: CSAT pages (customers are being hurt now, and the team can act
#: today); CES and FCR are tickets (process measures a team lead fixes over days).
COLLAPSE_SEVERITY = {"csat": "page", "ces": "ticket", "fcr": "ticket"}
COLLAPSE_TITLES = {"csat": "CSAT", "ces": "CES", "fcr": "FCR"}


def collapse_alert_name(kpi: str) -> str:
    """`CxpulseCSATCollapse` for `csat`: one name for the rule and for the wall's collapse
    tile, which stays red while the alert is open (it holds until the evidence is 0)."""
    return f"Cxpulse{COLLAPSE_TITLES[kpi]}Collapse"
#: A CSAT collapse within this long of an FRT page of the same team is that incident's.
CAUSE_LOOKBACK = "1d"


def _collapse_alerts(targets: Targets) -> list[dict[str, Any]]:
    """Sequential evidence of a collapse (cxpulse.core.evidence): open when the team's
    CUSUM reaches its threshold (the exported ratio is 1), hold until good answers have
    brought it back to 0 (as much evidence of recovery as opened it)."""
    rules: list[dict[str, Any]] = []
    for spec in targets.evidence():
        kpi, title = spec.kpi, COLLAPSE_TITLES[spec.kpi]
        severity = COLLAPSE_SEVERITY[kpi]
        name = collapse_alert_name(kpi)
        evidence = dedup(f"{m.COLLAPSE_EVIDENCE[kpi]}{{{NOT_ORG}}}")
        overrides = ", ".join(f"{t} {v:g}" for t, v in sorted(spec.team_targets.items()))
        what = "answers" if kpi != "fcr" else "first solves"
        expr = _held(name, f"{evidence} >= 1", f"{evidence} > 0")
        if severity == "page":
            # One page per incident: a team paged for its FRT in the last day has its
            # cause paged already; the CSAT of its delayed tickets arrives after the
            # recovery and would hold a second page open for hours (the ticket stays).
            # A known problem: a team whose CSAT ticket (24 h below target) was already open
            # when the evidence completed has a chronic miss, not a collapse (within a day
            # the two look alike: docs/alerts.md); once paged, the ticket changes nothing.
            ticket = f"Cxpulse{title}BelowTarget"
            known = (f'ALERTS{{alertname=~"{ticket}(_.+)?",alertstate="firing"}}\n'
                     f'unless on (team) ALERTS{{alertname="{name}",alertstate="firing"}}')
            expr = (f"(\n{expr}\n)\nunless on (team)\nmax_over_time(ALERTS{{"
                    f'alertname=~"CxpulseFrt.+",alertstate="firing",severity="page"}}'
                    f"[{CAUSE_LOOKBACK}])\nunless on (team)\n(\n{known}\n)")
        rules.append(_alert(
            targets, name, expr, "0s", severity,
            KPI,
            f"{title} of team {{{{ $labels.team }}}} has collapsed (the evidence is sufficient)",
            f"The team's recent {what} are far more likely if its {title} fell to "
            f"{spec.collapse:.0%} than if it were at its target {spec.target:.0%}"
            + (f" (per team: {overrides})" if overrides else "")
            + f": a sequential test on each of them (CUSUM), set so that a team exactly at "
            f"its target gets at most one false alert per {spec.false_alarm_days:g} days at "
            f"its volume. It clears when as many good {what} have come in again."
            + (" No page within a day of an FRT page of the same team (its cause, already "
               "paged), nor for a team whose CSAT ticket was already open (a known, chronic "
               "miss)." if severity == "page" else ""),
            targets.paging.keep_firing_for if severity == "page"
            else targets.paging.ticket_keep_firing_for,
        ))
    return rules


def _per_team_increase(counter: str, window: str) -> str:
    return f"sum by (team) ({dedup(counter + '{' + NOT_ORG + '}', 'increase', window)})"


def _ratio(window: str) -> str:
    """Share of a team's FRT deadlines in the window that were breached."""
    breached = _per_team_increase(m.SLA_BREACHED_TOTAL, window)
    met = _per_team_increase(m.SLA_MET_TOTAL, window)
    return f"({breached}\n  / clamp_min({breached} + {met}, 1))"


def _deadlines(window: str) -> str:
    breached = _per_team_increase(m.SLA_BREACHED_TOTAL, window)
    met = _per_team_increase(m.SLA_MET_TOTAL, window)
    return f"({breached} + {met})"


def _at_risk_alert(targets: Targets) -> dict[str, Any]:
    a = targets.paging.at_risk
    sel = f"{{{TEAM_TICKETS}}}"
    unanswered = dedup(m.UNANSWERED + sel)
    usual = dedup(m.UNANSWERED + sel, "avg_over_time", a.baseline, a.baseline_offset)
    created = dedup(f'{m.CREATED}{{window="15m",{TEAM_TICKETS}}}')
    # At risk, or already past the deadline while the team does not keep pace with them:
    # the band ends at the deadline, and a queue whose every ticket has breached is the
    # worst case, not a healthy one (issue 20); but two old overdue tickets while the team
    # answers a burst of new ones (7 first replies in 15 min) are slow tickets, which paged
    # a healthy 720-ticket-a-day team for 3.5 min (docs/alerts.md "Measured").
    band = dedup(f'{m.AT_RISK}{{threshold="{a.threshold:g}",{TEAM_TICKETS}}}')
    outpaced = f"{_overdue()} > on (team) {_replied()}"
    at_risk = f"(\n{band} >= {a.min_at_risk}\nor on (team)\n{outpaced}\n)"
    explained = a.usual_wait_seconds / 900.0
    stalled = (
        f"{unanswered} >= {a.min_unanswered}\n"
        f"and on (team) {unanswered}\n"
        f"  > on (team) {a.ratio * explained:g} * {created}\n"
        f"and on (team) {at_risk}"
    )
    # The usual level is only known once Prometheus holds the team's series from the start
    # of the baseline window: after a cold start (a new deployment, a lost TSDB) the
    # average covers a few minutes of a quiet start, `min_usual` becomes the bar, and a
    # healthy morning ramp paged (docs/alerts.md, "A false page on a healthy morning").
    history = _history(_sum_durations(a.baseline, a.baseline_offset))
    # Once firing, the team's own recent level no longer counts: during a long
    # stall it rises to the stalled level, which must not resolve the page. It closes when
    # the team has caught up: catch_up_replies first replies in 15 min per overdue ticket
    # (the stall page's release) and at least as many as tickets arrived (the queue
    # shrinks). After a big team's stall the queue stays long while the team works it off
    # at full pace, and holding on the queue alone kept the page open 16-17 min after
    # recovery at 5,000 tickets a day; the release without the arrivals term closed a
    # decline's page for 5 min while its queue still grew (a flap; docs/alerts.md).
    replied = _replied()
    caught_up = (f"{_overdue()} >= 1\nand on (team) {targets.paging.stall.catch_up_replies} * "
                 f"{_overdue()} <= on (team) {replied}\nand on (team) {replied} >= on (team) "
                 f"{created}")
    hold = f"{stalled}\nunless on (team) (\n{caught_up}\n)"
    # To open, the queue must also be growing: the team's first replies of the last 15
    # minutes fewer than `max_reply_share` of the tickets created in them. A big team's
    # slow morning holds the same queue against the same arrivals as a team that has
    # just slowed down (14 unanswered, 21 created in 15 min: 5,000 tickets a day, and
    # the 2,000-a-day incident 7 min after its onset), but it answers about as many as
    # arrive (0.81-1.35 of them on the minutes that paged) while the slowed team's
    # replies fall (0.47-0.57): docs/alerts.md "The queue must grow".
    growing = (f"({_replies()} or on (team) 0 * {created})\n"
               f"  < on (team) {a.max_reply_share:g} * {created}")
    unusual = (
        f"{stalled}\nand on (team) {unanswered}\n"
        f"  > on (team) {a.ratio:g} * clamp_min({usual}, {a.min_usual:g})\n"
        f"and on (team) {growing}\n"
        f"and on (team) {history}"
    )
    name = "CxpulseFrtAtRisk"
    return _alert(
        targets, name, _held(name, unusual, hold), a.for_, "page", KPI,
        "Team {{ $labels.team }}'s queue is stalling: {{ $value }} tickets wait for a "
        "first reply",
        f"Unanswered tickets are {a.ratio:g}x the team's usual level (the "
        f"{_prose(a.baseline)} ending {_prose(a.baseline_offset)} ago) and {a.ratio:g}x "
        "what the tickets created in the "
        f"last 15 minutes explain, the team's first replies in them fewer than "
        f"{a.max_reply_share:.0%} of those tickets (the queue grows), with tickets already "
        f"past {a.threshold:.0%} of their "
        "FRT target (or past it, more of them than the team's first replies in 15 minutes): "
        "at this pace they breach within minutes. It stays open while the queue is that long "
        "until the team has caught up with its overdue tickets "
        f"({targets.paging.stall.catch_up_replies} first replies in 15 minutes per overdue "
        "ticket, and at least as many as tickets arrived).",
        targets.paging.keep_firing_for,
    )


def _history(since: str) -> str:
    """Per team: Prometheus held the team's series `since` ago (a team active in the last
    day always has its 24 h window's series), i.e. not a cold start within that span."""
    return dedup(f'{m.CREATED}{{window="{LONGEST_WINDOW}",{TEAM_TICKETS}}}', "last_over_time",
                 "5m", since)


def _sum_durations(*durations: str) -> str:
    """`1h` + `15m` -> `75m` (a PromQL offset)."""
    return f"{sum(parse_duration_ms(d) for d in durations) // 60_000}m"


def _forecast_alert(targets: Targets) -> dict[str, Any]:
    """The queue's own forecast (cxpulse.core.evaluation.backlog.forecast_breaches): at
    least `min_tickets` unanswered tickets will pass their deadline at the team's recent
    pace (`CoreConfig.forecast_pace_ms`: over 2, 5 or 10 minutes, as its volume supports;
    0 once its silence is evidence, `forecast_silence_evidence`), whatever order it
    answers them in. Holds while one will, or while
    tickets wait past their deadline and the team has not caught up (the stall page's
    release), so a decline whose forecast dips for a minute stays one incident."""
    f = targets.paging.forecast
    forecast = dedup(f"{m.FORECAST_BREACHES}{{{TEAM_TICKETS}}}")
    # The pace's span is chosen from the replies of the last 15 minutes: after a cold start
    # the windows hold only a few minutes of replies, and the forecast would count the rest
    # as never coming.
    fire = f"{forecast} >= {f.min_tickets}\nand on (team) {_history('15m')}"
    hold = f"(\n{forecast} >= 1\nor\n{_behind(targets)}\n)"
    name = "CxpulseFrtBreachForecast"
    return _alert(
        targets, name, _held(name, fire, hold), f.for_, "page", KPI,
        "Team {{ $labels.team }} will miss the first-reply deadline of at least "
        "{{ $value }} waiting tickets at its current pace",
        f"At its recent pace of first replies (over the last {_pace_spans()}: the shortest "
        "span in which its replies of the last 15 minutes expect 10, the longest for a "
        "small team; nothing once its silence since its last first reply would be a chance "
        f"of 1 in {math.exp(FORECAST_SILENCE_EVIDENCE):,.0f} for a team still answering at "
        "its pace of the last hour) the team "
        f"cannot reach at least {f.min_tickets} of its waiting "
        "tickets (those past a quarter of their target) before their "
        f"{human_minutes(targets.frt.target_seconds)} first-reply deadline, whichever it "
        "answers first: they will breach unless the pace rises now. It stays open while "
        "one still will, or while tickets wait past their deadline and the team has not "
        f"caught up ({targets.paging.stall.catch_up_replies} first replies in 15 minutes per "
        "overdue ticket).",
        targets.paging.keep_firing_for,
    )


def _pace_spans() -> str:
    """`2, 5 or 10 min`: the breach forecast's pace spans as a team lead reads them."""
    spans = [human_minutes(ms / 1000) for ms in FORECAST_PACE_MS]
    return ", ".join(spans[:-1]) + " or " + spans[-1] if len(spans) > 1 else spans[0]


def _overdue() -> str:
    """Per team: tickets past their FRT deadline with no public reply yet."""
    return dedup(f"{m.BREACHED_UNANSWERED}{{{TEAM_TICKETS}}}")


def _replies() -> str:
    """Per team: first replies in the last 15 minutes (no reply in the window: no series)."""
    return dedup(f'{m.FRT_COUNT}{{window="15m",{TEAM_TICKETS}}}')


def _replied() -> str:
    """`_replies()`, 0 for a team without the series while it has overdue tickets."""
    return f"({_replies()} or on (team) 0 * {_overdue()})"


def _behind(targets: Targets) -> str:
    """Per team: tickets wait past their deadline and the team has not caught up
    (fewer than `catch_up_replies` first replies in 15 minutes per overdue ticket)."""
    overdue = _overdue()
    return (f"{overdue} >= 1\nand on (team) {targets.paging.stall.catch_up_replies} * "
            f"{overdue}\n  > on (team) {_replied()}")


def _stall_alert(targets: Targets) -> dict[str, Any]:
    s = targets.paging.stall
    overdue = _overdue()
    replies = _replies()
    per_reply = "" if s.overdue_per_reply == 1 else f"{s.overdue_per_reply} * "
    behind = f"{overdue}\n  > on (team) {per_reply}{_replied()}"
    arrivals = dedup(f'{m.CREATED}{{window="15m",{TEAM_TICKETS}}}')
    silent = (f"{overdue} >= 1\nand on (team) {arrivals} >= {s.silent_min_arrivals}\n"
              f"unless on (team) {replies} > 0")
    # A thin shift: one overdue ticket, a second customer waiting past the quiet band (the
    # overdue one counts), not one first reply in 15 minutes, and few arrivals in the hour
    # (a day shift's lull is answered in time; docs/alerts.md measures both).
    band = dedup(f'{m.AT_RISK}{{threshold="{s.quiet_band:g}",{TEAM_TICKETS}}}')
    hour = dedup(f'{m.CREATED}{{window="1h",{TEAM_TICKETS}}}')
    quiet = (f"{overdue} >= 1\nand on (team) ({band} + ignoring (threshold) {overdue})"
             f" >= {s.quiet_min_waiting}\nunless on (team) {replies} > 0\n"
             f"unless on (team) {hour} > {s.quiet_max_arrivals}")
    fire = f"{overdue} >= {s.min_breached}\nand on (team) {behind}\nor\n{silent}\nor\n{quiet}"
    # Once open it holds while any ticket waits past its deadline and the team has not
    # caught up (catch_up_replies first replies per overdue ticket): a stall with no new
    # deadlines is still a stall, and a trickle of replies in a decline does not flap it.
    hold = _behind(targets)
    name = "CxpulseFrtStalled"
    return _alert(
        targets, name, _held(name, fire, hold), s.for_, "page", KPI,
        "Team {{ $labels.team }} has stopped answering: {{ $value }} tickets are past "
        "their first-reply deadline",
        f"At least {s.min_breached} of the team's tickets are past their first-response "
        f"deadline with no reply, more than {s.overdue_per_reply} per first reply the team "
        "sent in the last 15 minutes; or one is, and "
        f"{s.silent_min_arrivals} or more tickets arrived in the last "
        "15 minutes without the team sending a single first reply; or (a thin shift, at most "
        f"{s.quiet_max_arrivals} tickets in the last hour) one is, while "
        f"{s.quiet_min_waiting} or more tickets wait past {s.quiet_band:.0%} of their target "
        "(it included) and the team sent no first reply in 15 minutes. It stays open while "
        "tickets wait past their deadline unanswered and closes once the team has caught up "
        f"({s.catch_up_replies} first replies in 15 minutes per overdue ticket) or answered "
        "them all.",
        targets.paging.keep_firing_for,
    )


def _burn_alert(targets: Targets, burn: BurnRate) -> dict[str, Any]:
    """Multiwindow burn rate (SRE workbook); the short window needs `min_count_short`
    deadlines to open the alert, and an open page holds through a short window without
    deadlines while tickets still wait past theirs (a stalled night has no new deadlines)."""
    frt = targets.frt
    threshold = burn.factor * (1.0 - frt.objective)
    page = burn.severity == "page"
    long_burn = (
        f"{_ratio(burn.long)} > {threshold:g}\nand\n{_deadlines(burn.long)} >= {frt.min_count}"
    )
    short_burn = f"{_ratio(burn.short)} > {threshold:g}"
    enough = f"{_deadlines(burn.short)} >= {frt.min_count_short}"
    fire = f"{long_burn}\nand\n{short_burn}\nand\n{enough}"
    name = f"CxpulseFrtSlaBurnRate{burn.long}"
    if page:
        quiet = f"{_deadlines(burn.short)} < {frt.min_count_short}"
        hold = (f"{long_burn}\nand\n(\n{short_burn}\nor\n({quiet}\nand on (team) "
                f"{_overdue()} >= 1)\n)")
        expr = _held(name, fire, hold)
    else:
        expr = fire
    return _alert(
        targets, name, expr,
        "2m" if page else "15m", burn.severity, KPI,
        f"Team {{{{ $labels.team }}}} burns its FRT SLA budget {burn.factor:g}x too fast",
        f"More than {threshold:.0%} of the team's tickets breached the "
        f"{human_minutes(frt.target_seconds)} first-response target over both the last "
        f"{_prose(burn.long)} and the last {_prose(burn.short)} (objective "
        f"{frt.objective:.0%}, at least {frt.min_count} deadlines, {frt.min_count_short} in "
        f"the last {_prose(burn.short)}).",
        targets.paging.keep_firing_for if page else targets.paging.ticket_keep_firing_for,
    )


def _prose(window: str) -> str:
    """A Prometheus duration of targets.yaml (`1h`, `15m`) as `human_minutes` writes it."""
    return human_minutes(parse_duration_ms(window) / 1000)


def human_minutes(seconds: float) -> str:
    """Durations as a team lead reads them: `15 min`, `1 h`, `90 s`."""
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _frt_alerts(targets: Targets) -> list[dict[str, Any]]:
    frt = targets.frt
    q = f"{frt.quantile * 100:g}"
    rules = [_at_risk_alert(targets), _forecast_alert(targets), _stall_alert(targets)]
    for burn in frt.burn_rates:
        rules.append(_burn_alert(targets, burn))
    # Chronic slowness: the p-quantile over a long window, a ticket for the team lead.
    cases: list[tuple[str, float, str]] = [
        (f'window="{frt.ticket_window}",{TEAM_TICKETS}', frt.target_seconds, "")
    ]
    for prio, secs in sorted(frt.by_priority.items()):
        cases.append(
            (f'window="{frt.ticket_window}",channel="all",priority="{prio}",{NOT_ORG}', secs, prio)
        )
    for sel, target, prio in cases:
        name = "CxpulseFirstResponseTimeHigh" + (f"_{prio}" if prio else "")
        value = dedup(f'{m.FRT}{{{sel},percentile="{q}"}}')
        n = dedup(f"{m.FRT_COUNT}{{{sel}}}")
        above = f"{value} > {target:g}\nand ignoring (percentile) {n} >= {targets.min_sample}"
        rules.append(_alert(
            targets, name, above, "1h", "ticket", KPI,
            f"p{q} first response time of team {{{{ $labels.team }}}} over "
            f"{frt.ticket_window} is {{{{ $value | humanizeDuration }}}}",
            f"p{q} FRT over the last {frt.ticket_window} exceeds the {human_minutes(target)} "
            "target "
            f"(at least {targets.min_sample} first responses): a staffing or process "
            "problem for the team lead, not an emergency.",
            targets.paging.ticket_keep_firing_for,
        ))
    return rules


def _pipeline_alerts(targets: Targets) -> list[dict[str, Any]]:
    p = targets.pipeline
    exporters = f'up{{job="{EXPORTER_JOB}"}}'
    return [
        _alert(targets, "CxpulseWatchdog", "vector(1)", "0s", "none", PIPELINE,
               "Always firing: proves the alerting pipeline delivers",
               "Routed to a dead man's switch: if it stops arriving, Prometheus, "
               "Alertmanager or the route between them is down and no page can arrive."),
        _alert(targets, "CxpulseWorkerDown", f'up{{job="{WORKER_JOB}"}} == 0', "1m", "page",
               PIPELINE, "cxpulse worker {{ $labels.instance }} is down",
               "Prometheus cannot scrape the worker: its partitions are not processed until "
               "it restarts or the group rebalances; KPIs freeze at their last value."),
        _alert(targets, "CxpulseKafkaAuthFailing",
               f"{m.KAFKA_AUTH_FAILING} == 1", "1m", "page", PIPELINE,
               "Kafka refuses the credentials of {{ $labels.job }} {{ $labels.instance }}",
               "The broker refuses the SASL credentials or TLS of a worker or exporter (a "
               "password rotated or a user deleted on the broker, a changed certificate): it "
               "cannot reconnect and exits 77 after auth_failure_exit_after (default 5m), so "
               "KPIs stop. Give it the current credentials and restart it."),
        _alert(targets, "CxpulseKpisUnavailable", f"absent({exporters} == 1)", "1m", "page",
               PIPELINE, "No cxpulse exporter is up: every KPI alert is blind",
               "No replica of the KPI exporter can be scraped. KPI alerts keep their state "
               "(keep_firing_for) and are inhibited while this fires, so none sends a false "
               "RESOLVED."),
        _alert(targets, "CxpulseExporterDown", f"{exporters} == 0", "5m", "ticket", PIPELINE,
               "cxpulse exporter replica {{ $labels.instance }} is down",
               "One KPI exporter replica cannot be scraped; another still serves the KPIs "
               "(CxpulseKpisUnavailable pages when none does)."),
        _alert(targets, "CxpulseKpiDelayHigh",
               f"{dedup(KPI_DELAY)} > {p.max_kpi_delay_seconds:g}", "5m", "page", PIPELINE,
               "cxpulse KPIs are {{ $value | humanizeDuration }} behind real time",
               "Input messages wait that long before they are applied (consumer lag, a stuck "
               "worker): live KPIs show the past. KPI alerts are NOT inhibited by this."),
        _alert(targets, "CxpulseConsumerLagHigh",
               f'sum by (instance) ({m.CONSUMER_LAG}{{job="{WORKER_JOB}"}}) '
               f"> {p.max_consumer_lag}", "10m", "ticket", PIPELINE,
               "cxpulse worker {{ $labels.instance }} lags {{ $value }} messages",
               "The worker does not keep up with the topics; add a worker or partitions."),
        _alert(targets, "CxpulseDeadLetterRatioHigh",
               f"sum({dedup(m.DEADLETTER_TOTAL, 'rate', '10m')})\n"
               f"  / clamp_min(sum({dedup(m.CONSUMED_TOTAL, 'rate', '10m')}), 1e-9) "
               f"> {p.max_deadletter_ratio:g}",
               "10m", "ticket", PIPELINE,
               "{{ $value | humanizePercentage }} of messages are dead-lettered",
               "A producer sends events that break the event contract (docs/contract.md); "
               "see the dead-letter topic and the reason label."),
        _alert(targets, "CxpulseLateEventRatioHigh",
               f"sum({dedup(LATE_EVENTS, 'rate', '10m')})\n"
               f"  / clamp_min(sum({dedup(m.CONSUMED_TOTAL, 'rate', '10m')}), 1e-9) "
               f"> {p.max_late_ratio:g}",
               "10m", "ticket", PIPELINE,
               "{{ $value | humanizePercentage }} of events arrive too late for the windows",
               "Producers deliver events later than the allowed lateness; windowed KPIs "
               "undercount. Raise the lateness or fix the producer."),
    ]


def alert_rules(targets: Targets) -> dict[str, Any]:
    """The whole rule file as a plain mapping (YAML-dumped by the caller)."""
    return {
        "groups": [
            {"name": "cxpulse-kpis",
             "rules": _frt_alerts(targets) + _collapse_alerts(targets) + _score_alerts(targets)
             + _response_rate_alerts(targets)},
            {"name": "cxpulse-pipeline", "rules": _pipeline_alerts(targets)},
        ]
    }
