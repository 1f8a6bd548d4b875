"""Serve HTTP endpoints (`/metrics`, `/healthz`, ...) with optional TLS and basic auth.

Why the exporter-toolkit web-config format: it is what every Prometheus
exporter (node_exporter, ...) and Prometheus itself read with
`--web.config.file`, so operators already have the files, the bcrypt hashes
(`htpasswd -nBC 10 user`) and the matching scrape config
(`scheme: https`, `tls_config.ca_file`, `basic_auth`). Only the keys this
module implements are accepted; an unknown key is an error naming it rather
than a silently ignored protection:

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt        # optional: then clients must present a cert
      min_version: TLS12            # optional: TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...        # bcrypt hash

Checking a bcrypt hash costs ~50-100 ms by design; a scrape every 15 s
would pay it each time, so a successful (user, password) pair is remembered
as its SHA-256 (never the password itself) for the life of the process.
The one HTTP serving module of cxpulse: the worker's and the exporter's
`/metrics`, the wall, the demo's receiver and the webhook gateway all serve
through it, so every endpoint takes the same TLS and basic-auth file and the
same bind flags. Use: `bind_socket` before anything slow (a taken port is one
line at start), `load_web_config` once (errors are `WebConfigError`, one line),
then `serve` (GET routes) or `make_app` + `start` for an app of your own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from cxpulse.yamlfile import YamlFileError, read_yaml_mapping

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "min_version"}
_TOP_KEYS = {"tls_server_config", "basic_auth_users"}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class WebConfigError(ValueError):
    """The web-config file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class WebConfig:
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    #: user -> bcrypt hash
    users: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None


def load_web_config(path: str | None) -> WebConfig:
    """Parse and check the file (None: plain HTTP, no auth, as before)."""
    if path is None:
        return WebConfig()
    p = Path(path)
    try:
        data = read_yaml_mapping(p)
    except YamlFileError as exc:
        raise WebConfigError(f"web_config_file: {exc}") from None
    unknown = set(map(str, data)) - _TOP_KEYS
    if unknown:
        raise WebConfigError(f"web_config_file: {p}: unsupported key(s) {sorted(unknown)}")
    tls = data.get("tls_server_config") or {}
    if not isinstance(tls, dict) or set(map(str, tls)) - _TLS_KEYS:
        bad = sorted(set(map(str, tls)) - _TLS_KEYS) if isinstance(tls, dict) else tls
        raise WebConfigError(f"web_config_file: {p}: tls_server_config: unsupported {bad}")
    base = p.parent

    def file_of(key: str) -> str | None:
        value = tls.get(key)
        if value is None:
            return None
        f = Path(str(value))
        f = f if f.is_absolute() else base / f  # relative to the config file, as the toolkit
        if not f.is_file():
            raise WebConfigError(f"web_config_file: tls_server_config.{key}: no such file: {f}")
        return str(f)

    cert, key = file_of("cert_file"), file_of("key_file")
    if (cert is None) != (key is None):
        raise WebConfigError("web_config_file: tls_server_config needs cert_file and key_file")
    version = str(tls.get("min_version", "TLS12"))
    if version not in _VERSIONS:
        raise WebConfigError(f"web_config_file: tls_server_config.min_version: {version!r}")
    users_raw = data.get("basic_auth_users") or {}
    if not isinstance(users_raw, dict):
        raise WebConfigError("web_config_file: basic_auth_users must map user -> bcrypt hash")
    users: dict[str, bytes] = {}
    for user, hashed in users_raw.items():
        h = str(hashed).encode()
        if not h.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise WebConfigError(
                f"web_config_file: basic_auth_users.{user}: not a bcrypt hash "
                "(make one with `htpasswd -nBC 10 USER`)"
            )
        users[str(user)] = h
    cfg = WebConfig(cert, key, file_of("client_ca_file"), version, users)
    if cfg.tls:
        ssl_context(cfg)  # a key that does not match its cert fails now, not at the first scrape
    return cfg


def ssl_context(cfg: WebConfig) -> ssl.SSLContext | None:
    if not cfg.tls:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = _VERSIONS[cfg.min_version]
    try:
        ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        if cfg.client_ca_file is not None:
            ctx.load_verify_locations(cfg.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (ssl.SSLError, OSError) as exc:
        raise WebConfigError(f"web_config_file: tls_server_config: {exc}") from None
    return ctx


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes (with a success cache)."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._ok: set[bytes] = set()

    def check(self, header: str | None) -> bool:
        import bcrypt

        if not header or not header.startswith("Basic "):
            return False
        try:
            raw = base64.b64decode(header[6:], validate=True).decode()
            user, sep, password = raw.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        token = hashlib.sha256(hashed + b"\0" + password.encode()).digest()
        if any(hmac.compare_digest(token, t) for t in self._ok):
            return True
        if bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1)):
            self._ok.add(token)
            return True
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on host:port (OSError when taken or not allowed).

    Bound before anything slow starts, so a taken port is one clear line at
    start-up, never a traceback after connecting to a broker."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def make_app(cfg: WebConfig | None = None, open_paths: tuple[str, ...] = (),
             client_max_size: int = 1024**2) -> web.Application:
    """An aiohttp app behind the web config's basic auth (when it has users).

    `open_paths` are path prefixes the auth does not cover because they carry
    their own authentication (the webhook gateway's signed deliveries)."""
    cfg = cfg or WebConfig()
    middlewares: list[Any] = []
    if cfg.users:
        auth = BasicAuth(cfg.users)

        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith(open_paths or ("\0",)) and not auth.check(
                request.headers.get("Authorization")
            ):
                return web.Response(
                    status=401,
                    text="Unauthorized\n",
                    headers={"WWW-Authenticate": 'Basic realm="cxpulse"'},
                )
            return await handler(request)

        middlewares.append(basic_auth)
    return web.Application(middlewares=middlewares, client_max_size=client_max_size)


async def start(sock: socket.socket, app: web.Application,
                cfg: WebConfig | None = None) -> web.AppRunner:
    """Serve `app` on the bound socket (TLS when the config has a cert); `cleanup()` the
    returned runner to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ssl_context(cfg or WebConfig())).start()
    return runner


async def serve(
    sock: socket.socket, routes: Mapping[str, Handler], cfg: WebConfig | None = None
) -> web.AppRunner:
    """Serve GET `routes` on the bound socket; returns the runner (`cleanup()` it)."""
    app = make_app(cfg)
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    return await start(sock, app, cfg)


async def serve_until(sock: socket.socket, app: web.Application, cfg: WebConfig | None,
                      stop: asyncio.Event) -> None:
    """Serve `app` until `stop` is set, then close the listener and open requests."""
    runner = await start(sock, app, cfg)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def add_web_flags(p: argparse.ArgumentParser, default_port: int,
                  default_host: str = "127.0.0.1") -> None:
    """`--host`, `--port`, `--web-config-file`: the bind and protection flags of every
    command that serves HTTP from flags (the wall, the gateway); the worker and the
    exporter take the same three as settings (metrics_host, metrics_port,
    web_config_file)."""
    p.add_argument("--host", default=default_host, help="address to listen on")
    p.add_argument("--port", type=int, default=default_port, help="port to listen on")
    p.add_argument("--web-config-file", default=None, metavar="YAML",
                   help="TLS and basic auth (exporter-toolkit web-config format, as the "
                   "worker's web_config_file); none: plain HTTP without auth")
