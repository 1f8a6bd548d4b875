"""`cxpulse top`: the wall's tiles in a terminal, for an SSH session.

Same snapshot as the web wall (`cxpulse.wall.data`), so the same queries,
colours and sample-size rules; only the drawing differs (rich table, one row
per team, refreshed in place).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cxpulse.wall.data import PromClient, safe_snapshot
from cxpulse.wall.server import add_prometheus_arg, add_refresh_arg, load_targets_or_exit

#: Semantic colour -> rich style (background, so it reads like the wall's tiles).
STYLE = {
    "ok": "bold white on green4", "warn": "bold black on dark_orange",
    "bad": "bold white on red3", "info": "bold white on dodger_blue3",
    "low_sample": "white on grey35", "no_data": "grey62",
}
WORD = {"ok": "", "warn": "!", "bad": "!!", "low_sample": "?", "no_data": "", "info": ""}


def render(snap: dict[str, Any]) -> Group:
    """One screen: a status line, then the table of teams x tiles."""
    when = time.strftime("%H:%M:%S", time.localtime(snap.get("generated_at", time.time())))
    head = Text(f"cxpulse top  {when}  ", style="bold")
    if snap["status"] == "unreachable":
        head.append(f"STALE: {snap['message']}", style="bold white on red3")
        return Group(head)
    fresh = snap.get("freshness") or {"text": "?", "colour": "no_data"}
    head.append(" data age ")
    head.append(f" {fresh['text']} ", style=STYLE[fresh["colour"]])
    pages = snap["pages"]
    head.append("  pages ")
    if pages:
        head.append(" " + ", ".join(f"{p['alertname']} ({p['team']})" if p["team"]
                                    else p["alertname"] for p in pages) + " ",
                    style=STYLE["bad"])
    else:
        head.append(" none ", style=STYLE["ok"])
    parts: list[Any] = [head]
    if snap["status"] != "ok":
        parts.append(Text(snap["message"], style="bold black on dark_orange"))
    # SIMPLE box and folded headers: the ten columns still fit an 80-column SSH terminal.
    table = Table(expand=True, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("team", style="bold", no_wrap=True, max_width=12)
    for col in snap["columns"]:
        table.add_column(col["title"], justify="right", overflow="fold", min_width=6)
    for row in snap["rows"]:
        cells: list[Any] = [Text(row["label"])]
        for c in row["tiles"]:
            text = Text(f" {c['text']}{WORD[c['colour']]} ", style=STYLE[c["colour"]])
            extra = []
            if c["min_n"] is not None and c["n"] is not None:
                extra.append(f"n={c['n']:.0f}")
            if c["change_text"]:
                extra.append(c["change_text"])
            if extra:
                text.append("\n" + " ".join(extra), style="grey70")
            cells.append(text)
        table.add_row(*cells)
    parts.append(table)
    parts.append(Text("? below min sample   ! near limit   !! off target   "
                      "change vs same time yesterday   Ctrl-C quits", style="grey50"))
    return Group(*parts)


async def _loop(client: PromClient, args: argparse.Namespace, targets: Any,
                console: Console) -> None:
    snap = await safe_snapshot(client, targets)
    if args.once:
        console.print(render(snap))
        return
    with Live(render(snap), console=console, screen=False, auto_refresh=False) as live:
        while True:
            await asyncio.sleep(args.refresh / 1000)
            snap = await safe_snapshot(client, targets)
            live.update(render(snap), refresh=True)


def run(args: argparse.Namespace) -> int:
    targets = load_targets_or_exit(args.targets, "cxpulse top")
    if targets is None:
        return 2
    console = Console()
    client = PromClient(args.prometheus_url)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_loop(client, args, targets, console))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "top", help="the wall's KPI tiles in the terminal, refreshing",
        description="A row per team plus the organisation, coloured by targets.yaml, read "
        "from Prometheus like the wall. Exit codes: 0 done, 2 bad option or targets file.",
        epilog="example: cxpulse top --prometheus-url http://127.0.0.1:9090 --refresh 5s",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_prometheus_arg(p)
    add_refresh_arg(p, "10s", "time between refreshes")
    p.add_argument("--once", action="store_true", help="print one screen and exit")
    p.set_defaults(func=run)
