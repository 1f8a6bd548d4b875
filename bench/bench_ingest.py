"""Webhook deliveries per second through `cxpulse ingest`, against a bare baseline.

Both servers answer only once the broker acknowledged the delivery's record
(`acks=all`, idempotent producer, the same producer settings): the gateway
(`cxpulse ingest`: signature check, JSON check, ticket key, kept headers,
metrics) and a bare aiohttp handler that produces the body unchanged. Each
server process is pinned to one core (`taskset -c 0`); the load generator
(HTTP keep-alive, `--concurrency` requests in flight) runs in this process on
the other core, with signed Zendesk-shaped bodies prepared in advance. Runs
alternate gateway / baseline so that drift of the shared machine hits both.
Goal (issue 19): gateway >= 0.8 of the baseline and >= 2,000 deliveries/s.

Run it: `.venv/bin/python bench/bench_ingest.py [--deliveries 20000] [--runs 2]`
(about a minute; starts its own broker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"


def bare_server(port: int, bootstrap: str, topic: str) -> None:
    """The baseline: read the body, produce it unchanged, answer after the ack."""
    from aiohttp import web
    from aiokafka import AIOKafkaProducer

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=1)  # fmt: skip
        await producer.start()

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            await producer.send_and_wait(topic, body)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/webhooks/zendesk", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def deliveries(n: int) -> list[tuple[bytes, dict[str, str]]]:
    from datetime import UTC, datetime

    from cxpulse.ingest.auth import sign

    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for i in range(n):
        body = json.dumps({
            "account_id": 1, "id": f"evt-{i}", "type": "zen:event-type:ticket.comment_added",
            "subject": f"zen:ticket:{i % 5000}", "time": ts, "zendesk_event_version": "2022-11-06",
            "detail": {"id": str(i % 5000), "group_id": "360001", "status": "OPEN",
                       "priority": "HIGH", "via": {"channel": "mail"}},
            "event": {"comment": {"id": str(i), "body": "x" * 200, "is_public": True,
                                  "author": {"id": "200", "is_staff": True, "name": "A"}}},
        }).encode()  # fmt: skip
        headers = {"Content-Type": "application/json", **sign("zendesk", SECRET.encode(), body, ts)}
        out.append((body, headers))
    return out


async def load(url: str, items: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    """Deliveries per second; every answer must be 200."""
    import aiohttp

    queue = iter(items)
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for body, headers in queue:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                failures += resp.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{failures} deliveries not answered 200")
    return len(items) / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far: its cost per delivery, whatever else runs
    on the shared machine (throughput alone swings with the neighbours' load)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deliveries", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--bare-server", nargs=3, metavar=("PORT", "BOOTSTRAP", "TOPIC"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1], args.bare_server[2])
        return 0

    from cxpulse.kafka.broker import KafkaBroker, create_topics
    from cxpulse.ports import free_port

    os.sched_setaffinity(0, {1})  # the load generator on the other core
    broker = KafkaBroker().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        topic = "bench.raw"
        asyncio.run(create_topics(broker.bootstrap, [topic], 4))
        gw_port, bare_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXPULSE_")}
        env |= {"CXPULSE_ZENDESK_WEBHOOK_SECRET": SECRET, "CXPULSE_LOG_LEVEL": "warning"}
        procs.append(subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-m", "cxpulse.cli", "ingest",
             "--bootstrap-servers", broker.bootstrap, "--topic-raw-deliveries", topic,
             "--ingest-port", str(gw_port)], env=env, cwd=ROOT))  # fmt: skip
        procs.append(subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, __file__, "--bare-server", str(bare_port),
             broker.bootstrap, topic], env=env, cwd=ROOT))  # fmt: skip
        wait_port(gw_port)
        wait_port(bare_port)
        time.sleep(2)  # producers connected
        items = deliveries(args.deliveries)
        warm = items[: min(2000, len(items))]
        asyncio.run(load(f"http://127.0.0.1:{gw_port}/webhooks/zendesk", warm, args.concurrency))
        asyncio.run(load(f"http://127.0.0.1:{bare_port}/webhooks/zendesk", warm,
                         args.concurrency))  # fmt: skip
        rows = []
        n = len(items)
        load_start = os.getloadavg()
        for run in range(1, args.runs + 1):
            c0 = cpu_seconds(procs[0].pid)
            gw = asyncio.run(load(f"http://127.0.0.1:{gw_port}/webhooks/zendesk", items,
                                  args.concurrency))  # fmt: skip
            c1 = cpu_seconds(procs[0].pid)
            b0 = cpu_seconds(procs[1].pid)
            bare = asyncio.run(load(f"http://127.0.0.1:{bare_port}/webhooks/zendesk", items,
                                    args.concurrency))  # fmt: skip
            b1 = cpu_seconds(procs[1].pid)
            rows.append((run, gw, bare, (c1 - c0) / n * 1e6, (b1 - b0) / n * 1e6))
        load_end = os.getloadavg()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=ROOT).stdout.strip()  # fmt: skip
        print(f"commit {commit}, {args.deliveries} deliveries per run, "
              f"concurrency {args.concurrency}, {os.cpu_count()} cores")
        print("| run | cxpulse ingest | bare aiohttp + producer | ratio | CPU per delivery "
              "(ingest / bare) | deliveries/s per core (ingest / bare) |")
        print("|---|---|---|---|---|---|")
        for run, gw, bare, cg, cb in rows:
            print(f"| {run} | {gw:,.0f}/s | {bare:,.0f}/s | {gw / bare:.2f} "
                  f"| {cg:.0f} / {cb:.0f} µs "
                  f"| {1e6 / cg:,.0f} / {1e6 / cb:,.0f} (ratio {cb / cg:.2f}) |")
        by_rate = sorted(gw / bare for _, gw, bare, _, _ in rows)
        by_cpu = sorted(cb / cg for _, _, _, cg, cb in rows)
        rates = sorted(gw for _, gw, _, _, _ in rows)
        for name, vals in (("ratio by throughput", by_rate), ("ratio by CPU", by_cpu)):
            print(f"{name}: median {statistics.median(vals):.2f}, min {vals[0]:.2f}, "
                  f"max {vals[-1]:.2f}")
        print(f"cxpulse ingest deliveries/s: median {statistics.median(rates):,.0f}, "
              f"min {rates[0]:,.0f}, max {rates[-1]:,.0f}")
        print("load average (1/5/15 min) at the first run: "
              + "/".join(f"{x:.1f}" for x in load_start) + ", after the last: "
              + "/".join(f"{x:.1f}" for x in load_end))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        broker.stop(remove_data=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
