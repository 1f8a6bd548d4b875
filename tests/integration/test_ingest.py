"""`cxpulse ingest` over real HTTP against the real broker: authenticate, persist, then ack.

What a helpdesk admin relies on: a delivery answered 200 is in Kafka (raw bytes,
key = ticket id); anything refused (401, 4xx, 413) left nothing on the topic and
was counted; while Kafka is down the answer is 503 (the vendor retries) and
/healthz says so; SIGTERM stops it with 0.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_sync
from tests.support.ingest import Ingest, signed_headers
from tests.support.kafka_io import read_records

pytestmark = pytest.mark.kafka

DELIVERIES = "cxpulse_ingest_deliveries_total"
ZENDESK = {"id": "0b1c", "type": "zen:event-type:ticket.created", "subject": "zen:ticket:41",
           "time": "2026-12-06T09:00:00.000000000Z", "detail": {"id": "41"},
           "event": {}}  # fmt: skip
CHATWOOT = {"event": "conversation_created", "id": 42, "status": "open"}
FRESHDESK = {"event": "onTicketCreate", "timestamp": 1765000000000,
             "data": {"ticket": {"id": 43}}}  # fmt: skip
ZAMMAD = {"ticket": {"id": 44, "number": "31044"}, "article": None}
PAYLOADS = {"zendesk": ZENDESK, "chatwoot": CHATWOOT, "freshdesk": FRESHDESK, "zammad": ZAMMAD}


@pytest.fixture
def ingest(kafka_bootstrap: str, topic_factory: Callable[..., str],
           tmp_path: Path) -> Iterator[Ingest]:  # fmt: skip
    gw = Ingest(kafka_bootstrap, topic_factory("raw", 2), tmp_path).start()
    try:
        yield gw
    finally:
        gw.stop()


def raw_records(bootstrap: str, topic: str, expected: int) -> list[object]:
    return run_sync(read_records(bootstrap, [topic], expected, timeout=20))


def test_signed_deliveries_are_persisted_and_forged_ones_refused(
    ingest: Ingest, kafka_bootstrap: str
) -> None:
    for vendor, payload in PAYLOADS.items():
        body = json.dumps(payload).encode()
        status, _ = ingest.post(vendor, body, signed_headers(vendor, body))
        assert status == 200, (vendor, status, ingest.log_text())
        # missing: no credential headers at all
        assert ingest.post(vendor, body)[0] == 401, vendor
        # forged: a valid signature of other bytes (the body was tampered with);
        # Freshdesk signs nothing: its forgery is a wrong basic-auth password
        other = signed_headers(vendor, body + b" ")
        if vendor == "freshdesk":
            other = {"Authorization": "Basic " + base64.b64encode(b"freshdesk:guess").decode()}
        status, text = ingest.post(vendor, body, other)
        assert status == 401 and "forged" in text, (vendor, status, text)
    # stale / replayed outside the window: correctly signed, timestamp 10 minutes old
    for vendor in ("zendesk", "chatwoot"):
        body = json.dumps(PAYLOADS[vendor]).encode()
        status, text = ingest.post(vendor, body, signed_headers(vendor, body, offset_s=-600))
        assert (status, text.strip()) == (401, "unauthorized: stale"), vendor
        assert ingest.post(vendor, body, signed_headers(vendor, body, offset_s=+600))[0] == 401
    records = raw_records(kafka_bootstrap, ingest.raw_topic, 4)
    got = {dict(r.headers)["cxpulse-vendor"].decode(): r for r in records}  # type: ignore[attr-defined]
    assert len(records) == 4 and set(got) == set(PAYLOADS)
    for vendor, r in got.items():
        assert r.value == json.dumps(PAYLOADS[vendor]).encode()  # type: ignore[attr-defined]
        assert r.key == {"zendesk": b"41", "chatwoot": b"42", "freshdesk": b"43",  # type: ignore[attr-defined]
                         "zammad": b"44"}[vendor]  # fmt: skip
        names = {k for k, _ in r.headers}  # type: ignore[attr-defined]
        assert not names & {"authorization", "x-hub-signature", "x-chatwoot-signature",
                            "x-zendesk-webhook-signature"}  # fmt: skip
    for vendor in PAYLOADS:
        assert ingest.counter(DELIVERIES, vendor=vendor, outcome="accepted") == 1
    assert ingest.counter(DELIVERIES, outcome="unauthorized") == 4 * 2 + 2 * 2
    log = ingest.log_text()
    for secret in ("zd-signing-secret", "cw-secret", "fd-password", "zm-secret"):
        assert secret not in log


def test_bad_input_is_refused_counted_and_produces_nothing(
    ingest: Ingest, kafka_bootstrap: str
) -> None:
    big = b'{"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    status, _ = ingest.post("zendesk", big, signed_headers("zendesk", big))
    assert status in (413, -1)  # aiohttp may close the connection after the 413 head
    assert ingest.counter(DELIVERIES, vendor="zendesk", outcome="too_large") == 1
    body = b'{"ticket": {"id": 5}}'
    assert ingest.post("zammad", body, signed_headers("zammad", body),
                       content_type="text/plain")[0] == 415  # fmt: skip
    bad = b'{"ticket": '
    status, text = ingest.post("zammad", bad, signed_headers("zammad", bad))
    assert (status, text.strip()) == (400, "body is not valid JSON")
    arr = b"[1, 2]"
    assert ingest.post("zammad", arr, signed_headers("zammad", arr))[0] == 400
    status, text = ingest.post("intercom", body, {})
    assert status == 404 and "/webhooks/{zendesk,chatwoot,freshdesk,zammad}" in text
    assert ingest.counter(DELIVERIES, vendor="zammad", outcome="bad_content_type") == 1
    assert ingest.counter(DELIVERIES, vendor="zammad", outcome="bad_json") == 2
    assert ingest.counter(DELIVERIES, vendor="unknown", outcome="unknown_vendor") == 1
    # still serving, and a good delivery after all that is the only record
    assert ingest.post_signed("zammad", body)[0] == 200
    records = raw_records(kafka_bootstrap, ingest.raw_topic, 1)
    assert [r.value for r in records] == [body]  # type: ignore[attr-defined]


def test_broker_down_503_then_every_retried_delivery_is_in_kafka(
    kafka_broker: object, kafka_bootstrap: str, topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:  # fmt: skip
    """Last in the file: it stops the session's broker (its address and data survive)."""
    gw = Ingest(kafka_bootstrap, topic_factory("raw", 2), tmp_path).start()
    try:
        first = {"ticket": {"id": 1}, "n": 0}
        assert gw.post_signed("zammad", json.dumps(first).encode())[0] == 200
        kafka_broker.stop()  # type: ignore[attr-defined]
        pending = [{"ticket": {"id": n % 3}, "n": n} for n in range(1, 7)]
        answers = [gw.post_signed("zammad", json.dumps(p).encode())[0] for p in pending[:2]]
        assert answers == [503, 503], answers
        deadline = time.monotonic() + 15
        while gw.get("/healthz")[0] != 503:
            assert time.monotonic() < deadline, "healthz stayed 200 with the broker down"
            time.sleep(0.5)
        kafka_broker.start()  # type: ignore[attr-defined]
        # a client that retries like the vendors: until 2xx, with a pause
        for p in pending:
            deadline = time.monotonic() + 90
            while gw.post_signed("zammad", json.dumps(p).encode())[0] != 200:
                assert time.monotonic() < deadline, gw.log_text()[-3000:]
                time.sleep(1)
        assert gw.get("/healthz")[0] == 200
        records = raw_records(kafka_bootstrap, gw.raw_topic, 7)
        seen = {json.loads(r.value)["n"] for r in records}  # type: ignore[attr-defined]
        assert seen == set(range(7))  # none lost; a timed-out try may be there twice
        assert gw.counter(DELIVERIES, vendor="zammad", outcome="unavailable") >= 2
        assert gw.counter("cxpulse_ingest_produce_failures_total") >= 2
    finally:
        assert gw.stop() == 0
