"""Pure parts of `cxpulse.kafka.access`: the rotation watch's state machine and the
one-line naming of a missing ACL (the broker side is tests/integration/test_worker_acls.py)."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka import errors as ke
from cxpulse.kafka.access import (
    EXIT_CONFIG,
    EXIT_NOPERM,
    AuthWatch,
    KafkaAccessError,
    Security,
    authorization_error,
)
from cxpulse.settings import load_settings

SEC = Security("127.0.0.1:1", "SASL_SSL", "SCRAM-SHA-512", {})
REFUSED = KafkaAccessError(EXIT_NOPERM, "authentication failed at 127.0.0.1:1: ...")


def test_refusals_make_it_failing_at_once_and_exit_only_after_the_grace() -> None:
    w = AuthWatch(SEC, exit_after_s=300)
    assert not w.failing and w.failures == 0
    assert w.observe(False, REFUSED, now=1000) is None
    assert w.failing and w.failures == 1  # not ready from the first refusal
    assert w.observe(False, None, now=1100) is None  # no answer: unknown, not counted
    assert w.failing and w.failures == 1
    assert w.observe(False, REFUSED, now=1299) is None
    verdict = w.observe(False, REFUSED, now=1300)
    assert verdict is not None and verdict.code == EXIT_NOPERM
    assert str(verdict).startswith("authentication failed") and "while running" in str(verdict)


def test_an_accepted_probe_before_the_grace_recovers() -> None:
    w = AuthWatch(SEC, exit_after_s=300)
    w.observe(False, REFUSED, now=1000)
    assert w.observe(True, None, now=1200) is None
    assert not w.failing and w.failures == 1  # the counter keeps the history
    # a new run of refusals starts its own grace period
    assert w.observe(False, REFUSED, now=1250) is None
    assert w.observe(False, REFUSED, now=1500) is None
    tls = KafkaAccessError(EXIT_CONFIG, "ssl_cafile: the certificate ... does not verify")
    verdict = w.observe(False, tls, now=1550)
    assert verdict is not None and verdict.code == EXIT_CONFIG  # the latest cause's code


def test_missing_acls_are_named_as_the_readme_names_them() -> None:
    s = load_settings(None, {}, {"group_id": "g", "topic_tickets": "t", "topic_surveys": "s",
                                 "topic_deadletter": "dl"})  # fmt: skip
    cases = [
        (ke.GroupAuthorizationFailedError("g"), "Read on group 'g'"),
        (ke.TransactionalIdAuthorizationFailed(),
         "Write on TransactionalId prefix 'g-state-changelog-'"),
        (ke.TopicAuthorizationFailedError({"g-state-changelog"}),
         "Write on topic 'g-state-changelog'"),
        (ke.TopicAuthorizationFailedError("dl"), "Write on topic 'dl' (topic_deadletter)"),
        (ke.TopicAuthorizationFailedError("t"), "Read on topic 't' (topic_tickets)"),
        # faust names the topic in a sentence when it cannot create it
        (ke.TopicAuthorizationFailedError(
            "Cannot create topic: g-state-changelog (29): Authorization failed."),
         "grant Create on topic 'g-state-changelog' (the state changelog)"),
        (ke.TopicAuthorizationFailedError("other"), "grant access to topic(s) ['other']"),
    ]
    for exc, phrase in cases:
        found = authorization_error(exc, s)
        assert found is not None and found.code == EXIT_NOPERM
        assert str(found).startswith("not authorized: ") and phrase in str(found), str(found)
    # the exporter only reads: the grants of its own table
    for exc, phrase in [
        (ke.TopicAuthorizationFailedError({"g-state-changelog"}),
         "grant Read on topic 'g-state-changelog' (the state changelog)"),
        (ke.TopicAuthorizationFailedError("s"), "grant Describe on topic 's' (topic_surveys"),
        # end offsets refused (Describe revoked while it runs): aiokafka names a TopicPartition
        (ke.TopicAuthorizationFailedError(TopicPartition("t", 0)),
         "grant Describe on topic 't' (topic_tickets"),
        (ke.TopicAuthorizationFailedError({TopicPartition("t", 1)}),
         "grant Describe on topic 't' (topic_tickets"),
    ]:  # fmt: skip
        found = authorization_error(exc, s, exporter=True)
        assert found is not None and found.code == EXIT_NOPERM and phrase in str(found), found
    # found through the cause chain (a gather, a future re-raised)
    try:
        try:
            raise ke.GroupAuthorizationFailedError("g")
        except ke.KafkaError as inner:
            raise RuntimeError("batch") from inner
    except RuntimeError as outer:
        assert authorization_error(outer, s) is not None
    # the committed-offset fetch at a rebalance wraps the answer as KafkaError(repr(error)),
    # naming no topic (seen when Read on the input topic is revoked mid-rebalance)
    wrapped = authorization_error(ke.KafkaError(repr(ke.TopicAuthorizationFailedError())), s)
    assert wrapped is not None and wrapped.code == EXIT_NOPERM
    assert "grant Read on topic 't' (topic_tickets) and on topic 's'" in str(wrapped), wrapped
    assert authorization_error(ke.KafkaError("NotLeaderForPartitionError()"), s) is None
    assert authorization_error(ke.KafkaTimeoutError(), s) is None
    assert authorization_error(ValueError("x"), s) is None


def test_create_topics_error_codes_are_read() -> None:
    """CreateTopics answers per topic with an error code (aiokafka does not raise)."""
    from types import SimpleNamespace

    import pytest
    from cxpulse.kafka.topics import created_or_raise

    def resp(code: int, message: str = "") -> SimpleNamespace:
        return SimpleNamespace(topic_errors=[("g-state-changelog", code, message)])

    assert created_or_raise(resp(0), "g-state-changelog", "the changelog topic") is True
    # another worker won the race
    assert created_or_raise(resp(36), "g-state-changelog", "the changelog topic") is False
    with pytest.raises(KafkaAccessError) as err:
        created_or_raise(resp(29, "Authorization failed."), "g-state-changelog",
                         "the changelog topic")
    assert err.value.code == EXIT_NOPERM and "grant Create on it" in str(err.value)
    with pytest.raises(KafkaAccessError) as err:
        created_or_raise(resp(38, "Replication factor: 3 larger than available brokers: 1."),
                         "g-state-changelog", "the changelog topic")  # fmt: skip
    assert err.value.code == 2 and str(err.value).startswith("changelog_replication: ")
