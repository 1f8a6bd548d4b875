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
import ssl
from dataclasses import dataclass
from typing import Any

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
    kwargs: dict[str, Any]


def classify(
    exc: BaseException, where: str, protocol: str, mechanism: str | None
) -> KafkaAccessError | None:
    """A definite cause for `exc` (None: transient, e.g. refused while the broker starts).

    Messages name the setting to look at and never contain a secret (only
    the host:port, protocol and mechanism, which are not secret).
    """
    from aiokafka import errors as ke

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
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    hostport = sec.bootstrap_servers.split(",")[0].strip()
    host, _, port = hostport.rpartition(":")
    conn = None
    try:
        conn = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **sec.kwargs),
            timeout_s,
        )
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    except Exception as exc:  # classified: unknown ones count as transient
        return classify(exc, hostport, sec.security_protocol, sec.sasl_mechanism)
    finally:
        if conn is not None:
            conn.close()
    return None


def security_of(settings: Any) -> Security:
    """`Security` from worker `Settings` (duck-typed: replay/simulate can pass theirs)."""
    return Security(
        settings.bootstrap_servers,
        settings.security_protocol,
        settings.sasl_mechanism,
        settings.aiokafka_security(),
    )
