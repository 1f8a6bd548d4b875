"""Read-time label caps (top-N per dimension) and the view keys they apply to.

Why at read time: which values are in the top N depends on the merged view of
all partitions, so only the evaluation can decide it."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cxpulse.core.dimensions import OTHER
from cxpulse.core.slices import Key, SurveyAgg, TicketAgg

DIM_OF_VIEW = {"team": "team", "channel": "channel", "agent": "agent", "touchpoint": "touchpoint"}


def merge_into(target: dict[Key, Any], source: Mapping[Key, Any]) -> None:
    for k, v in source.items():
        mine = target.get(k)
        if mine is None:
            target[k] = v
        else:
            mine.merge(v)


@dataclass
class Caps:
    maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def __call__(self, dim: str, value: str) -> str:
        m = self.maps.get(dim)
        if m is None:
            return value
        return m.get(value, OTHER)


def cap_view(view: Key, caps: Caps) -> Key:
    """Capped form of a ticket/survey view key (the last element is the label value)."""
    if view[0] in DIM_OF_VIEW:
        return (view[0], caps(view[0], view[1]))
    if len(view) == 3 and view[1] in DIM_OF_VIEW:
        return (view[0], view[1], caps(view[1], view[2]))
    return view


Mergeable = TypeVar("Mergeable", TicketAgg, SurveyAgg)


def capped(views: Mapping[Key, Mergeable], caps: Caps,
           wanted: Set[Key] | None = None) -> dict[Key, Mergeable]:
    """Views re-keyed by their capped label value; views capped alike (`other`) merge
    into a copy (the input is only read: an incremental evaluation keeps it for the next).
    `wanted`: only these capped views (None: all)."""
    out: dict[Key, Mergeable] = {}
    copied: set[Key] = set()
    for view, agg in views.items():
        cv = cap_view(view, caps)
        if wanted is not None and cv not in wanted:
            continue
        mine = out.get(cv)
        if mine is None:
            out[cv] = agg
            continue
        if cv not in copied:
            out[cv] = mine = mine.copy()
            copied.add(cv)
        mine.merge(agg)
    return out


def labels_of(view: Key) -> dict[str, str]:
    """{} for an all-teams view, {dim: value} otherwise (survey views drop the kind)."""
    if view[0] in ("all", "team", "channel", "priority", "agent", "touchpoint"):
        return {} if view[0] == "all" else {view[0]: view[1]}
    return {} if view[1] == "all" else {view[1]: view[2]}


