"""KPI targets: the one source from which SLA counting, alerts and dashboards derive.

Parsing is pure (a mapping in, frozen dataclasses out) so the worker, the
alert generator and the dashboard generator cannot disagree on a target, and
a wrong value fails at start with the setting's path in the message instead
of silently producing an alert that never fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.durations import DurationError, parse_duration_ms, window_label
from cxpulse.core.events import Priority
from cxpulse.core.evidence import EvidenceError, EvidenceSpec, weights

SURVEY_KPIS = ("csat", "nps", "ces")
SHARE_KPIS = ("csat", "ces", "fcr")
SEVERITIES = ("page", "ticket")


class TargetsError(ValueError):
    """A targets file that cannot be used; the message names the offending setting."""


def _duration(text: object, where: str) -> int:
    try:
        return parse_duration_ms(text)
    except DurationError as exc:
        raise TargetsError(f"{where}: {exc}") from None


def _window(text: object, where: str) -> str:
    """The engine's label for the window, so alerts select exactly what it exports."""
    return window_label(_duration(text, where))


@dataclass(frozen=True)
class BurnRate:
    long: str
    short: str
    factor: float
    severity: str


@dataclass(frozen=True)
class FrtTarget:
    target_seconds: float = 900.0
    quantile: float = 0.9
    window: str = "1h"
    min_count: int = 10
    #: Deadlines the short window of a burn-rate alert needs before it can open the alert:
    #: one breach among one or two deadlines is no evidence of a burn (flaps, re-pages).
    min_count_short: int = 3
    #: Window of the chronic-slowness ticket (p-quantile over a long window).
    ticket_window: str = "24h"
    objective: float = 0.90
    burn_rates: tuple[BurnRate, ...] = ()
    by_priority: Mapping[str, float] = field(default_factory=dict)

    def target_for(self, priority: str) -> float:
        return self.by_priority.get(priority, self.target_seconds)


@dataclass(frozen=True)
class ScoreTarget:
    """A floor: the KPI should stay above `target` (share 0..1, or NPS score)."""

    target: float
    window: str = "24h"
    #: The share a collapse falls to (CSAT, CES, FCR): H1 of the sequential test
    #: (`cxpulse.core.evidence`); None: no collapse alert (NPS: a score, not a share).
    collapse: float | None = None
    #: (surveys; opt-in) a ticket when responses / offers over `window` stay under this.
    #: None (the default): no rule. Response rates differ by channel, survey and
    #: industry far more than satisfaction does (docs/alerts.md), and they exist only
    #: where the helpdesk reports offers (contract 1.1 `survey.offered`): a built-in
    #: floor would be an invented target, wrong for most deployments.
    response_rate_floor: float | None = None


@dataclass(frozen=True)
class PipelineLimits:
    max_kpi_delay_seconds: float = 300.0
    max_consumer_lag: int = 10_000
    max_deadletter_ratio: float = 0.05
    max_late_ratio: float = 0.05


@dataclass(frozen=True)
class AtRisk:
    """The predictive page: a team's queue stalls before any of its tickets breaches.

    Fires when the team's unanswered tickets are `ratio` times their usual level
    (the average over `baseline`, ending `baseline_offset` ago, never below
    `min_usual`), above `ratio` times what the current demand explains
    (tickets created in the last 15 minutes x `usual_wait_seconds` / 15 min)
    and at least `min_unanswered`, while at least `min_at_risk` tickets are
    already past `threshold` of their FRT target unanswered, and (to open) the team's
    first replies of the last 15 minutes are fewer than `max_reply_share` of the tickets
    created in them."""

    threshold: float = 0.5
    min_at_risk: int = 1
    min_unanswered: int = 8
    ratio: float = 2.0
    min_usual: float = 2.0
    #: How long a ticket usually waits unanswered: with the tickets created in the
    #: last 15 minutes it gives the level the current demand explains (a surge).
    usual_wait_seconds: float = 270.0
    #: To open, the team's first replies in the last 15 minutes are fewer than this share
    #: of the tickets created in them: the queue is growing, not being worked off at the
    #: pace tickets arrive (a busy morning the team absorbs answers 0.8-1.35 of them).
    max_reply_share: float = 0.75
    baseline: str = "1h"
    baseline_offset: str = "15m"
    for_: str = "1m"


@dataclass(frozen=True)
class Stall:
    """The stall page: a team stopped answering, whatever its volume.

    Fires while at least `min_breached` of the team's tickets are past their FRT
    deadline with no public reply, and more than `overdue_per_reply` of them per first
    reply the team sent in the last 15 minutes: the team does not even keep pace with its
    overdue tickets. On a team of 20 tickets a day the overdue tickets are the evidence
    (two of them while the team sent no first reply); on a big team the silence is (its
    overdue count passes its reply rate within minutes of a stall, and never on a
    working day)."""

    min_breached: int = 2
    #: Overdue tickets per first reply (15 min) that open the page. 1 paged a healthy
    #: 144-ticket-a-day team whose second ticket breached a minute after it answered
    #: another (two overdue, one reply: docs/alerts.md "Measured"); with 2, two overdue
    #: tickets page only when the team sent no first reply, which is the issue's own
    #: measure for a small team (the second breach with no reply in between).
    overdue_per_reply: int = 2
    #: When at least this many tickets arrived in the last 15 minutes and none of the
    #: team's tickets got a first reply in them, the silence is evidence on its own (a
    #: healthy team answers most tickets within 15 minutes): one overdue ticket then
    #: suffices, and a big team's night stall pages minutes after its first breach.
    silent_min_arrivals: int = 4
    #: A thin shift (a night with 1-5 tickets an hour) never has `silent_min_arrivals`
    #: arrivals, and one overdue ticket there is also what one slow ticket looks like. The
    #: quiet-shift evidence is a second customer kept waiting with it: at least
    #: `quiet_min_waiting` tickets past `quiet_band` of their FRT target (the overdue one
    #: counts) while the team sent no first reply in the last 15 minutes. `quiet_band` must
    #: be one of the at-risk thresholds the core exports (0.5, 0.75); docs/alerts.md has
    #: the measurement behind 0.75 (0.5 paged healthy days twice as often).
    quiet_band: float = 0.75
    quiet_min_waiting: int = 2
    #: ... only on a thin shift: at most this many tickets arrived in the last hour (a
    #: 720-ticket-a-day team's night brings about 5). By day a small team's 15 minutes
    #: without a first reply while one customer waits is a lull it answers in time: the
    #: clause paged a 112-ticket-a-day team at 08:39 with 7 arrivals in the hour, whose
    #: second customer was answered at 14.7 min (docs/alerts.md "Measured").
    quiet_max_arrivals: int = 6
    #: Once open, the page closes when no ticket is overdue or the team sends this many
    #: first replies (in 15 min) per overdue ticket: it has caught up. A looser release
    #: (replies merely outnumbering overdue tickets) flapped 4 times in a slow decline.
    catch_up_replies: int = 10
    for_: str = "1m"


@dataclass(frozen=True)
class Forecast:
    """The forecast page: the queue itself says tickets will breach.

    Fires when at least `min_tickets` of the team's unanswered tickets (those past a
    quarter of their target: `CoreConfig.forecast_from_fraction`) will pass their FRT
    deadline at the team's recent pace of first replies (`CoreConfig.forecast_pace_ms`:
    over 2, 5 or 10 minutes, as its volume supports), whichever order the team answers
    them in (`cxpulse_frt_forecast_breach_tickets`, computed by the
    core from every ticket's time left; docs/alerts.md "Breach forecast"); holds while
    at least one will."""

    min_tickets: int = 4
    for_: str = "1m"


@dataclass(frozen=True)
class Paging:
    """How alerts behave over time, independent of the KPI they watch."""

    #: KPI alerts stay firing this long after their condition stops being true (or
    #: their series vanish), so a dead exporter never sends a false RESOLVED: the
    #: dead-target page arrives and inhibits them first.
    keep_firing_for: str = "3m"
    #: Ticket-severity KPI alerts hold this long (hysteresis against flapping).
    ticket_keep_firing_for: str = "1h"
    at_risk: AtRisk = field(default_factory=AtRisk)
    stall: Stall = field(default_factory=Stall)
    forecast: Forecast = field(default_factory=Forecast)
    #: Collapse alerts (CSAT page, CES/FCR tickets): a team exactly at its target gets at
    #: most one false alert per this many days, whatever its volume (cxpulse.core.evidence).
    false_alarm_days: float = 30.0


DEFAULT_RUNBOOK_BASE_URL = "https://github.com/cxpulse/cxpulse/blob/main/docs/runbook.md"


@dataclass(frozen=True)
class Targets:
    min_sample: int
    frt: FrtTarget
    scores: Mapping[str, ScoreTarget]  # csat, nps, ces, fcr
    teams: Mapping[str, Mapping[str, float]]
    pipeline: PipelineLimits
    paging: Paging = field(default_factory=Paging)
    #: Absolute URL of docs/runbook.md as on-call opens it; alerts link `<base>#<alert>`.
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL

    def score_for(self, kpi: str, team: str | None = None) -> float:
        if team is not None and kpi in self.teams.get(team, {}):
            return self.teams[team][kpi]
        return self.scores[kpi].target

    def evidence(self) -> tuple[EvidenceSpec, ...]:
        """The collapse tests the core computes (one per share KPI with a `collapse`)."""
        out = []
        for kpi in SHARE_KPIS:
            s = self.scores[kpi]
            if s.collapse is not None:
                teams = {t: o[kpi] for t, o in self.teams.items() if kpi in o}
                out.append(EvidenceSpec(kpi, s.target, s.collapse, self.paging.false_alarm_days,
                                        teams))
        return tuple(out)


def _num(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TargetsError(f"{where}: expected a number, got {type(value).__name__}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise TargetsError(f"{where}: {value} is outside {lo}..{hi}")
    return float(value)


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TargetsError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise TargetsError(f"{where}: unknown setting(s) {sorted(unknown)}")


def _score_range(kpi: str) -> tuple[float, float]:
    return (-100.0, 100.0) if kpi == "nps" else (0.0, 1.0)


def parse_targets(raw: Mapping[str, Any]) -> Targets:
    raw = _map(raw, "targets")
    _check_keys(raw, {"version", "min_sample", "frt", *SURVEY_KPIS, "fcr", "teams", "pipeline",
                      "paging", "runbook_base_url"}, "targets")
    if raw.get("version", 1) != 1:
        raise TargetsError(f"targets.version: {raw.get('version')!r} is not supported (1)")
    min_sample = int(_num(raw.get("min_sample", 30), "min_sample", 1))

    f = _map(raw.get("frt"), "frt")
    _check_keys(f, {"target_seconds", "quantile", "window", "min_count", "objective",
                    "burn_rates", "by_priority", "ticket_window", "min_count_short"}, "frt")
    burns = []
    for i, b in enumerate(f.get("burn_rates") or []):
        where = f"frt.burn_rates[{i}]"
        b = _map(b, where)
        _check_keys(b, {"long", "short", "factor", "severity"}, where)
        long = _window(b.get("long", ""), f"{where}.long")
        short = _window(b.get("short", ""), f"{where}.short")
        if b.get("severity") not in SEVERITIES:
            raise TargetsError(f"{where}.severity: must be one of {SEVERITIES}")
        burns.append(BurnRate(long, short, _num(b.get("factor"), f"{where}.factor", 0),
                              b["severity"]))
    by_priority = {}
    for prio, secs in _map(f.get("by_priority"), "frt.by_priority").items():
        if prio not in {p.value for p in Priority}:
            raise TargetsError(f"frt.by_priority: {prio!r} is not a priority")
        by_priority[prio] = _num(secs, f"frt.by_priority.{prio}", 1)
    window = _window(f.get("window", "1h"), "frt.window")
    frt = FrtTarget(
        target_seconds=_num(f.get("target_seconds", 900), "frt.target_seconds", 1),
        quantile=_num(f.get("quantile", 0.9), "frt.quantile", 0.5, 0.99),
        window=window,
        min_count=int(_num(f.get("min_count", 10), "frt.min_count", 1)),
        min_count_short=int(_num(f.get("min_count_short", 3), "frt.min_count_short", 1)),
        ticket_window=_window(f.get("ticket_window", "24h"), "frt.ticket_window"),
        objective=_num(f.get("objective", 0.9), "frt.objective", 0.5, 0.9999),
        burn_rates=tuple(burns),
        by_priority=by_priority,
    )

    defaults = {"csat": 0.80, "nps": 70.0, "ces": 0.85, "fcr": 0.80}
    scores = {}
    for kpi, default in defaults.items():
        s = _map(raw.get(kpi), kpi)
        share = kpi in SHARE_KPIS
        _check_keys(s, {"target", "window", *(["collapse"] if share else []),
                        *(["response_rate_floor"] if kpi in SURVEY_KPIS else [])}, kpi)
        lo, hi = _score_range(kpi)
        w = _window(s.get("window", "24h"), f"{kpi}.window")
        target = _num(s.get("target", default), f"{kpi}.target", lo, hi)
        collapse = _num(s.get("collapse", 0.5), f"{kpi}.collapse", 0.01, 0.99) if share else None
        floor = s.get("response_rate_floor")
        scores[kpi] = ScoreTarget(
            target, w, collapse=collapse,
            response_rate_floor=None if floor is None
            else _num(floor, f"{kpi}.response_rate_floor", 0, 1))

    teams: dict[str, dict[str, float]] = {}
    for team, overrides in _map(raw.get("teams"), "teams").items():
        o = _map(overrides, f"teams.{team}")
        _check_keys(o, set(defaults), f"teams.{team}")
        teams[str(team)] = {
            k: _num(v, f"teams.{team}.{k}", *_score_range(k)) for k, v in o.items()
        }

    for kpi in SHARE_KPIS:
        col = scores[kpi].collapse
        for who, t in [("", scores[kpi].target)] + [(f"teams.{n}.", o[kpi])
                                                     for n, o in teams.items() if kpi in o]:
            try:
                weights(t, col) if col is not None else None
            except EvidenceError as exc:
                raise TargetsError(f"{kpi}.collapse ({who}{kpi} {t:g}): {exc}") from None

    p = _map(raw.get("pipeline"), "pipeline")
    _check_keys(p, {"max_kpi_delay_seconds", "max_processing_delay_seconds", "max_consumer_lag",
                    "max_deadletter_ratio", "max_late_ratio"}, "pipeline")
    delay_key = (
        "max_processing_delay_seconds" if "max_processing_delay_seconds" in p
        else "max_kpi_delay_seconds"
    )
    pipeline = PipelineLimits(
        max_kpi_delay_seconds=_num(p.get(delay_key, 300), f"pipeline.{delay_key}", 1),
        max_consumer_lag=int(_num(p.get("max_consumer_lag", 10_000),
                                  "pipeline.max_consumer_lag", 1)),
        max_deadletter_ratio=_num(p.get("max_deadletter_ratio", 0.05),
                                  "pipeline.max_deadletter_ratio", 0, 1),
        max_late_ratio=_num(p.get("max_late_ratio", 0.05), "pipeline.max_late_ratio", 0, 1),
    )
    url = raw.get("runbook_base_url", DEFAULT_RUNBOOK_BASE_URL)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or "#" in url:
        raise TargetsError(
            "runbook_base_url: must be an absolute http(s) URL without '#' "
            "(pagers cannot open a repository path)"
        )
    return Targets(min_sample, frt, scores, teams, pipeline, _paging(raw.get("paging")), url)


def _paging(raw: Any) -> Paging:
    g = _map(raw, "paging")
    _check_keys(g, {"keep_firing_for", "ticket_keep_firing_for", "at_risk", "stall",
                    "forecast", "false_alarm_days"}, "paging")
    a = _map(g.get("at_risk"), "paging.at_risk")
    fields = {"threshold", "min_at_risk", "min_unanswered", "ratio", "min_usual", "baseline",
              "baseline_offset", "for", "usual_wait_seconds", "max_reply_share"}
    _check_keys(a, fields, "paging.at_risk")
    d = AtRisk()
    w = "paging.at_risk"
    threshold = _num(a.get("threshold", d.threshold), f"{w}.threshold", 0.05, 1)
    if threshold not in CoreConfig.at_risk_fractions:
        # the rule reads cxpulse_frt_at_risk_tickets{threshold="..."}: any other value
        # selects no series, and the page could never fire
        raise TargetsError(
            f"{w}.threshold must be one of the exported at-risk thresholds "
            f"{', '.join(f'{f:g}' for f in CoreConfig.at_risk_fractions)}, got {threshold:g}")
    at_risk = AtRisk(
        threshold=threshold,
        min_at_risk=int(_num(a.get("min_at_risk", d.min_at_risk), f"{w}.min_at_risk", 0)),
        min_unanswered=int(_num(a.get("min_unanswered", d.min_unanswered),
                                f"{w}.min_unanswered", 1)),
        ratio=_num(a.get("ratio", d.ratio), f"{w}.ratio", 1),
        min_usual=_num(a.get("min_usual", d.min_usual), f"{w}.min_usual", 0),
        usual_wait_seconds=_num(a.get("usual_wait_seconds", d.usual_wait_seconds),
                                f"{w}.usual_wait_seconds", 1),
        max_reply_share=_num(a.get("max_reply_share", d.max_reply_share),
                             f"{w}.max_reply_share", 0.05, 1),
        baseline=_window(a.get("baseline", d.baseline), f"{w}.baseline"),
        baseline_offset=_window(a.get("baseline_offset", d.baseline_offset),
                                f"{w}.baseline_offset"),
        for_=_window(a.get("for", d.for_), f"{w}.for"),
    )
    st = _map(g.get("stall"), "paging.stall")
    _check_keys(st, {"min_breached", "overdue_per_reply", "silent_min_arrivals", "quiet_band",
                     "quiet_min_waiting", "quiet_max_arrivals", "catch_up_replies", "for"},
                "paging.stall")
    quiet_band = _num(st.get("quiet_band", Stall.quiet_band), "paging.stall.quiet_band")
    if quiet_band not in CoreConfig.at_risk_fractions:
        raise TargetsError(
            f"paging.stall.quiet_band must be one of the exported at-risk thresholds "
            f"{', '.join(f'{f:g}' for f in CoreConfig.at_risk_fractions)}, got {quiet_band:g}")
    stall = Stall(
        min_breached=int(_num(st.get("min_breached", Stall.min_breached),
                              "paging.stall.min_breached", 1)),
        overdue_per_reply=int(_num(st.get("overdue_per_reply", Stall.overdue_per_reply),
                                   "paging.stall.overdue_per_reply", 1)),
        silent_min_arrivals=int(_num(st.get("silent_min_arrivals", Stall.silent_min_arrivals),
                                     "paging.stall.silent_min_arrivals", 1)),
        quiet_band=quiet_band,
        quiet_min_waiting=int(_num(st.get("quiet_min_waiting", Stall.quiet_min_waiting),
                                   "paging.stall.quiet_min_waiting", 1)),
        quiet_max_arrivals=int(_num(st.get("quiet_max_arrivals", Stall.quiet_max_arrivals),
                                    "paging.stall.quiet_max_arrivals", 0)),
        catch_up_replies=int(_num(st.get("catch_up_replies", Stall.catch_up_replies),
                                  "paging.stall.catch_up_replies", 1)),
        for_=_window(st.get("for", Stall.for_), "paging.stall.for"),
    )
    fc = _map(g.get("forecast"), "paging.forecast")
    _check_keys(fc, {"min_tickets", "for"}, "paging.forecast")
    forecast = Forecast(
        min_tickets=int(_num(fc.get("min_tickets", Forecast.min_tickets),
                             "paging.forecast.min_tickets", 1)),
        for_=_window(fc.get("for", Forecast.for_), "paging.forecast.for"),
    )
    return Paging(
        keep_firing_for=_window(g.get("keep_firing_for", "3m"), "paging.keep_firing_for"),
        ticket_keep_firing_for=_window(g.get("ticket_keep_firing_for", "1h"),
                                       "paging.ticket_keep_firing_for"),
        at_risk=at_risk,
        stall=stall,
        forecast=forecast,
        false_alarm_days=_num(g.get("false_alarm_days", 30), "paging.false_alarm_days", 1, 3650),
    )


DEFAULT_TARGETS = parse_targets({})
