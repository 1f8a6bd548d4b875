"""Credential and protocol mistakes end the worker at once with one line and an exit code.

A broker of its own with a SASL_PLAINTEXT listener (SCRAM-SHA-512 user made
at format time, `KafkaBroker(scram_users=...)`). Before: 30 retries over a
minute, then a traceback saying only "Unable to bootstrap".
Exit codes: 77 credentials refused, 78 TLS/protocol mismatch, 2 settings
(docs/runbook.md, "Worker exit codes").
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cxpulse.kafka.broker import KafkaBroker

from tests.integration.test_worker_pipeline import CXPULSE, ROOT
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka

PASSWORD = "Alice-s3cret-pw"


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[KafkaBroker]:
    broker = KafkaBroker(scram_users={"alice": PASSWORD}).start()
    try:
        yield broker
    finally:
        broker.stop(remove_data=True)


def _worker(
    tmp_path: Path, bootstrap: str, *sets: str, password: str | None = None
) -> tuple[int, str, float]:
    """Run a worker to its exit; the password goes by the environment (the
    command line refuses it: `ps` shows arguments to every user)."""
    args = [*CXPULSE, "worker", "--bootstrap-servers", bootstrap,
            "--datadir", str(tmp_path / "d"), "--metrics-port", str(free_port()),
            "--topic-tickets", "absent.tickets", "--topic-surveys", "absent.surveys"]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    t0 = time.monotonic()
    env = {**os.environ, **({"CXPULSE_SASL_PASSWORD": password} if password else {})}
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    return r.returncode, r.stderr, time.monotonic() - t0


SASL = ("security_protocol=SASL_PLAINTEXT", "sasl_mechanism=SCRAM-SHA-512", "sasl_username=alice")


@pytest.mark.parametrize(
    ("case", "code", "phrase"),
    [
        ("wrong_password", 77, "authentication failed"),
        ("plaintext_to_sasl", 78, "security_protocol"),
        ("tls_to_plaintext", 78, "TLS"),
        ("right_password", 2, "topic_tickets"),  # got in: then the missing topic is named
    ],
)
def test_credential_errors_are_one_line_and_quick(
    sasl_broker: KafkaBroker, tmp_path: Path, case: str, code: int, phrase: str
) -> None:
    if case == "wrong_password":
        rc, err, took = _worker(tmp_path, sasl_broker.sasl_bootstrap, *SASL,
                                password="Not-the-" + PASSWORD)  # fmt: skip
    elif case == "plaintext_to_sasl":
        rc, err, took = _worker(tmp_path, sasl_broker.sasl_bootstrap)
    elif case == "tls_to_plaintext":
        rc, err, took = _worker(tmp_path, sasl_broker.bootstrap, "security_protocol=SSL")
    else:
        rc, err, took = _worker(tmp_path, sasl_broker.sasl_bootstrap, *SASL,
                                password=PASSWORD)  # fmt: skip
    assert rc == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("cxpulse worker: ") and phrase in last, err[-3000:]
    assert PASSWORD not in err
    assert took < 30, f"took {took:.0f}s"
