"""A real single-node Apache Kafka broker (KRaft) on loopback, without Docker.

Why this exists: the machines that develop and test cxpulse have a JVM and
Maven but no container engine, and the brief forbids mock brokers. So the
broker jars are fetched from Maven Central once into a cache outside the
repository, a fresh KRaft storage directory is formatted per run, and
`kafka.Kafka` is started as a plain JVM process that we own and stop.

Used three ways: `scripts/kafka start|stop|status` for people, the pytest
session fixture in `tests/conftest.py`, and the demo command in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cxpulse.ports import free_port

KAFKA_VERSION = "3.9.2"
SLF4J_VERSION = "1.7.36"
# Not CXPULSE_* variables: those are the worker's settings, which refuse unknown names.
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cxpulse"
# The jars are shared (read-only once fetched); the running broker's state is per clone,
# so one clone's `scripts/kafka stop` (or `make demo-stop`) never stops another's broker.
# `scripts/kafka` sets KAFKA_BROKER_STATE to its clone's var/; elsewhere the current directory's.
STATE_FILE = Path(os.environ.get("KAFKA_BROKER_STATE", Path("var") / "kafka-broker.json"))

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cxpulse.dev</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


def libs_dir() -> Path:
    return CACHE_ROOT / f"kafka-{KAFKA_VERSION}" / "libs"


def fetch_jars(quiet: bool = True) -> Path:
    """Resolve the broker and a logging binding with Maven, once; reuse the cache after."""
    libs = libs_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    work = Path(tempfile.mkdtemp(prefix="cxpulse-mvn-"))
    try:
        (work / "pom.xml").write_text(POM.format(kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION))
        tmp_libs = libs.with_name("libs.partial")
        shutil.rmtree(tmp_libs, ignore_errors=True)
        cmd = [
            "mvn", "-B", "-q" if quiet else "-B", "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp_libs}", "-DincludeScope=runtime",
        ]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"mvn could not fetch Kafka {KAFKA_VERSION} jars (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        tmp_libs.rename(libs)
        marker.write_text(f"fetched in {time.monotonic() - started:.1f}s\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return libs


@dataclass
class KafkaBroker:
    """One broker+controller JVM with its own storage directory.

    The storage directory survives `restart()` (topics and offsets are kept,
    as after a real broker restart) and is removed by `stop(remove_data=True)`.
    """

    port: int = 0
    controller_port: int = 0
    workdir: Path | None = None
    heap: str = "512m"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: extra SASL_PLAINTEXT listener with SCRAM-SHA-512 users (name -> password),
    #: created at format time; `sasl_bootstrap` is its address. The PLAINTEXT
    #: listener stays (inter-broker traffic, admin in tests).
    scram_users: dict[str, str] | None = None
    sasl_port: int = 0
    #: the SCRAM listener is SASL_SSL (a CA and a server certificate for
    #: 127.0.0.1 are generated in the workdir with openssl: `ca_file`) instead
    #: of SASL_PLAINTEXT
    sasl_tls: bool = False
    #: StandardAuthorizer on: no ACL, no access, except for the super users
    #: (`User:ANONYMOUS`, i.e. the PLAINTEXT and controller listeners, which the
    #: tests use as their admin, plus these SCRAM users)
    authorizer: bool = False
    super_users: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scram_users:
            self.sasl_port = self.sasl_port or free_port()
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="cxpulse-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def _dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self._dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self._dir}",
            "-cp", f"{libs_dir()}/*", main, *args,
        ]

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that signed the SASL_SSL listener's certificate (`sasl_tls`)."""
        return self._dir / "tls" / "ca.pem"

    def _make_tls(self) -> Path:
        """CA + server certificate (SAN IP:127.0.0.1) -> PKCS12 keystore; returns it."""
        tls = self._dir / "tls"
        store = tls / "server.p12"
        if store.exists():
            return store
        tls.mkdir(parents=True, exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=cxpulse-test-ca")  # fmt: skip
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
        (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "san.ext")  # fmt: skip
        run("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile",
            "ca.pem", "-out", store.name, "-passout", "pass:changeit")  # fmt: skip
        return store

    def _sasl_lines(self) -> tuple[str, str, str, list[str]]:
        """(extra listener, extra advertised, extra protocol map, extra properties)."""
        extra: list[str] = []
        if self.authorizer:
            supers = ";".join(["User:ANONYMOUS", *(f"User:{u}" for u in self.super_users)])
            extra += [
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                f"super.users={supers}",
                "allow.everyone.if.no.acl.found=false",
            ]
        if not self.scram_users:
            return "", "", "", extra
        proto = "SASL_SSL" if self.sasl_tls else "SASL_PLAINTEXT"
        if self.sasl_tls:
            store = self._make_tls()
            extra += [
                "listener.name.sasl_ssl.ssl.keystore.type=PKCS12",
                f"listener.name.sasl_ssl.ssl.keystore.location={store}",
                "listener.name.sasl_ssl.ssl.keystore.password=changeit",
                "listener.name.sasl_ssl.ssl.key.password=changeit",
            ]
        return (
            f",{proto}://127.0.0.1:{self.sasl_port}",
            f",{proto}://127.0.0.1:{self.sasl_port}",
            f",{proto}:{proto}",
            [
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                f"listener.name.{proto.lower()}.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                *extra,
            ],
        )

    def _write_config(self) -> Path:
        props = self._dir / "server.properties"
        listener, advertised, protomap, sasl_props = self._sasl_lines()
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}{listener}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}{advertised}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                    f"{protomap}",
                    *sasl_props,
                    f"log.dirs={self._dir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.flush.interval.messages=9223372036854775807",
                    "",
                ]
            )
        )
        (self._dir / "log4j.properties").write_text(LOG4J.format(log=self._dir / "server.log"))
        return props

    def start(self, timeout: float = 90.0) -> KafkaBroker:
        fetch_jars()
        props = self._write_config()
        if not (self._dir / "data" / "meta.properties").exists():
            cluster_id = uuid.uuid4().hex[:22]
            scram = [
                arg
                for name, password in (self.scram_users or {}).items()
                for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
            ]
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                           *scram),
                check=True, capture_output=True,
            )  # fmt: skip
        out = open(self._dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(props)),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready = a real metadata request answers, not merely an open port."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.proc.returncode}; see {self._dir}")
            try:
                asyncio.run(_metadata_probe(self.bootstrap))
                return
            except Exception as exc:  # retried until the deadline
                last = exc
                time.sleep(0.3)
        raise TimeoutError(f"Kafka on {self.bootstrap} not ready after {timeout}s: {last!r}")

    def stop(self, timeout: float = 30.0, remove_data: bool = False) -> None:
        """SIGTERM (controlled shutdown), SIGKILL only when it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if remove_data:
            shutil.rmtree(self._dir, ignore_errors=True)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def set_scram_password(self, user: str, password: str) -> None:
        """Create or change a SCRAM-SHA-512 credential on the running broker
        (`kafka-configs --alter --entity-type users`, through the PLAINTEXT
        listener, which is a super user when `authorizer` is on)."""
        cmd = self._java(
            "kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap, "--alter",
            "--add-config", f"SCRAM-SHA-512=[iterations=4096,password={password}]",
            "--entity-type", "users", "--entity-name", user,
        )  # fmt: skip
        cmd[1:3] = ["-Xmx128m", "-Xms32m"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


async def _metadata_probe(bootstrap: str) -> None:
    # aiokafka: only for the probes (`scripts/kafka fetch` does not load it)
    from aiokafka.admin import AIOKafkaAdminClient

    # Refused connections are expected while the JVM boots; keep them out of the output.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create missing topics; existing ones are left as they are."""
    # aiokafka: only for the probes (`scripts/kafka fetch` does not load it)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(n, num_partitions=partitions, replication_factor=1)
               for n in names if n not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


#: Kafka's AclOperation / ResourceType / PatternType codes (CreateAcls/DeleteAcls requests)
ACL_OPERATIONS = {
    "All": 2, "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
    "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11, "IdempotentWrite": 12,
}  # fmt: skip
ACL_RESOURCES = {"Topic": 2, "Group": 3, "Cluster": 4, "TransactionalId": 5}
ACL_PATTERNS = {"literal": 3, "prefixed": 4}


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule: `Acl("User:alice", "Topic", "support.tickets", "Read")`."""

    principal: str
    resource: str
    name: str
    operation: str
    pattern: str = "literal"

    def fields(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            ACL_RESOURCES[self.resource], self.name, ACL_PATTERNS[self.pattern],
            self.principal, "*", ACL_OPERATIONS[self.operation], 3,  # ALLOW
        )  # fmt: skip


async def alter_acls(bootstrap: str, add: list[Acl] | None = None,
                     remove: list[Acl] | None = None) -> None:  # fmt: skip
    """Create and delete ALLOW ACLs with the admin API's CreateAcls/DeleteAcls
    (aiokafka's admin client has them as protocol classes only); raises on any
    error code. `bootstrap` must be a super user's listener (PLAINTEXT here)."""
    # aiokafka: only for the probes (`scripts/kafka fetch` does not load it)
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        node = admin._client.get_random_node()
        for acl in add or []:
            resp = await admin._client.send(node, CreateAclsRequest(*acl.fields()))
            errors = [(c, m) for c, m in resp.creation_responses if c]
            if errors:
                raise RuntimeError(f"CreateAcls {acl}: {errors}")
        for acl in remove or []:
            resp = await admin._client.send(node, DeleteAclsRequest(*acl.fields()))
            errors = [(f[0], f[1]) for f in resp.filter_responses if f[0]]
            if errors:
                raise RuntimeError(f"DeleteAcls {acl}: {errors}")
    finally:
        await admin.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/kafka", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download the broker jars into the cache (once)")
    p_start = sub.add_parser("start", help="start a broker in the background")
    p_start.add_argument("--port", type=int, default=0, help="default: a free port")
    p_start.add_argument("--dir", type=Path, default=None, help="storage dir (default: temp)")
    p_topics = sub.add_parser("topics", help="create topics (if missing) on the running broker")
    p_topics.add_argument("names", nargs="+")
    p_topics.add_argument("--partitions", type=int, default=4)
    sub.add_parser("stop", help="stop the broker started by `start`")
    sub.add_parser("status", help="print where the broker listens")
    args = parser.parse_args(argv)

    if args.cmd == "fetch":
        t0 = time.monotonic()
        libs = fetch_jars(quiet=False)
        print(f"Kafka {KAFKA_VERSION} jars in {libs} ({time.monotonic() - t0:.1f}s)")
        return 0
    if args.cmd == "start":
        if STATE_FILE.exists():
            state = json.loads(STATE_FILE.read_text())
            if _pid_alive(state["pid"]):
                print(f"Kafka already running on {state['bootstrap']} (pid {state['pid']})")
                return 0
        t0 = time.monotonic()
        broker = KafkaBroker(port=args.port, workdir=args.dir).start()
        assert broker.proc is not None
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(
            {"pid": broker.proc.pid, "bootstrap": broker.bootstrap, "dir": str(broker.workdir)}
        ))
        print(f"Kafka {KAFKA_VERSION} listening on {broker.bootstrap} "
              f"(pid {broker.proc.pid}, ready in {time.monotonic() - t0:.1f}s, "
              f"data {broker.workdir})")
        return 0
    if args.cmd == "topics":
        if not STATE_FILE.exists():
            print("no broker started by scripts/kafka", file=sys.stderr)
            return 1
        bootstrap = json.loads(STATE_FILE.read_text())["bootstrap"]
        asyncio.run(create_topics(bootstrap, args.names, args.partitions))
        print(f"topics {' '.join(args.names)} ({args.partitions} partitions) on {bootstrap}")
        return 0
    if args.cmd == "stop":
        if not STATE_FILE.exists():
            print("no broker started by scripts/kafka")
            return 0
        state = json.loads(STATE_FILE.read_text())
        pid = int(state["pid"])
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGTERM)
            for _ in range(300):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
        # reap if we are the parent (we are not, normally), then clean up
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        shutil.rmtree(state["dir"], ignore_errors=True)
        STATE_FILE.unlink()
        print(f"Kafka (pid {pid}) stopped")
        return 0
    if args.cmd == "status":
        if STATE_FILE.exists():
            state = json.loads(STATE_FILE.read_text())
            alive = _pid_alive(int(state["pid"]))
            print(f"{state['bootstrap']} pid {state['pid']} {'running' if alive else 'dead'}")
            return 0 if alive else 1
        print("not running")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
