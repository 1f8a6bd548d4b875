"""The webhook receiver every Alertmanager receiver of the demo is pointed at.

One console line per alert of each notification (`NOTIFY <receiver>: FIRING
<alertname> team=...`); the Watchdog (a dead man's switch, resent every minute)
is printed once. A GET on `/` lists the notifications received so far, so the
address the demo prints opens in a browser.

Why a thread with its own event loop: the supervisor is a plain blocking loop
over child processes, and the receiver must answer Alertmanager meanwhile. It
serves through the one HTTP module (`cxpulse.web.server`) like every other
endpoint of cxpulse.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import threading
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from cxpulse.web.server import bind_socket, make_app, serve_until

WATCHDOG = "CxpulseWatchdog"
#: notifications kept for the GET page (the newest; older ones are on the console)
KEEP = 200


class Receiver:
    """Runs in a daemon thread from `start()` until `stop()`."""

    def __init__(self, say: Callable[[str], None], host: str = "127.0.0.1") -> None:
        self.say = say
        self.host = host
        self.received: list[tuple[float, str]] = []
        self._watchdog_seen = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def line(self, receiver: str, alert: Mapping[str, object]) -> str | None:
        """The console line for one alert of a notification (None: not printed)."""
        labels = alert.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        if labels.get("alertname") == WATCHDOG:
            if self._watchdog_seen:
                return None
            self._watchdog_seen = True
            return (f"NOTIFY {receiver}: {WATCHDOG} (the dead man's switch: Alertmanager "
                    "resends it every minute, printed once)")
        annotations = alert.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        summary = annotations.get("summary", "")
        team = f" team={labels['team']}" if "team" in labels else ""
        status = str(alert.get("status", "?")).upper()
        # the runbook section in this checkout (the URL's base is the deployment's own)
        url = str(annotations.get("runbook_url", ""))
        runbook = f" (what to do: docs/{url.split('/docs/', 1)[1]})" if "/docs/" in url else ""
        return (f"NOTIFY {receiver}: {status} {labels.get('alertname', '?')}{team} "
                f"severity={labels.get('severity', '?')}: {summary}{runbook}")

    async def _post(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="not JSON\n")
        receiver = request.path.strip("/")
        alerts = body.get("alerts", []) if isinstance(body, dict) else []
        for alert in alerts if isinstance(alerts, list) else []:
            text = self.line(receiver, alert) if isinstance(alert, dict) else None
            if text is not None:
                self.say(text)
                self.received = [*self.received[-(KEEP - 1):], (time.time(), text)]
        return web.Response(text="ok\n")

    async def _get(self, _: web.Request) -> web.Response:
        rows = "".join(
            f"<li><code>{time.strftime('%H:%M:%S', time.localtime(at))}</code> "
            f"{html.escape(text)}</li>" for at, text in reversed(self.received))
        page = ("<!doctype html><title>cxpulse demo: notifications</title>"
                "<h1>Notifications Alertmanager sent to the demo</h1>"
                f"<ul>{rows or '<li>none yet</li>'}</ul>")
        return web.Response(text=page, content_type="text/html")

    def start(self) -> int:
        """Bind, serve in a thread, return the port."""
        sock = bind_socket(self.host, 0)
        self.port = int(sock.getsockname()[1])
        ready = threading.Event()

        def main() -> None:
            async def serve() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                app = make_app()
                app.router.add_get("/", self._get)
                app.router.add_post("/{receiver}", self._post)
                ready.set()
                await serve_until(sock, app, None, self._stop)

            asyncio.run(serve())

        self._thread = threading.Thread(target=main, name="demo-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
