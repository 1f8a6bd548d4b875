"""`cxpulse demo --vendor zendesk`: the simulator's operation as Zendesk sends it.

Each contract event the simulator makes is rendered as the Zendesk webhook that
would have carried it (the event-subscription shape `cxpulse.helpdesks.zendesk`
maps: `zen:event-type:ticket.*` with the ticket in `detail` and the change in
`event`; CSAT as the body of the satisfaction trigger docs/helpdesks.md sets
up), signed with the demo's signing secret as Zendesk signs (HMAC-SHA256 over
timestamp + body) and posted to `cxpulse ingest` when its time comes. From
there it is the real path: the gateway persists it, `cxpulse map` maps it with
the demo's mapping file (written by `mapping_yaml`), the workers count it.

What Zendesk has no webhook for is not sent (counted in the summary line):
NPS and CES surveys (Zendesk has no such survey), a bot's handoff (the mapping
reads a bot's comment as a bot's, a handoff is Chatwoot's notion), surveys
without a ticket, and the simulator's deliberately malformed lines (the
gateway's refusals have their own tests). A duplicate of an event (the
simulator sends some, like any at-least-once producer) renders as the same
delivery; besides, every `REDELIVER_EVERY`th delivery is posted twice, as
Zendesk does when it did not read our answer in time: the map stage gives both
the same event ids and every ticket is counted once.

Ids: Zendesk names tickets and users by numbers. A ticket's number is the
simulator's ticket id's digits; agents, customers and the bot get numbers of
their own (agents from 1001 on, in order of appearance; customers 10,000,000 +
their digits; the bot `BOT_USER`); teams are groups `GROUP_BASE + n` in the
order of `cxpulse.sim.params.TEAMS`, named back by the mapping file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cxpulse.core.events import Scale, SurveyKind
from cxpulse.core.kpis import GOOD_SCORES, SATISFIED_OTHER
from cxpulse.ingest.auth import sign
from cxpulse.kafka.produce import Outgoing
from cxpulse.sim import params

#: the environment variable the demo passes its signing secret in (the gateway reads
#: the same one): never on a command line, where `ps` would show it
SECRET_ENV = "CXPULSE_ZENDESK_WEBHOOK_SECRET"  # noqa: S105 - its name, not a secret
GROUP_BASE = 360_000_001
BOT_USER = "9000"
AGENT_SUBMITTER = "8000"  # the staff user who opens a ticket an agent created
REDELIVER_EVERY = 50
#: deliveries in flight: one ticket's in order (they go through one sender each)
SENDERS = 8
_NAMESPACE = uuid.UUID("6f1b2a8e-3c57-4c1e-9a55-0c7e2d0d5e11")
_STATUS = {"open": "OPEN", "pending": "PENDING", "on_hold": "HOLD", "solved": "SOLVED",
           "closed": "CLOSED"}  # fmt: skip


def groups() -> dict[str, str]:
    """team -> its Zendesk group id (the mapping file says it the other way round)."""
    return {team: str(GROUP_BASE + i) for i, team in enumerate(params.TEAMS)}


def mapping_yaml() -> str:
    """The demo's mapping file for `cxpulse map` (docs/helpdesks.md, "The mapping file")."""
    teams = ", ".join(f'"{g}": {t}' for t, g in groups().items())
    return (f"default_team: unassigned\nzendesk:\n  teams: {{{teams}}}\n"
            f'  bots: ["{BOT_USER}"]\n')


def _digits(text: str) -> str:
    return str(int(re.sub(r"\D", "", text) or "0"))


@dataclass
class _Ticket:
    group: str
    requester: str
    status: str = "NEW"
    assignee: str | None = None


@dataclass
class ZendeskRenderer:
    """Contract events -> Zendesk webhook bodies, keeping each ticket's current state
    (every delivery carries the whole ticket in `detail`)."""

    tickets: dict[str, _Ticket] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    def user(self, agent_id: str) -> str:
        found = self.agents.get(agent_id)
        if found is None:
            found = self.agents[agent_id] = str(1001 + len(self.agents))
        return found

    def render(self, value: bytes) -> tuple[str, dict[str, Any]] | None:
        """(ticket number, webhook body), or None when Zendesk would send nothing."""
        try:
            event = json.loads(value)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("ticket_id"), str):
            self.skipped += 1
            return None
        try:
            body = self._render(event)
        except (KeyError, TypeError, ValueError):  # a malformed line of the simulator's
            body = None
        if body is None:
            self.skipped += 1
            return None
        return _digits(event["ticket_id"]), body

    def _render(self, e: dict[str, Any]) -> dict[str, Any] | None:
        kind, number = e["type"], _digits(e["ticket_id"])
        if kind == "survey.response" or kind == "survey.offered":
            return self._survey(e, number)
        if kind == "ticket.created":
            customer = e.get("customer_id")
            requester = str(10_000_000 + int(_digits(customer))) if customer else "10000000"
            new = self.tickets[number] = _Ticket(
                groups().get(e["team"], str(GROUP_BASE - 1)), requester)
            submitter = AGENT_SUBMITTER if e.get("created_by") == "agent" else requester
            return self._event(e, number, "created", {}, submitter_id=submitter,
                               priority=str(e.get("priority") or "normal").upper(),
                               via={"channel": e["channel"]}, requester_id=new.requester)
        t = self.tickets.get(number)
        if t is None:  # an event of a ticket created before this ran (never, in the demo)
            return None
        if kind == "ticket.assigned":
            agent = self.user(e["agent_id"])
            previous, t.assignee = t.assignee, agent
            if e.get("team"):  # a transfer: the group changes, the assignee with it
                before, t.group = t.group, groups().get(e["team"], t.group)
                return self._event(e, number, "group_assignment_changed",
                                   {"previous": before, "current": t.group})
            return self._event(e, number, "agent_assignment_changed",
                               {"previous": previous, "current": agent})
        if kind == "ticket.message":
            author = e["author"]
            who = (BOT_USER if author == "bot" else t.requester if author == "customer"
                   else self.user(e.get("agent_id") or "unknown-agent"))
            comment = {"id": str(uuid.uuid5(_NAMESPACE, e["event_id"]).int % 10**13),
                       "body": "...", "is_public": e.get("public", True) is not False,
                       "author": {"id": who, "is_staff": author != "customer",
                                  "name": "Answer Bot" if author == "bot" else "x"}}
            return self._event(e, number, "comment_added", {"comment": comment})
        if kind == "ticket.status_changed":
            previous, t.status = t.status, _STATUS[e["status"]]
            return self._event(e, number, "status_changed",
                               {"previous": previous, "current": t.status})
        return None  # ticket.handoff: no Zendesk event

    def _event(self, e: dict[str, Any], number: str, name: str, change: dict[str, Any],
               **extra: Any) -> dict[str, Any]:  # fmt: skip
        t = self.tickets[number]
        detail = {"id": number, "group_id": t.group, "requester_id": t.requester,
                  "submitter_id": t.requester, "assignee_id": t.assignee, "status": t.status,
                  "priority": "NORMAL", "via": {"channel": "web"}, **extra}  # fmt: skip
        return {"account_id": 1, "id": str(uuid.uuid5(_NAMESPACE, e["event_id"])),
                "type": f"zen:event-type:ticket.{name}", "subject": f"zen:ticket:{number}",
                "time": e["ts"], "zendesk_event_version": "2022-11-06", "detail": detail,
                "event": change}  # fmt: skip

    def _survey(self, e: dict[str, Any], number: str) -> dict[str, Any] | None:
        if e.get("survey") != "csat" or number not in self.tickets:
            return None  # Zendesk asks CSAT only, about a ticket
        if e["type"] == "survey.offered":
            rating = "offered"
        else:
            score = int(e["score"])
            scale = e.get("scale")
            good = (score in SATISFIED_OTHER[Scale(scale)] if scale and scale != "five_point"
                    else score in GOOD_SCORES[SurveyKind.CSAT])
            rating = "good" if good else "bad"
        return {"type": "cxpulse:ticket.satisfaction", "ticket_id": number, "rating": rating,
                "time": e["ts"]}


@dataclass
class Poster:
    """Posts rendered deliveries to the gateway, signed, one ticket's in order; retries a
    503 (Kafka not acknowledging) or a refused connection like Zendesk does, later."""

    url: str
    secret: bytes
    posted: int = 0
    redelivered: int = 0
    tickets: set[str] = field(default_factory=set)

    async def send(self, session: Any, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(60):
            ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers = {"Content-Type": "application/json", "User-Agent": "Zendesk Webhook",
                       **sign("zendesk", self.secret, data, ts)}  # fmt: skip
            try:
                async with session.post(self.url, data=data, headers=headers) as resp:
                    await resp.read()
                    if resp.status < 300:
                        return
                    if resp.status < 500:  # refused for good: the demo is misconfigured
                        raise RuntimeError(f"cxpulse ingest answered {resp.status}")
            except OSError:
                pass
            await asyncio.sleep(min(5.0, 0.5 * (attempt + 1)))
        raise RuntimeError("cxpulse ingest did not accept a delivery for minutes")

    async def run(self, outgoing: Iterable[Outgoing], renderer: ZendeskRenderer) -> int:
        import aiohttp

        loop = asyncio.get_running_loop()
        queues: list[asyncio.Queue[dict[str, Any] | None]] = [
            asyncio.Queue(1000) for _ in range(SENDERS)]

        async def sender(q: asyncio.Queue[dict[str, Any] | None]) -> None:
            while (body := await q.get()) is not None:
                await self.send(session, body)

        async with aiohttp.ClientSession() as session:
            workers = [asyncio.create_task(sender(q)) for q in queues]
            started = loop.time()
            try:
                for msg in outgoing:
                    if msg.due is not None and (wait := msg.due - (loop.time() - started)) > 0:
                        await asyncio.sleep(wait)
                    rendered = renderer.render(msg.value)
                    if rendered is None:
                        continue
                    number, body = rendered
                    q = queues[int(number) % SENDERS]
                    await q.put(body)
                    self.posted += 1
                    if body.get("type") == "zen:event-type:ticket.created":
                        self.tickets.add(number)
                    if self.posted % REDELIVER_EVERY == 0:  # Zendesk's retry of a delivery
                        await q.put(body)
                        self.redelivered += 1
                    for w in workers:
                        if w.done():
                            w.result()  # a sender's error ends the run, named
                for q in queues:
                    await q.put(None)
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
        return self.posted


def post_live(url: str, outgoing: Iterable[Outgoing]) -> str:
    """Render and post every event when its time comes; the summary line."""
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise SystemExit(f"simulator: {SECRET_ENV} is not set (the demo sets it)")
    poster = Poster(url, secret.encode())
    renderer = ZendeskRenderer()
    t0 = time.monotonic()
    asyncio.run(poster.run(outgoing, renderer))
    return (f"simulator: {poster.posted} Zendesk webhooks posted to cxpulse ingest in "
            f"{time.monotonic() - t0:.0f}s ({poster.redelivered} posted twice, as a "
            f"retrying Zendesk does), {len(poster.tickets)} tickets; {renderer.skipped} "
            "events Zendesk does not send")
