"""Why a Kafka connection fails, in one line, with an exit code a supervisor can read.

aiokafka reports every failure to bootstrap (wrong password, a CA that does
not match, a PLAINTEXT client on a SASL_SSL port, a broker not up yet) as the
same `KafkaConnectionError("Unable to bootstrap ...")`; the cause is only in
a log line. The worker used to retry that for a minute and then print a
traceback. `diagnose` opens one connection itself with the same security
settings and sends one request, so the real exception is in hand and can be
named: credential and TLS problems do not heal by retrying, and are reported
at once; a refused or silent port may be a broker still starting, and is
retried by the caller.

Exit codes (sysexits.h, documented in docs/runbook.md "Worker exit codes"):
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from dataclasses import dataclass

from cxpulse.settings import Settings
from cxpulse.settings.model import ClientOptions

log = logging.getLogger("cxpulse.kafka")

#: a setting is wrong, a topic is missing (not a connection problem)
EXIT_SETTINGS = 2
#: the broker could not be reached at all within the start-up wait
EXIT_UNAVAILABLE = 69
#: credentials refused (authentication failed) or an operation not authorized (ACL)
EXIT_NOPERM = 77
#: TLS or protocol mismatch: wrong CA, TLS against a plain port, PLAINTEXT against SASL
EXIT_CONFIG = 78


class KafkaAccessError(RuntimeError):
    """A connection failure with a cause worth stopping for; `code` is the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Security:
    """What `diagnose` needs of the settings (also usable by replay/simulate)."""

    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str | None
    kwargs: ClientOptions


def classify(
    exc: BaseException, where: str, protocol: str, mechanism: str | None
) -> KafkaAccessError | None:
    """A definite cause for `exc` (None: transient, e.g. refused while the broker starts).

    Messages name the setting to look at and never contain a secret (only
    the host:port, protocol and mechanism, which are not secret).
    """
    from aiokafka import errors as ke  # aiokafka: not imported at `--help` time

    tls = protocol in ("SSL", "SASL_SSL")
    if isinstance(exc, ke.SaslAuthenticationFailed):
        return KafkaAccessError(
            EXIT_NOPERM,
            f"authentication failed at {where}: the broker refused sasl_username/"
            f"sasl_password for {mechanism} (wrong or rotated password, unknown user, "
            "or a user without credentials for this mechanism)",
        )
    if isinstance(exc, ke.UnsupportedSaslMechanismError):
        return KafkaAccessError(
            EXIT_CONFIG,
            f"sasl_mechanism: the listener at {where} does not enable {mechanism}",
        )
    if isinstance(exc, ke.IllegalSaslStateError):
        return KafkaAccessError(
            EXIT_CONFIG,
            f"security_protocol: the listener at {where} does not speak SASL "
            f"({protocol} against a PLAINTEXT/SSL listener?)",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return KafkaAccessError(
            EXIT_CONFIG,
            f"ssl_cafile: the certificate of {where} does not verify: "
            f"{exc.verify_message or exc.reason}",
        )
    if isinstance(exc, ssl.SSLError):
        return KafkaAccessError(
            EXIT_CONFIG,
            f"security_protocol: TLS handshake with {where} failed ({exc.reason}); "
            "is that listener TLS, and ssl_certfile/ssl_keyfile what it expects?",
        )
    if isinstance(exc, ke.TopicAuthorizationFailedError | ke.GroupAuthorizationFailedError):
        return KafkaAccessError(EXIT_NOPERM, f"not authorized: {type(exc).__name__} ({exc})")
    if isinstance(exc, ke.ClusterAuthorizationFailedError | ke.TransactionalIdAuthorizationFailed):
        return KafkaAccessError(EXIT_NOPERM, f"not authorized: {type(exc).__name__} ({exc})")
    closed = isinstance(exc, ConnectionResetError | asyncio.IncompleteReadError) or (
        isinstance(exc, ke.KafkaConnectionError) and "closed" in str(exc).lower()
    )
    if closed:
        if tls:
            return KafkaAccessError(
                EXIT_CONFIG,
                f"security_protocol: {where} closed the connection during the TLS "
                f"handshake ({protocol} against a listener that is not TLS?)",
            )
        return KafkaAccessError(
            EXIT_CONFIG,
            f"security_protocol: {where} closed the connection on the first request: "
            f"the listener expects TLS and/or SASL, not {protocol}",
        )
    return None


async def diagnose(sec: Security, timeout_s: float = 15.0) -> KafkaAccessError | None:
    """Connect to the first bootstrap server and send one metadata request."""
    return (await probe(sec, timeout_s))[1]


async def probe(sec: Security, timeout_s: float = 15.0) -> tuple[bool, KafkaAccessError | None]:
    """(connected and answered, definite cause of a failure or None when transient).

    (True, None): the broker accepts these settings; (False, error): it refuses
    them (credentials, TLS, protocol); (False, None): no answer (down, starting,
    timeout), which says nothing about the credentials.
    """
    # aiokafka: not imported at `--help` time
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    hostport = sec.bootstrap_servers.split(",")[0].strip()
    host, _, port = hostport.rpartition(":")
    conn = None
    # aiokafka logs "Authenticated as ..." (INFO) per connection: 4 lines a
    # minute from `AuthWatch` alone; the probe's outcome is logged by its caller
    conn_log = logging.getLogger("aiokafka.conn")
    level = conn_log.level
    conn_log.setLevel(max(level, logging.WARNING))
    try:
        conn = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **sec.kwargs),
            timeout_s,
        )
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    except Exception as exc:  # classified: unknown ones count as transient
        return False, classify(exc, hostport, sec.security_protocol, sec.sasl_mechanism)
    finally:
        conn_log.setLevel(level)
        if conn is not None:
            conn.close()
    return True, None


class AuthWatch:
    """Does the broker still accept this process's credentials? Checked while it runs.

    Why a probe of its own: aiokafka authenticates a connection once, when it
    opens it. A password rotated (or a user deleted, a certificate changed) on
    the broker shows only when a connection is re-opened, and then aiokafka
    logs the refusal and retries for ever (3 lines a second) while the
    consumer merely looks idle: lag 0, /healthz ok, no alert. Every `every_s`
    this opens one fresh connection with the same settings (`probe`): a
    refusal marks the process failing at once (readiness not-ready,
    `cxpulse_kafka_auth_failing` 1, `cxpulse_kafka_auth_failures_total` +1);
    `exit_after_s` of uninterrupted refusals end it with the refusal's exit
    code (77, or 78 for TLS), since retrying cannot heal a wrong credential;
    an accepted probe before that clears the state (the clients reconnect by
    themselves). A broker that does not answer changes nothing: that is not
    a credential problem (lag and CxpulseWorkerDown cover it).
    """

    def __init__(self, sec: Security, exit_after_s: float, every_s: float = 15.0) -> None:
        self.sec, self.exit_after_s, self.every_s = sec, exit_after_s, every_s
        #: monotonic time of the first refusal of the current run of refusals
        self.failing_since: float | None = None
        #: probes the broker refused, since the start of the process
        self.failures = 0
        self.last: KafkaAccessError | None = None

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def observe(
        self, ok: bool, found: KafkaAccessError | None, now: float
    ) -> KafkaAccessError | None:
        """Fold one probe result in; returns the error to exit with when it is time."""
        if ok:
            if self.failing_since is not None:
                log.warning("kafka: the broker accepts the credentials again; ready")
            self.failing_since, self.last = None, None
            return None
        if found is None:  # no answer: unknown, keep the state as it is
            return None
        self.failures += 1
        self.last = found
        if self.failing_since is None:
            self.failing_since = now
            log.error(
                "kafka: %s; not ready, exiting in %.0fs unless it heals "
                "(runbook: CxpulseKafkaAuthFailing)", found, self.exit_after_s,
            )  # fmt: skip
        if now - self.failing_since >= self.exit_after_s:
            return KafkaAccessError(
                found.code, f"{found} (refused for {now - self.failing_since:.0f}s while running)"
            )
        return None

    async def run(self) -> KafkaAccessError:
        """Probe until the refusals last `exit_after_s`; returns the error to exit with."""
        while True:
            await asyncio.sleep(self.every_s)
            ok, found = await probe(self.sec, min(15.0, self.every_s * 2))
            verdict = self.observe(ok, found, time.monotonic())
            if verdict is not None:
                return verdict


def auth_watch(settings: Settings) -> AuthWatch:
    """The `AuthWatch` of a worker or exporter, from its settings (one place)."""
    return AuthWatch(
        security_of(settings),
        settings.auth_failure_exit_after_ms / 1000,
        settings.auth_probe_interval_ms / 1000,
    )


def _auth_exception(exc: BaseException | None) -> BaseException | None:
    """The aiokafka authorization error in `exc` or its causes (a gather, a future)."""
    from aiokafka import errors as ke  # aiokafka: not imported at `--help` time

    kinds = (
        ke.TopicAuthorizationFailedError, ke.GroupAuthorizationFailedError,
        ke.TransactionalIdAuthorizationFailed, ke.ClusterAuthorizationFailedError,
    )  # fmt: skip
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kinds):
            found: BaseException = exc
            return found
        # aiokafka's committed-offset fetch (at a rebalance) wraps the broker's answer as
        # `KafkaError(repr(error))`: "TopicAuthorizationFailedError()", no topic named
        text = str(exc.args[0]) if type(exc) is ke.KafkaError and exc.args else ""
        for kind in kinds:
            if text.startswith(kind.__name__ + "("):
                wrapped: BaseException = kind()  # aiokafka is untyped
                return wrapped
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def authorization_error(
    exc: BaseException, settings: Settings, *, exporter: bool = False
) -> KafkaAccessError | None:
    """A missing ACL, named as the README's ACL tables name it (None: not an ACL error).

    The broker answers an operation without its ACL with an error code, which
    aiokafka raises wherever the operation happens (a fetch, a send, joining
    the group, a transaction): this turns it into one line saying which
    permission on which resource to grant, instead of a traceback and exit 70
    (or 1) that a restart repeats for ever. `exporter`: the grant the exporter
    needs (it only reads the changelog and the input topics' end offsets).
    """
    from aiokafka import errors as ke  # aiokafka: not imported at `--help` time

    found = _auth_exception(exc)
    if found is None:
        return None
    s = settings
    if isinstance(found, ke.GroupAuthorizationFailedError):
        what = f"Read on group {s.group_id!r} (group_id)"
    elif isinstance(found, ke.TransactionalIdAuthorizationFailed):
        what = f"Write on TransactionalId prefix {s.changelog_topic + '-'!r} (transactional_writes)"
    elif isinstance(found, ke.ClusterAuthorizationFailedError):
        what = (
            "a cluster permission (IdempotentWrite: Write on any topic implies it since Kafka 3.0)"
        )
    else:
        # a topic, a set of them, or a TopicPartition (aiokafka's offset requests:
        # the exporter's end offsets, once Describe on an input topic is revoked)
        arg = _topic_of(found.args[0] if found.args else None)
        names: set[str] = set()
        if isinstance(arg, set | frozenset | list | tuple):
            names = {n for n in map(_topic_of, arg) if isinstance(n, str)}
        need = {
            s.topic_tickets: ("Read", "topic_tickets"),
            s.topic_surveys: ("Read", "topic_surveys"),
            s.changelog_topic: ("Read and Write", "the state changelog"),
            s.topic_deadletter: ("Write", "topic_deadletter"),
        }
        if exporter:
            need = {
                s.topic_tickets: ("Describe", "topic_tickets; end offsets"),
                s.topic_surveys: ("Describe", "topic_surveys; end offsets"),
                s.changelog_topic: ("Read", "the state changelog"),
            }
        creating = False
        if isinstance(arg, str):
            # a bare topic name (aiokafka), or a sentence naming it (faust:
            # "Cannot create topic: <name> (29): Authorization failed.")
            names = {arg} if arg in need else {n for n in need if _names_topic(arg, n)}
            creating = "create topic" in arg.lower()
        known = [
            f"{'Create' if creating else need[n][0]} on topic {n!r} ({need[n][1]})"
            for n in sorted(names) if n in need
        ]  # fmt: skip
        if not names and arg is None and not exporter:
            # the committed-offset fetch of the input topics, which the broker did not name
            known = [f"Read on topic {s.topic_tickets!r} (topic_tickets) and on topic "
                     f"{s.topic_surveys!r} (topic_surveys)"]
        what = " and ".join(known) if known else f"access to topic(s) {sorted(names or {str(arg)})}"
    return KafkaAccessError(
        EXIT_NOPERM, f"not authorized: the broker refused {type(found).__name__}; grant {what}"
    )


def _topic_of(arg: object) -> object:
    """The topic name of a `TopicPartition`, anything else as it is.

    Why: aiokafka raises `TopicAuthorizationFailedError(TopicPartition(...))`
    from offset requests; a TopicPartition is a tuple, and taken for a set of
    names it made the one line a traceback (str and int do not sort)."""
    topic = getattr(arg, "topic", None)
    return topic if isinstance(topic, str) else arg


def _names_topic(text: str, topic: str) -> bool:
    """`topic` appears in `text` as a whole name (not as part of a longer one)."""
    return re.search(rf"(?<![\w.-]){re.escape(topic)}(?![\w.-])", text) is not None


def security_of(settings: Settings) -> Security:
    """`Security` from the `Settings` of a worker, an exporter or a start-up check."""
    return Security(
        settings.bootstrap_servers,
        settings.security_protocol,
        settings.sasl_mechanism,
        settings.aiokafka_security(),
    )
