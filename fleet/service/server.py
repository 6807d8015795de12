"""Serving the app: build it from settings, bind, run uvicorn on a thread, stop.

``ApiServer(settings, policies).start()`` returns the URL once the server accepts requests;
``fleet serve`` prints it as its one JSON line, tests use it in-process. With ``dev=True`` the
dev issuer (``fleet.service.devissuer``) is the only issuer trusted, and the server refuses to
listen anywhere but loopback.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from fleet.record.history import open_history
from fleet.service.app import create_app, sign_in
from fleet.service.auth import Service
from fleet.service.devissuer import AUDIENCE, DevIssuer
from fleet.service.engine import Engine
from fleet.service.tokens import Issuer, Jwks, TokenValidator
from fleet.settings import Settings, is_loopback_url

log = logging.getLogger(__name__)


class DevNotOnLoopback(ValueError):
    """``--dev`` on an address other machines can reach (anyone could mint tokens)."""


def build(
    settings: Settings, policies: Sequence[Path], *, url: str, dev: bool = False
) -> tuple[FastAPI, Service]:
    """The app and its service for ``settings`` (``url``: where it will be reached)."""
    issuer: DevIssuer | None = None
    if dev:
        issuer = DevIssuer(url)
        jwks = issuer.jwks()
        validator = TokenValidator(
            Issuer(issuer.issuer, (AUDIENCE,), f"{url}/dev/jwks.json", settings.api_clock_skew),
            Jwks(f"{url}/dev/jwks.json", fetch=lambda _url: jwks),
        )
    else:
        validator = TokenValidator(Issuer.of(settings))
    history = open_history(settings)
    service = Service(
        settings,
        validator,
        history,
        Engine(settings, policies, history),
        sign_in(settings, dev),
    )
    return create_app(service, dev=issuer), service


class ApiServer:
    """``fleet serve`` on a daemon thread."""

    def __init__(
        self,
        settings: Settings,
        policies: Sequence[Path] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dev: bool = False,
    ) -> None:
        if dev and not is_loopback_url(f"http://{_bracketed(host)}/"):
            raise DevNotOnLoopback(
                f"--dev mints tokens for anyone who can reach it: it listens on loopback only, "
                f"not {host}"
            )
        self.settings, self.policies = settings, list(policies)
        self.host, self.port, self.dev = host, port, dev
        self.url = ""
        self.service: Service | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 20.0) -> str:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{_bracketed(self.host)}:{self.port}"
        app, self.service = build(self.settings, self.policies, url=self.url, dev=self.dev)
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # surfaced by start() below
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fleet-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start in time")
            time.sleep(0.01)
        log.info("fleet serve: %s (engine %s)", self.url, self.service.engine.name)
        return self.url

    def request_stop(self) -> None:
        """Ask the server to stop (from a signal handler); ``wait`` then returns."""
        if self._server is not None:
            self._server.should_exit = True

    def wait(self) -> None:
        """Block until the server stops (a signal sets ``should_exit``)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.5)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving. Local jobs still running are left as they are: resumable."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.service is not None:
            self.service.history.close()

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
