"""Is a webhook delivery really from the helpdesk? Each vendor's documented mechanism.

- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp +
  body)), the timestamp in `X-Zendesk-Webhook-Signature-Timestamp`; replay window.
- Chatwoot: `X-Chatwoot-Signature` = `sha256=` hex(HMAC-SHA256(secret,
  `{timestamp}.{body}`)), unix seconds in `X-Chatwoot-Timestamp`; replay window.
- Freshdesk: signs nothing; its webhook action's "Requires authentication" sends
  HTTP basic auth, whose password is checked.
- Zammad: `X-Hub-Signature` = `sha1=` hex(HMAC-SHA1(secret, body)).

Where the vendor sends no timestamp (Freshdesk, Zammad) a replayed delivery is
still authentic bytes: it cannot be refused here, and need not be, because the
map stage derives every event id from the vendor's own ids, so a replay is a
duplicate that changes no KPI. Comparisons are constant-time; no function here
returns, logs or raises anything containing a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

#: reasons a delivery is refused (401); each is a short word, safe to log
MISSING, FORGED, STALE, NOT_CONFIGURED = "missing", "forged", "stale", "not_configured"


@functools.lru_cache(maxsize=64)
def _keyed(secret: bytes, digest: Callable[..., Any]) -> hmac.HMAC:
    """An HMAC with the key already absorbed: `.copy()` of it per delivery skips the
    key schedule (two hash blocks) that `hmac.new` redoes every time."""
    return hmac.new(secret, digestmod=digest)


def _mac(secret: bytes, digest: Callable[..., Any], *parts: bytes) -> hmac.HMAC:
    mac = _keyed(secret, digest).copy()
    for part in parts:
        mac.update(part)
    return mac


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if value else None


def parse_timestamp(text: str) -> float | None:
    """Unix seconds (`1733456789`) or ISO 8601 with an offset (`2026-12-06T02:00:00Z`)."""
    if text.isdigit():
        return float(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo is not None else None


def verify(
    vendor: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes | None,
    now: float,
    window_s: float,
) -> str | None:
    """None when authentic, else the reason (`missing`, `forged`, `stale`, `not_configured`).

    `headers` must be case-insensitive (aiohttp's are). `now` is unix seconds.
    """
    if secret is None:
        return NOT_CONFIGURED
    if vendor == "zendesk":
        sig = _header(headers, "X-Zendesk-Webhook-Signature")
        ts = _header(headers, "X-Zendesk-Webhook-Signature-Timestamp")
        if not sig or not ts:
            return MISSING
        want = base64.b64encode(_mac(secret, hashlib.sha256, ts.encode(), body).digest())
        return _fresh(ts, now, window_s) if hmac.compare_digest(want, sig.encode()) else FORGED
    if vendor == "chatwoot":
        sig = _header(headers, "X-Chatwoot-Signature")
        ts = _header(headers, "X-Chatwoot-Timestamp")
        if not sig or not ts:
            return MISSING
        digest = _mac(secret, hashlib.sha256, ts.encode(), b".", body).hexdigest()
        ok = hmac.compare_digest(("sha256=" + digest).encode(), sig.encode())
        return _fresh(ts, now, window_s) if ok else FORGED
    if vendor == "zammad":
        sig = _header(headers, "X-Hub-Signature")
        if not sig:
            return MISSING
        digest = _mac(secret, hashlib.sha1, body).hexdigest()
        return None if hmac.compare_digest(("sha1=" + digest).encode(), sig.encode()) else FORGED
    if vendor == "freshdesk":
        auth = _header(headers, "Authorization")
        if not auth or not auth.startswith("Basic "):
            return MISSING
        try:
            _, sep, password = base64.b64decode(auth[6:], validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return FORGED
        return None if sep and hmac.compare_digest(password, secret) else FORGED
    return NOT_CONFIGURED


def verify_any(vendor: str, headers: Mapping[str, str], body: bytes, secrets: list[bytes],
               now: float, window_s: float) -> str | None:  # fmt: skip
    """`verify` against each configured secret (Zendesk gives each webhook its own: one
    for the event subscription, one for the CSAT trigger); None when one accepts."""
    reason = NOT_CONFIGURED
    for secret in secrets:
        found = verify(vendor, headers, body, secret, now, window_s)
        if found is None:
            return None
        if found != FORGED or reason == NOT_CONFIGURED:
            reason = found  # the most telling: stale (signed by us) over forged
    return reason


def _fresh(ts: str, now: float, window_s: float) -> str | None:
    """A correctly signed timestamp still has to be recent: else a replay (or a clock)."""
    at = parse_timestamp(ts)
    if at is None or abs(now - at) > window_s:
        return STALE
    return None


def sign(vendor: str, secret: bytes, body: bytes, ts: str) -> dict[str, str]:
    """The headers the vendor would send (tests, the benchmark, `cxpulse demo`)."""
    if vendor == "zendesk":
        sig = base64.b64encode(hmac.new(secret, ts.encode() + body, hashlib.sha256).digest())
        return {"X-Zendesk-Webhook-Signature": sig.decode(),
                "X-Zendesk-Webhook-Signature-Timestamp": ts}  # fmt: skip
    if vendor == "chatwoot":
        digest = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"X-Chatwoot-Signature": "sha256=" + digest, "X-Chatwoot-Timestamp": ts}
    if vendor == "zammad":
        return {"X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()}
    if vendor == "freshdesk":
        return {"Authorization": "Basic " + base64.b64encode(b"freshdesk:" + secret).decode()}
    raise ValueError(vendor)
