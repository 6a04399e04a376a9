"""Serving an ASGI app on a loopback port in a background thread (sandbox, demo, tests),
over HTTP or, given TLS options, HTTPS."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from schemas.settings import ServeSettings
from schemas.tls import ServerTls


def serve_config(app: Any, settings: ServeSettings) -> uvicorn.Config:
    """How ``fedpsy node serve`` and ``fedpsy coordinator serve`` run ``app``: on the
    settings' address, HTTPS when TLS is set, our JSON logs, no websockets."""
    tls = settings.server_tls
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws="none",
        **(tls.uvicorn_options() if tls else {}),
    )


class BackgroundServer:
    """``with BackgroundServer(app) as server: server.url`` — real HTTP(S), stopped on exit."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, tls: ServerTls | None = None
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        options = tls.uvicorn_options() if tls is not None else {}
        self._scheme = "https" if tls is not None else "http"
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", ws="none", **options
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self._scheme}://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
