"""`cxpulse top`: the wall's tiles in a terminal, for an SSH session.

Same snapshot as the web wall (`cxpulse.wall.data`), so the same queries,
colours and sample-size rules; only the drawing differs (rich table, one row
per team, refreshed in place).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cxpulse.cliargs import Subcommands
from cxpulse.lifecycle import run_until_signal
from cxpulse.wall.data import PromClient, WallSource
from cxpulse.wall.server import add_prometheus_arg, add_refresh_arg, load_targets_or_exit

#: Semantic colour -> rich style (background, so it reads like the wall's tiles).
STYLE = {
    "ok": "bold white on green4", "warn": "bold black on dark_orange",
    "bad": "bold white on red3", "info": "bold white on dodger_blue3",
    "low_sample": "white on grey35", "no_data": "grey62",
}
WORD = {"ok": "", "warn": "!", "bad": "!!", "low_sample": "?", "no_data": "", "info": ""}


#: Columns in the order they give way on a narrow terminal (least important first): the
#: survey scores move slowly and the wall shows them; the CSAT collapse evidence says why
#: a CSAT page came (kept longer than the CSAT itself); first reply, SLA and the waiting
#: tickets are what an on-call person opens `top` for.
DROP_ORDER = ("ces", "fcr", "nps", "backlog", "csat", "csat_collapse", "oldest", "at_risk",
              "sla", "frt")
TEAM_WIDTH = 12
GAP = 1  # the table's padding on each side of a cell (plus a one-cell divider)


def _cell_lines(c: dict[str, Any]) -> tuple[str, str]:
    extra = []
    if c["min_n"] is not None and c["n"] is not None:
        extra.append(f"n={c['n']:.0f}")
    if c["change_text"]:
        extra.append(c["change_text"])
    if c.get("note") == "stale":  # the header line says why; unreachable tiles say "no data"
        extra.append("stale")
    return f" {c['text']}{WORD[c['colour']]} ", " ".join(extra)


def _longest_word(title: str) -> int:
    return max(cell_len(w) for w in title.split())


def _wrap_words(title: str, width: int) -> str:
    """The header on as many lines as it needs, broken between words only."""
    lines: list[str] = []
    for word in title.split():
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def fit_columns(snap: dict[str, Any], width: int) -> tuple[list[int], list[int]]:
    """Indices of the columns that fit `width` cells (in table order) and their widths.

    A column is as wide as its widest cell line and its header's longest word, so no
    value is folded and no word of a header is split; columns are dropped in
    `DROP_ORDER` until the rest fit."""
    cols = snap["columns"]
    need = []
    for i, col in enumerate(cols):
        lines = [ln for row in snap["rows"] for ln in _cell_lines(row["tiles"][i])]
        need.append(max([_longest_word(col["title"]), *(cell_len(ln) for ln in lines)]))
    keep = list(range(len(cols)))

    def total(idx: list[int]) -> int:  # no edges; each further column: divider + padding
        return TEAM_WIDTH + GAP + sum(1 + need[i] + 2 * GAP for i in idx) - GAP

    for key in DROP_ORDER:
        if total(keep) <= width:
            break
        keep = [i for i in keep if cols[i]["key"] != key]
    return keep, [need[i] for i in keep]


def render(snap: dict[str, Any], width: int = 160) -> Group:
    """One screen for a terminal `width` cells wide: a status line, then teams x tiles."""
    when = time.strftime("%H:%M:%S", time.localtime(snap.get("generated_at", time.time())))
    head = Text(f"cxpulse top  {when}  ", style="bold")
    fresh = snap.get("freshness") or {"text": "?", "colour": "no_data"}
    head.append(" data age ")
    head.append(f" {fresh['text']} ", style=STYLE[fresh["colour"]])
    pages = snap["pages"]
    head.append("  pages ")
    if pages is None:  # Prometheus away: unknown, never a green "none"
        head.append(" ? ", style=STYLE["no_data"])
    elif pages:
        head.append(" " + ", ".join(f"{p['alertname']} ({p['team']})" if p["team"]
                                    else p["alertname"] for p in pages) + " ",
                    style=STYLE["bad"])
    else:
        head.append(" none ", style=STYLE["ok"])
    parts: list[Any] = [head]
    keep, widths = fit_columns(snap, width)
    hidden = [c["title"] for i, c in enumerate(snap["columns"]) if i not in keep]
    if hidden:
        parts.append(Text(f"{width} columns: not shown {', '.join(hidden)} (wider shows all)",
                          style="grey70"))
    if snap["status"] in ("unreachable", "stale"):
        since = snap.get("since")
        when_text = time.strftime("%H:%M", time.localtime(since)) if since else "start"
        parts.append(Text(f"no data since {when_text} — {snap['message']}",
                          style="bold white on grey35"))
    elif snap["status"] != "ok":
        parts.append(Text(snap["message"], style="bold black on dark_orange"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, GAP))
    table.add_column("team", style="bold", no_wrap=True, max_width=TEAM_WIDTH,
                     min_width=TEAM_WIDTH)
    for i, w in zip(keep, widths, strict=True):
        table.add_column(_wrap_words(snap["columns"][i]["title"], w), justify="right",
                         no_wrap=True,
                         min_width=w, max_width=w)
    for row in snap["rows"]:
        cells: list[Any] = [Text(row["label"])]
        for i in keep:
            c = row["tiles"][i]
            value, below = _cell_lines(c)
            text = Text(value, style=STYLE[c["colour"]])
            if below:
                text.append("\n" + below, style="grey70")
            cells.append(text)
        table.add_row(*cells)
    parts.append(table)
    parts.append(Text("? few samples  ! near  !! off target  line 2: n, vs yesterday  "
                      "Ctrl-C quits", style="grey50"))
    return Group(*parts)


async def _loop(client: PromClient, args: argparse.Namespace, targets: Any,
                console: Console) -> None:
    source = WallSource(client, targets)
    snap = await source.get()
    if args.once:
        console.print(render(snap, console.width))
        return
    with Live(render(snap, console.width), console=console, screen=False,
              auto_refresh=False) as live:
        while True:
            await asyncio.sleep(args.refresh / 1000)
            snap = await source.get()
            live.update(render(snap, console.width), refresh=True)


def run(args: argparse.Namespace) -> int:
    targets = load_targets_or_exit(args.targets, "cxpulse top")
    if targets is None:
        return 2
    console = Console()
    client = PromClient(args.prometheus_url)
    run_until_signal(_loop(client, args, targets, console))  # SIGTERM/SIGINT: exit 0
    return 0


def register(sub: Subcommands) -> None:
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
