"""Start-up checks against the broker that every serving command shares.

The worker runtimes and the exporter must refuse to start for the same causes
with the same line (a missing topic, a partition mismatch, a hidden topic that
means a missing grant), so the checks live here, beside the connection
helpers, and not in either of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from cxpulse.kafka.access import EXIT_NOPERM, EXIT_SETTINGS, KafkaAccessError
from cxpulse.settings import Settings


class StartupError(RuntimeError):
    """The environment does not allow starting (topics missing, partition mismatch)."""


async def topic_partitions(
    settings: Settings, names: Iterable[str], unauthorized: set[str] | None = None
) -> dict[str, int | None]:
    """Partition count of each topic (None when it does not exist or is not visible).

    Topics the broker hides because this user may not Describe them (no ACL)
    are added to `unauthorized`: with ACLs, "does not exist" would send the
    reader looking for a typo instead of a missing grant.
    """
    # aiokafka: not imported at `--help` time
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.metadata import MetadataRequest

    names = list(names)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        # describe only existing topics: a metadata request for a missing one
        # makes a broker with auto.create.topics.enable create it, with the
        # default partition count (a changelog with the wrong count)
        existing = set(await admin.list_topics())
        wanted = [n for n in names if n in existing]
        described = await admin.describe_topics(wanted) if wanted else []
        hidden = [n for n in names if n not in existing]
        if hidden and unauthorized is not None:
            # named, without auto-creation: TOPIC_AUTHORIZATION_FAILED (29) when
            # not allowed to see it, whether it exists or not
            meta = await admin._send_request(MetadataRequest(hidden, False))
            for t in meta.to_object()["topics"]:
                if t.get("error_code") == 29:
                    unauthorized.add(t["topic"])
    finally:
        await admin.close()
    out: dict[str, int | None] = dict.fromkeys(names)
    for t in described:
        ok = t.get("error_code", 0) == 0 and t.get("partitions")
        out[t["topic"]] = len(t["partitions"]) if ok else None
    return out


async def check_group_access(settings: Settings) -> None:
    """Raise the aiokafka authorization error when the broker refuses `group_id`.

    One FindCoordinator request (it needs Describe on the group, which the
    README's Read implies). Why before faust starts: faust's consumer keeps
    aiokafka's GroupAuthorizationFailedError pending until the next fetch, and
    faust only fetches once the group has assigned partitions, so without this
    a faust worker missing the group ACL waits for ever, silently. Any other
    answer (a coordinator not available yet) is left to the consumer.
    """
    # aiokafka: not imported at `--help` time
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import GroupAuthorizationFailedError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    try:
        await admin.start()
        await admin.find_coordinator(settings.group_id)
    except GroupAuthorizationFailedError:
        raise
    except Exception:  # noqa: S110 - not an ACL answer: the consumer deals with it
        pass
    finally:
        await admin.close()


async def deadletter_limit(settings: Settings) -> int:
    """The largest dead letter to send as a copy: `deadletter_max_bytes`, or the
    dead-letter topic's own `max.message.bytes` if that is smaller (a copy the
    topic refuses would fail the batch and crash-loop the worker)."""
    topic_max = await topic_max_message_bytes(settings, settings.topic_deadletter)
    limit = settings.deadletter_max_bytes
    return topic_max if topic_max is not None and topic_max < limit else limit


async def topic_max_message_bytes(settings: Settings, topic: str) -> int | None:
    """The topic's `max.message.bytes` (None: not readable, e.g. no DescribeConfigs ACL)."""
    # aiokafka: not imported at `--help` time
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        # `configs` is a mapping (a list raised inside aiokafka, and a bare
        # `except Exception` here hid that: the topic's limit was never read)
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})]
        )
    except KafkaError:  # an authorization or version error: the setting alone then
        return None
    finally:
        await admin.close()
    for resp in responses:
        for resource in resp.resources:
            if resource[0] != 0:  # error code
                return None
            for entry in resource[4]:
                if entry[0] == "max.message.bytes" and entry[1] is not None:
                    return int(entry[1])
    return None


async def check_topics(settings: Settings, input_grant: str = "Read") -> int:
    """Fail clearly unless the input topics exist and are co-partitioned.

    Returns the common partition count. `input_grant` is the ACL a hidden
    input topic lacks: Read for a worker, Describe for the exporter (end
    offsets only). The changelog, when it exists already,
    must have the same count: state of partition p lives in changelog
    partition p (faust would otherwise crash the agent later with
    PartitionsMismatch, in the middle of processing).
    """
    names = [settings.topic_tickets, settings.topic_surveys, settings.changelog_topic]
    hidden: set[str] = set()
    counts = await topic_partitions(settings, names, hidden)
    for setting in ("topic_tickets", "topic_surveys"):
        name = getattr(settings, setting)
        if name in hidden:
            raise KafkaAccessError(
                EXIT_NOPERM,
                f"not authorized: the broker hides topic {name!r} from this user; "
                f"grant {input_grant} on topic {name!r} ({setting})",
            )
    nt, ns = counts.get(settings.topic_tickets), counts.get(settings.topic_surveys)
    if nt is None:
        raise StartupError(f"topic_tickets: topic {settings.topic_tickets!r} does not exist")
    if ns is None:
        raise StartupError(f"topic_surveys: topic {settings.topic_surveys!r} does not exist")
    if nt != ns:
        raise StartupError(
            f"topic_surveys: {settings.topic_surveys!r} has {ns} partitions but "
            f"{settings.topic_tickets!r} has {nt}; both must have the same count "
            "(state of a ticket is kept per partition number)"
        )
    nc = counts.get(settings.changelog_topic)
    if nc is not None and nc != nt:
        raise StartupError(
            f"group_id: changelog topic {settings.changelog_topic!r} has {nc} partitions but "
            f"the input topics have {nt}; use a new group_id/state_table or recreate it"
        )
    return nt


async def ensure_compacted_topic(settings: Settings, topic: str, partitions: int,
                                 what: str) -> bool:  # fmt: skip
    """Create `topic` compacted with `partitions` partitions unless it exists; True when
    this call created it (False: it existed, or another process won the race).

    The worker's changelog and the map stage's snapshot topic are created this way, with
    `changelog_replication` replicas. A refusal is one `KafkaAccessError` line naming
    `what` (see `created_or_raise`)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # not loaded at `--help`
    from aiokafka.errors import TopicAlreadyExistsError

    s = settings
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers, **s.aiokafka_security())
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            return False
        new = NewTopic(topic, partitions, s.changelog_replication,
                       topic_configs={"cleanup.policy": "compact"})  # fmt: skip
        try:
            response = await admin.create_topics([new])
        except TopicAlreadyExistsError:
            return False
        return created_or_raise(response, topic, what)
    finally:
        await admin.close()


def created_or_raise(response: object, topic: str, what: str) -> bool:
    """True: created; False: it exists already (error 36: another process won the race).

    aiokafka returns the broker's per-topic error codes instead of raising:
    without Create on the changelog topic the worker used to log "created"
    and fail 40 s later. Any other code ends the start with one line naming
    the topic: 77 for a missing permission, 2 for a setting the broker
    refuses (e.g. `changelog_replication` above the number of brokers)."""
    from aiokafka.errors import for_code  # aiokafka: not loaded at `--help`

    created = True
    for entry in getattr(response, "topic_errors", []):
        code = entry[1]
        if code == 0:
            continue
        if code == 36:  # TOPIC_ALREADY_EXISTS
            created = False
            continue
        if code in (29, 31):  # TOPIC_ / CLUSTER_AUTHORIZATION_FAILED
            raise KafkaAccessError(
                EXIT_NOPERM,
                f"not authorized to create {what} {topic!r}: grant Create on it "
                "(or create it beforehand, compacted, with the input topics' partition count)",
            )
        detail = entry[2] if len(entry) > 2 and entry[2] else ""
        setting = "changelog_replication: " if code == 38 else ""  # INVALID_REPLICATION_FACTOR
        raise KafkaAccessError(
            EXIT_SETTINGS,
            f"{setting}creating {what} {topic!r} failed: "
            f"{for_code(code).__name__}{': ' + detail if detail else ''}",
        )
    return created
