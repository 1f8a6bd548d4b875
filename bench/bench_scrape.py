"""Scrape load must not slow consumption: catch-up time of a 3-day backlog, quiet vs scraped.

Issue #9 saw four clients scraping `/metrics` stretch a 3-day catch-up from
18.3 s to 121.7 s: every scrape evaluated every KPI on the worker's loop. Now
the worker's `/metrics` is its own health (cheap), its partial KPI view
(`/metrics/partitions`, debugging) is rendered at most once per 10 s while it
is busy, and organisation-wide KPIs come from `cxpulse exporter`, which
answers from an evaluation already done on its own timer.

Runs, alternating to spread the machine's noise: one worker + one exporter
catch up on the same 3-day backlog (fresh group each time), with no scraper,
then with four clients scraping every endpoint of both in a loop. Prints the
catch-up seconds of each run and the ratio scraped / quiet.

Usage:
    .venv/bin/python bench/bench_scrape.py [--bootstrap-servers HOST:PORT] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxpulse.importer.replay import read_lines  # noqa: E402

from bench.kafka_setup import broker, create_topics  # noqa: E402
from tests.integration.test_exporter import ExporterProc  # noqa: E402
from tests.integration.test_worker_pipeline import (  # noqa: E402
    Topics,
    WorkerProc,
    replay,
    simulate,
    totals,
)


def scraper(urls: list[str], stop: threading.Event, counts: list[int]) -> None:
    while not stop.is_set():
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                counts[0] += 1
            except OSError:
                time.sleep(0.05)


def catch_up(bootstrap: str, capture: Path, n: int, workdir: Path, scrapers: int) -> float:
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(f"b.t.{suffix}", f"b.s.{suffix}", f"b.dl.{suffix}", f"bench-{suffix}")
    asyncio.run(create_topics(bootstrap, [topics.tickets, topics.surveys, topics.deadletter]))
    replay(capture, bootstrap, topics)  # the backlog is there before the worker starts
    w = WorkerProc(bootstrap, topics, workdir, f"w-{suffix}").start()
    x = ExporterProc(bootstrap, topics, workdir, f"x-{suffix}").start()
    stop = threading.Event()
    counts = [0]
    urls = [
        f"http://127.0.0.1:{w.port}{p}"
        for p in ("/metrics", "/metrics/partitions", "/metrics/worker", "/healthz")
    ]
    urls += [f"http://127.0.0.1:{x.port}{p}" for p in ("/metrics", "/healthz", "/readyz")]
    threads = [threading.Thread(target=scraper, args=(urls, stop, counts), daemon=True)
               for _ in range(scrapers)]  # fmt: skip
    try:
        while totals([w]).consumed == 0 and "assigned" not in w.log_text():
            time.sleep(0.05)
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        while totals([w]).consumed < n:
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
    finally:
        stop.set()
        w.stop()
        x.stop()
    print(f"  scrapers={scrapers}: {elapsed:.1f} s, {counts[0]} scrapes", flush=True)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", dest="bootstrap")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tickets-per-day", type=int, default=6000)
    args = ap.parse_args()
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        capture = simulate(work / "3d.jsonl", seed=3, span="72h",
                           per_day=args.tickets_per_day)  # fmt: skip
        n = sum(1 for _ in read_lines(capture))
        print(f"backlog: {n} messages over 3 days", flush=True)
        quiet, loaded = [], []
        for _ in range(args.rounds):
            quiet.append(catch_up(bootstrap, capture, n, work, 0))
            loaded.append(catch_up(bootstrap, capture, n, work, 4))
        q, ld = statistics.median(quiet), statistics.median(loaded)
        print(f"median catch-up: quiet {q:.1f} s, 4 scrapers {ld:.1f} s, "
              f"ratio {ld / q:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
