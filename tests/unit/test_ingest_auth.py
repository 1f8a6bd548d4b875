"""Webhook authenticity per vendor (`cxpulse.ingest.auth`), and where each vendor puts the
ticket id (`cxpulse.ingest.keys`). Signatures are computed here independently of `sign`
from the vendors' documented formulas, so a mistake in both cannot agree by accident."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cxpulse.ingest.auth import FORGED, MISSING, NOT_CONFIGURED, STALE, sign, verify, verify_any
from cxpulse.ingest.keys import ticket_key
from cxpulse.settings import SettingsError, refuse_secret_on_command_line

NOW = 1_765_000_000.0
BODY = b'{"ticket":{"id":7}}'
KEY = b"s3cret"


def test_zendesk_documented_formula() -> None:
    ts = "2025-12-06T05:46:40Z"  # == NOW
    sig = base64.b64encode(hmac.new(KEY, ts.encode() + BODY, hashlib.sha256).digest()).decode()
    headers = {"X-Zendesk-Webhook-Signature": sig, "X-Zendesk-Webhook-Signature-Timestamp": ts}
    assert verify("zendesk", headers, BODY, KEY, NOW, 300) is None
    assert verify("zendesk", headers, BODY + b" ", KEY, NOW, 300) == FORGED
    assert verify("zendesk", headers, BODY, b"other", NOW, 300) == FORGED
    assert verify("zendesk", headers, BODY, KEY, NOW + 301, 300) == STALE
    assert verify("zendesk", {"X-Zendesk-Webhook-Signature": sig}, BODY, KEY, NOW, 300) == MISSING
    assert verify("zendesk", headers, BODY, None, NOW, 300) == NOT_CONFIGURED


def test_chatwoot_documented_formula() -> None:
    ts = str(int(NOW))
    sig = "sha256=" + hmac.new(KEY, f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = {"X-Chatwoot-Signature": sig, "X-Chatwoot-Timestamp": ts}
    assert verify("chatwoot", headers, BODY, KEY, NOW, 300) is None
    assert verify("chatwoot", headers, BODY, KEY, NOW - 400, 300) == STALE
    assert verify("chatwoot", {**headers, "X-Chatwoot-Timestamp": str(int(NOW) + 1)}, BODY, KEY,
                  NOW, 300) == FORGED  # fmt: skip
    assert verify("chatwoot", {}, BODY, KEY, NOW, 300) == MISSING


def test_zammad_and_freshdesk() -> None:
    sig = "sha1=" + hmac.new(KEY, BODY, hashlib.sha1).hexdigest()
    assert verify("zammad", {"X-Hub-Signature": sig}, BODY, KEY, NOW, 300) is None
    assert verify("zammad", {"X-Hub-Signature": sig}, BODY[:-1], KEY, NOW, 300) == FORGED
    basic = "Basic " + base64.b64encode(b"any-user:" + KEY).decode()
    assert verify("freshdesk", {"Authorization": basic}, BODY, KEY, NOW, 300) is None
    wrong = "Basic " + base64.b64encode(b"any-user:s3creT").decode()
    assert verify("freshdesk", {"Authorization": wrong}, BODY, KEY, NOW, 300) == FORGED
    assert verify("freshdesk", {"Authorization": "Basic !!"}, BODY, KEY, NOW, 300) == FORGED
    assert verify("freshdesk", {}, BODY, KEY, NOW, 300) == MISSING


@pytest.mark.parametrize("vendor", ["zendesk", "chatwoot", "zammad", "freshdesk"])
def test_sign_agrees_with_verify(vendor: str) -> None:
    ts = "2025-12-06T05:46:40Z" if vendor == "zendesk" else str(int(NOW))
    assert verify(vendor, sign(vendor, KEY, BODY, ts), BODY, KEY, NOW, 300) is None


@pytest.mark.parametrize(("vendor", "body", "key"), [
    ("zendesk", {"subject": "zen:ticket:5158", "detail": {"id": "5158"}}, "5158"),
    ("zendesk", {"detail": {"id": "12"}}, "12"),
    ("chatwoot", {"event": "conversation_status_changed", "id": 7}, "7"),
    ("chatwoot", {"event": "message_created", "id": 222, "conversation": {"id": 5}}, "5"),
    ("chatwoot", {"message": {"event": "message.created",
                              "data": {"id": 1, "conversation_id": 9}}}, "9"),
    ("freshdesk", {"data": {"conversation": {"ticket_id": 3}}}, "3"),
    ("zammad", {"ticket": {"id": 44, "number": "31044"}}, "44"),
    ("zammad", {"ticket": {"id": True}}, None),
    ("zendesk", {"type": "ping"}, None),
])  # fmt: skip
def test_ticket_key(vendor: str, body: dict[str, object], key: str | None) -> None:
    assert ticket_key(vendor, body) == key


def test_webhook_secrets_are_refused_on_the_command_line() -> None:
    for name in ("zendesk_webhook_secret", "chatwoot_webhook_secret",
                 "freshdesk_webhook_password", "zammad_webhook_secret"):  # fmt: skip
        with pytest.raises(SettingsError, match="not accepted on the command line"):
            refuse_secret_on_command_line(name)


def test_any_of_several_secrets_and_the_most_telling_reason() -> None:
    ts = "2025-12-06T05:46:40Z"
    headers = sign("zendesk", b"second", BODY, ts)
    assert verify_any("zendesk", headers, BODY, [b"first", b"second"], NOW, 300) is None
    assert verify_any("zendesk", headers, BODY, [b"first", b"third"], NOW, 300) == FORGED
    assert verify_any("zendesk", headers, BODY, [b"second", b"x"], NOW + 999, 300) == STALE
    assert verify_any("zendesk", headers, BODY, [], NOW, 300) == NOT_CONFIGURED


def test_key_partitioner_picks_the_partition_kafka_clients_pick() -> None:
    """murmur2 of the key, positive, modulo the partition count (Kafka's Java
    `Utils.toPositive(Utils.murmur2(key)) % numPartitions`), remembered or not."""
    from aiokafka.partitioner import murmur2
    from cxpulse.ingest.gateway import KeyPartitioner

    part = KeyPartitioner(size=3)
    parts = list(range(12))
    keys = [str(i).encode() for i in range(50)] * 2  # second round: remembered, then cleared
    assert [part(k, parts, parts) for k in keys] == [(murmur2(k) & 0x7FFFFFFF) % 12 for k in keys]
    # a vector of Kafka's own murmur2 test (UtilsTest): "foobar" -> -790332482
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert part(None, parts, [3]) == 3
