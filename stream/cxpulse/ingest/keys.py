"""The vendor's ticket id of a delivery: the Kafka key of the raw-deliveries topic.

Why the gateway keys by ticket: every delivery of one ticket lands on one
partition, in arrival order, so the map stage's owner of that partition sees a
ticket's deliveries in order and alone holds its previous Zammad snapshot. The
gateway does not map anything: this only looks where each vendor puts the id
(docs/helpdesks.md). None when there is none (a vendor's test ping, a contact
event): the delivery is still kept, and the map stage says what it is.
"""

from __future__ import annotations

from typing import Any

VENDORS = ("zendesk", "chatwoot", "freshdesk", "zammad")


def _dig(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str) and str(value).strip():
        return str(value).strip()[:128]
    return None


def ticket_key(vendor: str, body: Any) -> str | None:
    """The ticket id (as text) in a parsed delivery, or None."""
    if not isinstance(body, dict):
        return None
    candidates: list[Any] = []
    if vendor == "zendesk":
        subject = body.get("subject")
        if isinstance(subject, str) and subject.startswith("zen:ticket:"):
            candidates.append(subject.removeprefix("zen:ticket:"))
        candidates += [_dig(body, "detail", "id"), _dig(body, "ticket", "id"),
                       body.get("ticket_id")]  # fmt: skip
    elif vendor == "chatwoot":
        event = body.get("event")
        if isinstance(event, str) and event.startswith("conversation_"):
            candidates.append(body.get("id"))
        candidates += [_dig(body, "conversation", "id"), body.get("conversation_id"),
                       _dig(body, "csat_survey_response", "conversation_id"),
                       _dig(body, "message", "data", "conversation_id"),
                       _dig(body, "message", "data", "id")]  # fmt: skip
    elif vendor == "freshdesk":
        candidates += [_dig(body, "data", "ticket", "id"),
                       _dig(body, "data", "conversation", "ticket_id"),
                       _dig(body, "data", "survey_result", "ticket_id"),
                       _dig(body, "freshdesk_webhook", "ticket_id"),
                       _dig(body, "ticket", "id")]  # fmt: skip
    elif vendor == "zammad":
        candidates += [_dig(body, "ticket", "id")]
    for c in candidates:
        found = _text(c)
        if found is not None:
            return found
    return None
