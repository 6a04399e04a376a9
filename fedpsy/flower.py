"""Flower next to the services: the coordinator's SuperLink and a site's SuperNode.

``fedpsy coordinator serve DIR --flower`` starts a ``flower-superlink`` (Fleet, Control
and Runtime APIs on one port, FLWR_HOME in ``DIR/flwr``, log in ``DIR/flwr/superlink.log``)
for as long as the coordinator serves; ``--superlink ADDRESS`` attaches to one that runs
elsewhere on the same host (runs are submitted with plan files under ``DIR/flwr``). Either
way, ``train`` requests with ``"runtime": "superlink"`` run there.

``fedpsy node serve DIR --supernode ADDRESS`` starts the site's SuperNode and its
long-running ClientApp worker (:mod:`node.training.worker`; the ClientApp works through
the node directory's gate and audit; log in ``DIR/flwr/supernode.log``) alongside the
node's API, and stops them when the API stops.

TLS: the SuperLink uses the coordinator's server certificate, key and CA when TLS is set
(else it listens in plain gRPC, for loopback only); a SuperNode trusts the node's
``tls_ca_certs`` (else it connects in plain gRPC). SuperNode authentication
(``--enable-supernode-auth`` with keys registered by ``flwr supernode register``) is not
switched on here.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.training.deploy import start_superlink, superlink_env, wait_for_port
from node.training.supernode import start_site
from schemas.errors import FedpsyError
from schemas.tls import ServerTls

logger = logging.getLogger(__name__)
SUPERLINK_PORT = 9092
SUPERNODE_PORT = 9094


def _stop(process: subprocess.Popen[bytes], what: str) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in 10 s; killing it", what)
        process.kill()
        process.wait()


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise FedpsyError(f"{address!r} is not HOST:PORT", code="bad_input")
    return host, int(port)


@contextmanager
def coordinator_superlink(directory: Path, *, start: bool, attach: str | None,
                          port: int = SUPERLINK_PORT,
                          tls: ServerTls | None = None) -> Iterator[str | None]:  # fmt: skip
    """Start or attach the SuperLink for this coordinator process; yields its address."""
    if start and attach is not None:
        raise FedpsyError("give either --flower or --superlink ADDRESS", code="bad_input")
    if not start and attach is None:
        yield None
        return
    home = (directory / "flwr").resolve()
    home.mkdir(parents=True, exist_ok=True)
    process: subprocess.Popen[bytes] | None = None
    if start:
        files = None if tls is None or tls.ca_certs is None else (tls.certfile, tls.keyfile,
                                                                  tls.ca_certs)  # fmt: skip
        process = start_superlink(home, port, home / "superlink.log", insecure=files is None,
                                  tls=files)  # fmt: skip
        address = f"127.0.0.1:{port}"
    else:
        assert attach is not None
        address = attach
        wait_for_port(*_split(address), timeout=10)
    ca = tls.ca_certs if tls is not None else None
    os.environ.update(superlink_env(address, home, ca))
    try:
        yield address
    finally:
        if process is not None:
            _stop(process, "the SuperLink")


@contextmanager
def site_supernode(
    directory: Path,
    superlink: str | None,
    *,
    port: int = SUPERNODE_PORT,
    ca_certs: Path | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the site's SuperNode and its ClientApp worker next to the node's API (nothing
    without ``superlink``); yields the processes."""
    if superlink is None:
        yield []
        return
    _split(superlink)
    log = directory / "flwr" / "supernode.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    processes = start_site(directory, superlink, port, log, insecure=ca_certs is None,
                           root_certificates=ca_certs)  # fmt: skip
    try:
        yield processes
    finally:
        for process in reversed(processes):
            _stop(process, "the SuperNode" if process is processes[0] else "its worker")


__all__ = ["SUPERLINK_PORT", "SUPERNODE_PORT", "coordinator_superlink", "site_supernode"]
