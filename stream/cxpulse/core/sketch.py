"""A mergeable quantile sketch with a relative-error guarantee (DDSketch).

Why DDSketch (Masson, Rim, Lee, VLDB 2019) written here rather than the
`ddsketch` package: the core needs (1) exact *subtraction* as well as merging
(sliding-window caches subtract the slice that leaves a window; a ticket whose
first response changes retracts the old value), (2) integer counts so merges
are exact and order-insensitive, and (3) deterministic compact JSON. The
package stores float counts and offers no subtraction; the algorithm itself
is twenty lines.

Guarantee: with relative accuracy `alpha`, a positive value `x` falls in
bucket `i = ceil(log_gamma(x))`, `gamma = (1 + alpha) / (1 - alpha)`, whose
representative `2 gamma^i / (gamma + 1)` is within `alpha * x` of `x`.
`quantile(q)` returns the representative of the bucket holding the item of
rank `floor(q * (n - 1))` (0-based) of the sorted input, hence within
`alpha` relative error of that exact item. Zero is kept exactly. Buckets are
never collapsed: durations from 1 ms to a year need fewer than 1,600 buckets
at 1 %, and a slice holds only the few values it saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class LogMapping:
    """Value <-> bucket index for one relative accuracy (shared by all sketches)."""

    __slots__ = ("alpha", "gamma", "log_gamma")

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.gamma = (1.0 + alpha) / (1.0 - alpha)
        self.log_gamma = math.log(self.gamma)

    def index(self, value: float) -> int:
        return math.ceil(math.log(value) / self.log_gamma)

    def value(self, index: int) -> float:
        return 2.0 * self.gamma**index / (self.gamma + 1.0)


class Sketch:
    """Integer bucket counts of non-negative values; add, merge and subtract exactly."""

    __slots__ = ("bins", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0

    @property
    def count(self) -> int:
        return self.zeros + sum(self.bins.values())

    def add(self, value: int, mapping: LogMapping, weight: int = 1) -> None:
        """Add `weight` (may be negative: retraction) copies of `value` >= 0."""
        if value < 0:
            raise ValueError("sketch values must be >= 0")
        if value == 0:
            self.zeros += weight
            if self.zeros < 0:
                raise ValueError("sketch count went negative")
            return
        i = mapping.index(value)
        n = self.bins.get(i, 0) + weight
        if n > 0:
            self.bins[i] = n
        elif n == 0:
            del self.bins[i]
        else:
            raise ValueError("sketch count went negative")

    def merge(self, other: Sketch, sign: int = 1) -> None:
        bins = self.bins
        for i, c in other.bins.items():
            n = bins.get(i, 0) + sign * c
            if n > 0:
                bins[i] = n
            elif n == 0:
                del bins[i]
            else:
                raise ValueError("sketch count went negative")
        self.zeros += sign * other.zeros
        if self.zeros < 0:
            raise ValueError("sketch count went negative")

    def minus(self, other: Sketch) -> Sketch:
        """`self - other` bin by bin, zero bins dropped: a signed sketch (counts may be
        negative) for merging into one that holds `other`'s items, never kept or read
        for quantiles. The incremental windows fold a changed slice with it: one merge of
        the few bins that differ instead of subtracting the old and adding the new."""
        d = Sketch()
        bins = d.bins = dict(self.bins)
        for i, c in other.bins.items():
            n = bins.get(i, 0) - c
            if n:
                bins[i] = n
            else:
                del bins[i]
        d.zeros = self.zeros - other.zeros
        return d

    def absorb(self, other: Sketch) -> None:
        """Add another signed sketch (`minus`) to this one: `merge` without its guard."""
        bins = self.bins
        for i, c in other.bins.items():
            n = bins.get(i, 0) + c
            if n:
                bins[i] = n
            else:
                del bins[i]
        self.zeros += other.zeros

    def copy(self) -> Sketch:
        s = Sketch()
        s.bins = dict(self.bins)
        s.zeros = self.zeros
        return s

    def is_empty(self) -> bool:
        return not self.bins and not self.zeros

    def quantiles(self, qs: Iterable[float], mapping: LogMapping) -> list[float | None]:
        """Estimates of the items of rank floor(q (n-1)); None when empty."""
        qs = list(qs)
        n = self.count
        if n == 0:
            return [None for _ in qs]
        ranks = [math.floor(q * (n - 1)) for q in qs]
        order = sorted(self.bins.items())
        out: list[float | None] = []
        for rank in ranks:
            if rank < self.zeros:
                out.append(0.0)
                continue
            seen = self.zeros
            found: float | None = None
            for i, c in order:
                seen += c
                if seen > rank:
                    found = mapping.value(i)
                    break
            out.append(found)
        return out

    def to_json(self) -> list[object]:
        """`[zeros, [index, count, index, count, ...]]`, indexes ascending."""
        flat: list[int] = []
        for i, c in sorted(self.bins.items()):
            flat.append(i)
            flat.append(c)
        return [self.zeros, flat]

    @classmethod
    def from_json(cls, data: object) -> Sketch:
        if not isinstance(data, list) or len(data) != 2:
            raise ValueError("bad sketch encoding")
        zeros, flat = data
        s = cls()
        s.zeros = int(zeros)
        it = iter(flat)
        s.bins = {int(i): int(c) for i, c in zip(it, it, strict=True)}
        return s
