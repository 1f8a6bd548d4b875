"""`Derivation.fork` copies every slot, and the copy is independent.

Why a test of its own: `fork` writes each slot out (a generic `copy.copy` cost
twelve times as much, issue 22), so a slot added to `TicketView` or
`Derivation` and forgotten there would leave the fork without it."""

from __future__ import annotations

from cxpulse.core.events import (
    Author,
    Status,
    StatusChanged,
    TicketAssigned,
    TicketEvent,
    TicketMessage,
)
from cxpulse.core.tickets import Derivation, DeriveParams, TicketView, derive_all

from tests.unit.core_helpers import at, created

SLOTS = (*TicketView.__slots__, *Derivation.__slots__)


def _derivation() -> Derivation:
    """A ticket whose every slot holds a value of its own (a transfer, a reassignment,
    a reply, a solve), so a fork that mixed two slots up would differ too."""
    events: list[TicketEvent] = [
        created("t1", "09:00:00", team="billing", channel="email"),
        TicketAssigned("a1", at("09:01:00"), "t1", "ann", None),
        TicketAssigned("a2", at("09:02:00"), "t1", "bob", "tech"),
        TicketMessage("m1", at("09:03:00"), "t1", Author.AGENT, "bob", True),
        StatusChanged("s1", at("09:04:00"), "t1", Status.SOLVED),
    ]
    d = derive_all(events, DeriveParams(60_000, 3_600_000, {}), lambda dim, v: v)
    assert d.team_before and d.agent_before and d.first_solve_ts is not None
    return d


def test_fork_copies_every_slot() -> None:
    d = _derivation()
    f = d.fork()
    assert type(f) is Derivation
    for name in SLOTS:
        assert getattr(f, name) == getattr(d, name), name  # unset: AttributeError
    assert f.contribs is not d.contribs


def test_fork_is_independent_of_the_original() -> None:
    d = _derivation()
    before = {name: getattr(d, name) for name in SLOTS}
    before["contribs"] = list(d.contribs)
    f = d.fork()
    f.step(StatusChanged("s2", at("09:05:00"), "t1", Status.OPEN), lambda dim, v: v)  # a reopen
    f.step(TicketAssigned("a3", at("09:06:00"), "t1", "cy", "sales"), lambda dim, v: v)
    assert f.contribs != before["contribs"] and f.status == "open" and f.team == "sales"
    assert {name: getattr(d, name) for name in SLOTS} == before
