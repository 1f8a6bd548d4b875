"""Helpdesk payloads -> contract events, shared by `cxpulse map` (live) and `cxpulse import`.

One module per vendor (`zendesk`, `chatwoot`, `freshdesk`, `zammad`), each a pure
function of the parsed delivery and the deployment's mapping (`mapping.py`);
Zammad's also of the ticket's previous snapshot. No Kafka, no clock here.
Imports only core (timestamps) and the mapping file's model.
"""

from __future__ import annotations

import json

from cxpulse.helpdesks import chatwoot, freshdesk, zammad, zendesk
from cxpulse.helpdesks.common import Mapped, Unmappable, role_and_key
from cxpulse.helpdesks.mapping import Mapping, MappingError, load_mapping
from cxpulse.jsontypes import JSON

VENDORS = ("zendesk", "chatwoot", "freshdesk", "zammad")

__all__ = ["VENDORS", "Mapped", "Mapping", "MappingError", "Unmappable", "load_mapping",
           "map_delivery", "parse", "role_and_key"]  # fmt: skip


def parse(value: bytes | None) -> JSON:
    """The delivery's JSON object (the gateway checked it; a replayed topic may not be)."""
    try:
        body = json.loads(value or b"")
    except (UnicodeDecodeError, ValueError):
        raise Unmappable("not_json", "the delivery is not JSON") from None
    if not isinstance(body, dict):
        raise Unmappable("not_object", "the delivery is not a JSON object")
    return body


def map_delivery(vendor: str, body: JSON, mapping: Mapping,
                 previous: JSON | None = None) -> Mapped:  # fmt: skip
    """Contract events of one delivery; raises `Unmappable` with the reason."""
    try:
        if vendor == "zendesk":
            return zendesk.map_webhook(body, mapping)
        if vendor == "chatwoot":
            return chatwoot.map_webhook(body, mapping)
        if vendor == "freshdesk":
            return freshdesk.map_webhook(body, mapping)
        if vendor == "zammad":
            return zammad.map_webhook(body, mapping, previous)
    except Unmappable:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        # a shape no mapper expected: dead-lettered with the kind of error, never a crash
        raise Unmappable("unexpected_shape", f"{vendor} delivery of an unexpected shape "
                         f"({type(exc).__name__})") from None  # fmt: skip
    raise Unmappable("unknown_vendor", "no cxpulse-vendor header naming a known vendor")
