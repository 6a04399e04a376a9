"""Real processes for deployment and fault tests: nodes and coordinators started with the
``fedpsy`` command (optionally inside a network namespace), node directories with data,
a consortium PKI."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from fedpsy.serving import BackgroundServer
from node.auth.trust import add_trusted_key
from node.site import NodeSite
from schemas.pki import init_ca, issue_certificate
from schemas.tls import ServerTls

FEDPSY = str(Path(sys.executable).with_name("fedpsy"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def make_node(
    root: Path,
    site: str,
    person: pd.DataFrame,
    obs: pd.DataFrame,
    coordinator_pub: Path | None = None,
    database_url: str | None = None,
) -> Path:
    """A node directory for ``site`` holding ``person``/``obs``, trusting the coordinator."""
    folder = root / f"{site}-data"
    folder.mkdir(parents=True)
    person.to_csv(folder / "person.csv", index=False)
    obs.to_csv(folder / "observations.csv", index=False)
    node = NodeSite.create(root / site, site, database_url)
    try:
        node.ingest(folder)
    finally:
        node.engine.dispose()
    if coordinator_pub is not None:
        add_trusted_key(root / site, coordinator_pub)
    return root / site


def append_serve_table(config: Path, **values: str | int) -> None:
    """Add a ``[serve]`` table to ``node.toml``/``coordinator.toml``."""
    lines = ["", "[serve]"]
    for key, value in values.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    with config.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


@dataclass
class Pki:
    """A consortium CA in ``root`` with certificates issued on demand."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Pki:
        init_ca(root)
        return cls(root)

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    def issue(
        self, name: str, dns: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",)
    ) -> tuple[Path, Path]:
        issued = issue_certificate(self.root, name, dns, ips)
        return issued.cert, issued.key

    def client_context(self, name: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)
        if name is not None:
            ctx.load_cert_chain(self.root / f"{name}.pem", self.root / f"{name}.key")
        return ctx


@dataclass
class Served:
    """``fedpsy node|coordinator serve DIR`` as a real process (``prefix``: e.g. an
    ``ip netns exec NS`` wrapper)."""

    kind: str
    directory: Path
    host: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    prefix: Sequence[str] = ()
    scheme: str = "http"
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, verify: ssl.SSLContext | bool = True, timeout: float = 30.0) -> Served:
        self.log = self.directory.parent / f"{self.directory.name}-{self.kind}.log"
        cmd = [
            *self.prefix,
            FEDPSY,
            self.kind,
            "serve",
            str(self.directory),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        env = {**os.environ, **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/health", verify=verify, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.kind} on {self.url} did not answer /health: {self.log.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash or power loss."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class TlsServer(BackgroundServer):
    """An ASGI app served over HTTPS in a thread of this process (fast, for TLS tests)."""

    def __init__(self, app: Any, tls: ServerTls, host: str = "127.0.0.1") -> None:
        super().__init__(app, host, tls=tls)
