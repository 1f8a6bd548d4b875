"""`cxpulse import VENDOR FILE...`: backfill from a helpdesk's history, same ids as live.

Inputs, per file (JSON, or JSONL with one object per line):

* any vendor: recorded webhook deliveries (an array or JSONL of bodies as the
  vendor posts them; what `topic_raw_deliveries` holds): mapped exactly as
  `cxpulse map` maps them (Zammad's snapshots diffed in file order);
* Zendesk: an incremental ticket-events export page (`{"ticket_events": [...]}`,
  with `include=comment_events`) or a ticket-audits page (`{"audits": [...]}`);
  `--poll URL` reads the export from Zendesk itself (`zendesk_poll.py`);
* Chatwoot conversations + messages (with their activity messages: the status
  history), Freshdesk tickets + conversations + ratings + the ticket activities
  export (status and assignment history), Zammad tickets + articles + ticket
  history, as their REST APIs return them (pages or arrays of objects):
  re-shaped as the webhook bodies the live path maps (`exports.py`, which says
  what an export cannot carry).

Events go to `--out` (JSONL, `-` for stdout; feed it to `cxpulse replay` or
`cxpulse report`) or, given `--bootstrap-servers`, straight to topic_tickets / topic_surveys
with the contract keys. Ids are those of the live path, so importing a period the
webhooks already covered changes no KPI. Exit codes: 0 done, 2 bad usage or
setting (a file that cannot be read, a bad mapping file), 3 nothing in the
input could be mapped, 69 an export URL that fails (`--poll`) or a broker that cannot
be reached or refuses (one line, as `cxpulse replay`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cxpulse.cliargs import Subcommands
from cxpulse.importer import exports
from cxpulse.jsontypes import JSON
from cxpulse.kafka.produce import EXIT_KAFKA

if TYPE_CHECKING:
    from cxpulse.helpdesks import Mapping
    from cxpulse.settings import Settings

FLAGS = ("bootstrap_servers", "topic_tickets", "topic_surveys", "mapping_file",
         "zendesk_api_email")  # fmt: skip


def register(sub: Subcommands) -> None:
    from cxpulse.settings.flags import add_settings_flags

    p = sub.add_parser(
        "import",
        help="backfill: a helpdesk's export or recorded webhooks -> contract events",
        description="Map a helpdesk's history to contract events with the same event ids as "
        "the live path (cxpulse ingest + map), so history and webhooks meet without double "
        "counting. FILE: recorded webhook bodies (JSON array or JSONL); zendesk: an "
        "incremental ticket-events or ticket-audits page; chatwoot: API conversations and "
        "messages (activity messages give the status history); freshdesk: API tickets "
        "(include=stats), conversations, satisfaction ratings and the ticket activities "
        "export; zammad: API tickets and articles (expand=true) and ticket_history.",
    )
    p.add_argument("vendor", choices=("zendesk", "chatwoot", "freshdesk", "zammad"),
                   help="the helpdesk the files come from")  # fmt: skip
    p.add_argument("files", nargs="*", metavar="FILE", help="input files")
    p.add_argument("--out", metavar="FILE", default="-",
                   help="write JSONL ('-' for stdout); with --bootstrap-servers the events go "
                   "to topic_tickets / topic_surveys instead")  # fmt: skip
    p.add_argument("--poll", metavar="URL",
                   help="zendesk: read the incremental export from this URL, e.g. https://SUB."
                   "zendesk.com/api/v2/incremental/ticket_events.json?start_time=0"
                   "&include=comment_events (token: CXPULSE_ZENDESK_API_TOKEN)")  # fmt: skip
    p.add_argument("--state-file", metavar="FILE",
                   help="--poll: where the next page's URL is kept, to resume")  # fmt: skip
    add_settings_flags(p, FLAGS)
    p.set_defaults(func=run)


def _records(path: Path) -> Iterator[JSON]:
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        yield doc
    elif isinstance(doc, list):
        yield from (d for d in doc if isinstance(d, dict))
    else:  # JSONL
        for line in text.splitlines():
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError:
                    yield {"__not_json__": True}
                    continue
                yield obj if isinstance(obj, dict) else {"__not_object__": True}


class Importer:
    """Maps records in order, counting what each became."""

    def __init__(self, vendor: str, mapping: Mapping) -> None:
        self.vendor, self.mapping = vendor, mapping
        self.snapshots: dict[str, JSON] = {}
        self.requesters: dict[str, str] = {}  # Zendesk export: ticket -> requester
        self.names: dict[str, str] = {}  # Chatwoot: agent name -> id (exports.learn_names)
        self.counts: Counter[str] = Counter()

    def events(self, record: JSON) -> list[JSON]:
        from cxpulse.helpdesks import Unmappable, map_delivery, zendesk

        try:
            if "__not_json__" in record or "__not_object__" in record:
                raise Unmappable("not_json", "a line is not a JSON object")
            if self.vendor == "zendesk" and "ticket_events" in record:
                items = [e for e in record["ticket_events"] if isinstance(e, dict)]
                return self._many([zendesk.map_export_event(e, self.mapping, {}, self.requesters)
                                   for e in items])  # fmt: skip
            if self.vendor == "zendesk" and "audits" in record:
                return self._many([zendesk.map_export_event(_audit_item(a), self.mapping, {},
                                                            self.requesters)
                                   for a in record["audits"] if isinstance(a, dict)])  # fmt: skip
            if self.vendor != "zendesk":
                objects = list(exports.unwrap(self.vendor, record))
                for o in objects:  # a page's senders name the agents its activities assign
                    exports.learn_names(self.vendor, o, self.names)
                if len(objects) != 1 or exports.is_export(self.vendor, objects[0]):
                    return [e for o in objects for e in self._export_object(o)]
            tid = str((record.get("ticket") or {}).get("id")) if self.vendor == "zammad" else ""
            mapped = map_delivery(self.vendor, record, self.mapping, self.snapshots.get(tid))
            if mapped.snapshot is not None:
                self.snapshots[tid] = mapped.snapshot
            return self._many([mapped])
        except Unmappable as exc:
            self.counts[f"refused:{exc.code}"] += 1
            return []

    def _export_object(self, obj: JSON) -> list[JSON]:
        """One API object (a conversation, message, ticket, article): refused alone."""
        from cxpulse.helpdesks import Unmappable, map_delivery

        if not exports.is_export(self.vendor, obj):
            self.counts["refused:not_an_export_object"] += 1
            return []
        try:
            if self.vendor == "chatwoot" and exports.is_chatwoot_agent(obj):
                self.counts["agents_read"] += 1
                return []
            return self._many([map_delivery(self.vendor, body, self.mapping, previous)
                               for body, previous in exports.as_webhooks(self.vendor, obj,
                                                                         self.names)])  # fmt: skip
        except Unmappable as exc:
            self.counts[f"refused:{exc.code}"] += 1
            return []

    def _many(self, mapped: list[Any]) -> list[JSON]:
        out = []
        for m in mapped:
            self.counts["mapped" if m.events else "ignored"] += 1
            out += m.events
        return out


def _audit_item(audit: JSON) -> JSON:
    """A ticket audit as an export item (`events` -> `child_events`, `type` -> `event_type`)."""
    children = [{**e, "event_type": e.get("type"), "author_id": audit.get("author_id")}
                for e in audit.get("events") or [] if isinstance(e, dict)]  # fmt: skip
    return {"ticket_id": audit.get("ticket_id"), "created_at": audit.get("created_at"),
            "updater_id": audit.get("author_id"), "via": audit.get("via"),
            "child_events": children}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from cxpulse.helpdesks import MappingError, load_mapping
    from cxpulse.settings import SettingsError
    from cxpulse.settings.flags import settings_from_args

    prog = "cxpulse import"
    try:
        settings = settings_from_args(args)
        mapping = load_mapping(settings.mapping_file)
    except (SettingsError, MappingError) as exc:
        print(f"{prog}: bad setting: {exc}", file=sys.stderr)
        return 2
    if not args.files and not args.poll:
        print(f"{prog}: give FILE(s) or --poll URL", file=sys.stderr)
        return 2
    if args.poll and args.vendor != "zendesk":
        print(f"{prog}: --poll reads Zendesk's incremental export only", file=sys.stderr)
        return 2
    importer = Importer(args.vendor, mapping)
    collected: list[JSON] = []
    to_kafka = args.setting_bootstrap_servers is not None  # as `cxpulse simulate`
    out: IO[str] | None = None
    if not to_kafka:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        if args.poll:
            code = _poll(args, settings, importer, out, collected)
            if code:
                return code
        for name in args.files:
            try:
                records = list(_records(Path(name)))
            except (OSError, UnicodeDecodeError) as exc:
                print(f"{prog}: cannot read {name}: {getattr(exc, 'strerror', None) or exc}",
                      file=sys.stderr)  # fmt: skip
                return 2
            for record in records:
                _emit(importer.events(record), out, collected)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    if to_kafka and collected:
        from cxpulse.helpdesks import role_and_key

        if not _produce(prog, settings, [(role_and_key(e), e) for e in collected]):
            return EXIT_KAFKA
    summary = ", ".join(f"{k} {v}" for k, v in sorted(importer.counts.items()))
    print(f"{prog}: {summary or 'nothing read'}", file=sys.stderr)
    if not importer.counts["mapped"]:
        print(f"{prog}: nothing could be mapped: is it a {args.vendor} export or webhook "
              "bodies? (docs/helpdesks.md)", file=sys.stderr)  # fmt: skip
        return 3
    return 0


def _emit(events: list[JSON], out: IO[str] | None, collected: list[Any]) -> None:
    if out is None:
        collected.extend(events)
        return
    for e in events:
        out.write(json.dumps(e, separators=(",", ":")) + "\n")
    out.flush()


def _poll(args: argparse.Namespace, settings: Settings, importer: Importer, out: IO[str] | None,
          collected: list[Any]) -> int:  # fmt: skip
    from cxpulse.importer.zendesk_poll import PollError, basic_auth, pages

    token = settings.zendesk_api_token.reveal() if settings.zendesk_api_token else None
    auth = basic_auth(settings.zendesk_api_email, token)
    state = Path(args.state_file) if args.state_file else None
    try:
        for page, commit in pages(args.poll, state, auth, memory=importer.requesters):
            events = importer.events(page)
            if out is None:  # to Kafka: acknowledged before the state moves past the page
                from cxpulse.helpdesks import role_and_key

                if not _produce("cxpulse import", settings,
                                [(role_and_key(e), e) for e in events]):  # fmt: skip
                    return EXIT_KAFKA
            else:
                _emit(events, out, collected)
            commit()
    except PollError as exc:
        print(f"cxpulse import: export: {exc} (resume with the same --state-file)",
              file=sys.stderr)  # fmt: skip
        return EXIT_KAFKA
    return 0


def _produce(prog: str, settings: Settings, items: list[tuple[tuple[str, bytes], JSON]]) -> bool:
    """Send the mapped events with the contract keys (`cxpulse.kafka.produce`: idempotent,
    acks=all); False after one line on stderr when the broker cannot be reached."""
    from cxpulse.core.events import SURVEYS, TICKETS
    from cxpulse.kafka.produce import KafkaTarget, Outgoing, send

    target = KafkaTarget(
        settings.bootstrap_servers,
        {TICKETS: settings.topic_tickets, SURVEYS: settings.topic_surveys},
        settings.aiokafka_security(),
    )
    messages = (Outgoing(target.topics[role], key, json.dumps(e).encode())
                for (role, key), e in items)  # fmt: skip
    return send(prog, target, messages) is not None
