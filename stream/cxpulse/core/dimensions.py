"""Label caps: every label value set stays bounded whatever the input.

Two stages, because they protect different things:

* `LabelGuard` (write time, per partition) protects *memory*: a value outside
  the configured allow-list becomes `other` before it becomes part of a slice
  key; without an allow-list at most `max_label_values` distinct values per
  dimension are admitted, first come, and later newcomers become `other`.
  Admission never changes a value already admitted, so a recomputed ticket
  maps to the same labels it had. Only hostile input (more distinct values
  than the guard) makes admission depend on arrival order.
* `top_n_caps` (read time) protects *Prometheus*: of the values present it
  keeps the N most active (ties by name) and maps the rest to `other`. It is
  computed per evaluation over all engines of that evaluation, so the same
  ranking is used for every window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cxpulse.core.config import CAPPED_DIMENSIONS, RESERVED_LABELS, CoreConfig

OTHER = "other"
UNKNOWN = "unknown"


#: `LabelGuard.capped` cause: the value is not in the dimension's allow-list.
CAP_ALLOWED = "allowed_labels"
#: `LabelGuard.capped` cause: the dimension already admitted `max_label_values`.
CAP_MAX_VALUES = "max_label_values"


class LabelGuard:
    __slots__ = ("_allowed", "_limit", "capped", "dirty", "seen")

    def __init__(self, config: CoreConfig) -> None:
        self._allowed = {d: frozenset(v) for d, v in config.allowed_labels.items()}
        self._limit = config.max_label_values
        self.seen: dict[str, set[str]] = {d: set() for d in CAPPED_DIMENSIONS}
        self.dirty = False
        #: (dimension, cause) -> admissions mapped to `other` since the shell last
        #: took them (`take_capped`): every cap that bites is counted on /metrics
        self.capped: dict[tuple[str, str], int] = {}

    def admit(self, dim: str, value: str) -> str:
        """The label to aggregate `value` under (admitting it if there is room)."""
        if value in RESERVED_LABELS:
            return value
        allowed = self._allowed.get(dim)
        if allowed is not None:
            if value in allowed:
                return value
            key = (dim, CAP_ALLOWED)
            self.capped[key] = self.capped.get(key, 0) + 1
            return OTHER
        seen = self.seen[dim]
        if value in seen:
            return value
        if len(seen) < self._limit:
            seen.add(value)
            self.dirty = True
            return value
        key = (dim, CAP_MAX_VALUES)
        self.capped[key] = self.capped.get(key, 0) + 1
        return OTHER

    def take_capped(self) -> dict[tuple[str, str], int]:
        """The cap counts since the last call (the worker adds them to its marker)."""
        out, self.capped = self.capped, {}
        return out

    def room(self) -> float:
        """How many more values first-come admission can take before a cap bites
        (the least over dimensions without an allow-list; inf when all have one).

        While more new values than this cannot occur, admission maps every value
        to itself whatever the order of the calls (`PartitionEngine.begin_batch`)."""
        free = [
            self._limit - len(self.seen[d]) for d in self.seen if d not in self._allowed
        ]
        return float(min(free)) if free else float("inf")

    def peek(self, dim: str, value: str) -> str:
        """Like `admit` without admitting (used by read-only evaluation)."""
        if value in RESERVED_LABELS:
            return value
        allowed = self._allowed.get(dim)
        if allowed is not None:
            return value if value in allowed else OTHER
        return value if value in self.seen[dim] else OTHER

    def to_json(self) -> dict[str, list[str]]:
        return {d: sorted(v) for d, v in self.seen.items() if v}

    def load(self, data: Mapping[str, Iterable[str]]) -> None:
        for d, values in data.items():
            self.seen.setdefault(d, set()).update(values)


def top_n_caps(weights: Mapping[str, float], n: int | None) -> dict[str, str]:
    """Map each value to itself if it is among the `n` heaviest, else `other`."""
    if n is None:
        return {v: v for v in weights}
    ranked = sorted(
        (v for v in weights if v not in RESERVED_LABELS), key=lambda v: (-weights[v], v)
    )
    keep = set(ranked[:n]) | (set(weights) & RESERVED_LABELS)
    return {v: (v if v in keep else OTHER) for v in weights}
