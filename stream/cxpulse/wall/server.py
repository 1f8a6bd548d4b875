"""`cxpulse wall`: a small aiohttp server for the TV across the room.

Why no JavaScript build step: the page is three static files shipped in the
package (`static/`), so `pip install` is the whole deployment and nothing can
drift between a build and the Python that serves the data. The page polls
`/api/wall`, which runs the tile queries of `cxpulse.mixin.tiles` against the
Prometheus HTTP API (see data.py); colours are decided there, once.

Paging (`--rotate`): a row must stay readable from across the room, so rows are
never squeezed below the height that holds a tile's text at its readable
minimum: the title line (22 px), the value (60 px) and the three sub-lines
(target and n, change vs yesterday, state word; 20 px), plus the tile's padding.
wall.css declares those sizes and line heights once (`--title-px`, `--value-min-px`,
`--sub-px`, `--line`); wall.js renders an invisible probe tile at exactly those
sizes, measures its height and fits as many rows as that height allows into the
screen below the header (at 1920x1080: 170 px a row in 972 px, so the organisation
plus 4 teams). When the teams need more rows, they are split into equal pages
that rotate every `--rotate`; the organisation row is on every page and the
header shows "page 2/3". Measuring the probe, rather than a row count written
down here, keeps the rule right if the fonts or the tile's lines change. The
header's firing pages list every team, whatever page is on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from cxpulse import cliargs
from cxpulse.core.targets import Targets, TargetsError
from cxpulse.lifecycle import run_until_signal
from cxpulse.mixin import tiles as tl
from cxpulse.ports import WALL_PORT
from cxpulse.wall.data import PromClient, WallSource
from cxpulse.web.server import (
    WebConfig,
    WebConfigError,
    add_web_flags,
    bind_socket,
    load_web_config,
    make_app,
    serve_until,
)

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = WALL_PORT
EXIT_USAGE = 2

_TYPES = {".html": "text/html", ".css": "text/css", ".js": "application/javascript"}


def _static(name: str) -> bytes:
    return resources.files("cxpulse.wall").joinpath("static", name).read_bytes()


def build_app(prometheus_url: str, targets: Targets, refresh_s: float,
              rotate_s: float = 15.0, web_config: WebConfig | None = None) -> web.Application:
    client = PromClient(prometheus_url, timeout_s=min(5.0, max(1.0, refresh_s)))
    source = WallSource(client, targets)
    cache: dict[str, Any] = {"at": 0.0, "body": b""}
    lock = asyncio.Lock()

    async def api(_: web.Request) -> web.Response:
        # Several screens polling at once share one round of queries.
        async with lock:
            if time.monotonic() - cache["at"] > refresh_s / 2:
                snap = await source.get()
                snap["refresh_s"] = refresh_s
                snap["prometheus_url"] = prometheus_url
                cache["body"] = json.dumps(snap).encode()
                cache["at"] = time.monotonic()
        return web.Response(body=cache["body"], content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def page(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        suffix = Path(name).suffix
        if suffix not in _TYPES or "/" in name:
            raise web.HTTPNotFound()
        try:
            body = _static(name)
        except FileNotFoundError:
            raise web.HTTPNotFound() from None
        if name == "index.html":
            body = body.replace(b"__REFRESH_S__", f"{refresh_s:g}".encode()).replace(
                b"__ROTATE_S__", f"{rotate_s:g}".encode()).replace(
                b"__SPARK_RANGE__", tl.SPARK_RANGE.replace("h", " h").encode())
        return web.Response(body=body, content_type=_TYPES[suffix],
                            headers={"Cache-Control": "no-cache"})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = make_app(web_config)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", page)
    app.router.add_get("/api/wall", api)
    app.router.add_get("/healthz", health)
    return app


async def serve(sock: socket.socket, app: web.Application,
                stop: asyncio.Event | None = None, web_config: WebConfig | None = None) -> None:
    await serve_until(sock, app, web_config, stop or asyncio.Event())


def load_targets_or_exit(path: str, prog: str) -> Targets | None:
    from cxpulse.mixin.command import load_targets

    try:
        return load_targets(Path(path))
    except TargetsError as exc:
        print(f"{prog}: bad targets file: {exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    targets = load_targets_or_exit(args.targets, "cxpulse wall")
    if targets is None:
        return EXIT_USAGE
    try:
        web_config = load_web_config(args.web_config_file)
    except WebConfigError as exc:
        print(f"cxpulse wall: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"cxpulse wall: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    app = build_app(args.prometheus_url, targets, args.refresh / 1000, args.rotate / 1000,
                    web_config)
    scheme = "https" if web_config.tls else "http"
    print(f"cxpulse wall: {scheme}://{args.host}:{sock.getsockname()[1]}/ "
          f"(Prometheus {args.prometheus_url})", flush=True)
    run_until_signal(serve(sock, app, web_config=web_config))  # SIGTERM/SIGINT: exit 0
    return 0


def add_prometheus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus-url", default=DEFAULT_PROMETHEUS, metavar="URL",
                   help="Prometheus to read the KPIs from")
    p.add_argument("--targets", default="targets.yaml", metavar="YAML",
                   help="targets file the tiles are coloured by")


def add_refresh_arg(p: argparse.ArgumentParser, default: str, what: str) -> None:
    """`--refresh` of `wall` and `top`: a duration (`15s`, `1m`), read as milliseconds."""
    p.add_argument("--refresh", type=cliargs.duration_ms, default=default, metavar="DURATION",
                   help=what)


def register(sub: cliargs.Subcommands) -> None:
    p = sub.add_parser(
        "wall", help="serve the live KPI wall (a web page for a TV) from Prometheus",
        description="Serve a 1920x1080 wall page: a row of KPI tiles per team plus the "
        "organisation, coloured by targets.yaml, with freshness and firing pages. "
        "Exit codes: 0 stopped, 2 bad option / targets file / port taken.",
        epilog="example: cxpulse wall --prometheus-url http://127.0.0.1:9090 "
        f"--port {WALL_PORT}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_prometheus_arg(p)
    add_web_flags(p, DEFAULT_PORT, DEFAULT_HOST)
    add_refresh_arg(p, "15s", "how often the page reloads its data")
    p.add_argument("--rotate", type=cliargs.duration_ms, default="15s", metavar="DURATION",
                   help="how long each page of teams stays on screen when the teams do not "
                   "fit one screen at a readable size (the organisation row is on every page)")
    p.set_defaults(func=run)
