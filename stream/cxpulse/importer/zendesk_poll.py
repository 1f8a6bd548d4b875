"""Zendesk's incremental export, page by page, resumable.

Why a poller next to the webhooks: history before the webhooks existed, and
gaps (a webhook disabled for an hour) are filled from the export; its events
get the live path's ids (`cxpulse.helpdesks.zendesk`), so an overlap counts once.

Pagination: cursor-based exports answer `after_url` / `after_cursor`, time-based
ones (ticket events) `next_page` / `end_time`; both end with `end_of_stream: true`.
The next URL is written to the state file after a page's events are written
(atomically: a temp file renamed over it), so a stopped poll resumes at the first
page not written, and a page is never written twice unless the process died
between writing its events and saving the state (then its events repeat with the
same ids: duplicates). 429: wait `Retry-After` seconds (Zendesk's rate limit) and
ask again; other HTTP errors end the poll with the state at the last good page.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cxpulse.jsontypes import JSON


class PollError(RuntimeError):
    """The export answered an error that waiting does not fix (one line, no secret)."""


def _get(url: str, auth: str | None, sleep: Callable[[float], None], max_waits: int = 20
         ) -> JSON:  # fmt: skip
    if not url.startswith(("https://", "http://")):
        raise PollError(f"{url.split('?')[0]}: not an http(s) URL")
    for _ in range(max_waits):
        req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (checked)
                page: JSON = json.load(resp)
                return page
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                retry = exc.headers.get("Retry-After", "60")
                sleep(float(retry) if retry.replace(".", "", 1).isdigit() else 60.0)
                continue
            raise PollError(f"{url.split('?')[0]}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PollError(f"{url.split('?')[0]}: {type(exc).__name__}") from None
    raise PollError(f"{url.split('?')[0]}: still rate limited after {max_waits} waits")


Page = tuple[JSON, Callable[[], None]]


def pages(start_url: str, state_file: Path | None, auth: str | None = None,
          sleep: Callable[[float], None] = time.sleep,
          memory: dict[str, str] | None = None) -> Iterator[Page]:  # fmt: skip
    """(page, commit) per page; call `commit()` once the page's events are written.

    `memory` (ticket -> requester: the export names a ticket's requester only at its
    creation) is saved with the next URL and loaded on resume, so a resumed poll
    still tells the requester's comments from the agents'."""
    url = start_url
    memory = {} if memory is None else memory
    if state_file is not None and state_file.exists():
        saved = json.loads(state_file.read_text())
        url = saved["next_url"]
        memory.update(saved.get("memory", {}))
    while True:
        page = _get(url, auth, sleep)
        nxt = page.get("after_url") or page.get("next_page")
        done = bool(page.get("end_of_stream")) or not nxt or nxt == url

        def commit(nxt: Any = nxt, done: bool = done, url: str = url) -> None:
            if state_file is None:
                return
            tmp = state_file.with_suffix(".tmp")
            # at the end the last URL is kept: the next run asks it again for news
            tmp.write_text(json.dumps({"next_url": url if done else nxt, "memory": memory}))
            os.replace(tmp, state_file)

        yield page, commit
        if done:
            return
        url = str(nxt)


def basic_auth(email: str | None, token: str | None) -> str | None:
    """Zendesk's API token auth: basic `{email}/token:{token}` (None: no auth header)."""
    if not email or not token:
        return None
    return "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()
