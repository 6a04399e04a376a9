"""Flower next to the services: the coordinator's SuperLink and a site's SuperNode.

``fedpsy coordinator serve DIR --flower`` starts a ``flower-superlink`` (Fleet, Control
and Runtime APIs on one port, FLWR_HOME in ``DIR/flwr``, log in ``DIR/flwr/superlink.log``)
for as long as the coordinator serves; ``--superlink ADDRESS`` attaches to one that runs
elsewhere on the same host (runs are submitted with plan files under ``DIR/flwr``). Either
way, ``train`` requests with ``"runtime": "superlink"`` run there.

``fedpsy node serve DIR --supernode ADDRESS`` starts the site's SuperNode and its
long-running ClientApp worker (:mod:`node.training.worker`; the ClientApp works through
the node directory's gate and audit; log in ``DIR/flwr/supernode.log``) alongside the
node's API, starts either again when it exits (:mod:`fedpsy.keeper`: a SuperNode refused
until its key is registered joins once it is) and stops them when the API stops.

TLS and SuperNode authentication: when the coordinator has a certificate, key and CA, the
SuperLink serves TLS and admits only registered SuperNodes (``--enable-supernode-auth``;
its state, registrations included, in ``DIR/flwr/superlink.db``); the operator registers
each site's SuperNode public key with ``fedpsy coordinator register-supernode``. A node
with ``tls_ca_certs`` runs its SuperNode over TLS, trusting that CA, and signing with the
site's SuperNode key (``DIR/keys/supernode.key``, created on first use; ``fedpsy node
supernode-key`` shows the public key to send). Flower allows authentication only over
TLS, so without TLS both run in plain gRPC, admit any SuperNode, and the SuperLink may
listen on loopback only.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.training.superlink import (
    start_superlink,
    superlink_env,
    wait_for_port,
    write_connection,
)
from fedpsy.keeper import Kept, keep_running, stop_process
from node.training.supernode import start_supernode, start_worker
from node.training.supernode_keys import supernode_key
from schemas.errors import ErrorCode, FedpsyError
from schemas.settings import LOOPBACK, local_host
from schemas.tls import ServerTls, client_context

logger = logging.getLogger(__name__)
SUPERLINK_PORT = 9092
SUPERNODE_PORT = 9094


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise FedpsyError(f"{address!r} is not HOST:PORT", code=ErrorCode.BAD_INPUT)
    return host, int(port)


def _secure_files(tls: ServerTls | None) -> tuple[Path, Path, Path] | None:
    """(certificate, key, CA) for the SuperLink's TLS, or None: Flower needs all three and
    cannot read a key protected by a password."""
    if tls is None or tls.ca_certs is None:
        return None
    if tls.key_password is not None:
        raise FedpsyError(
            f"the SuperLink cannot read the password-protected key {tls.keyfile}; give the "
            "coordinator a key without a password (file mode 0600)",
            code=ErrorCode.CONFIG_INVALID,
        )
    return tls.certfile, tls.keyfile, tls.ca_certs


def _san(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"--dns {host}"
    return f"--ip {host}"


def _check_certificate(address: str, ca: Path) -> None:
    """The coordinator submits runs and registers SuperNodes at ``address`` with Flower's
    CLI, which checks the SuperLink's certificate for that host and reports a mismatch only
    as "unavailable": check it here, at start, with a message that says what to fix."""
    host, port = _split(address)
    context = client_context(ca, what="the SuperLink's TLS")
    try:
        with socket.create_connection((host, port), timeout=10) as sock:
            context.wrap_socket(sock, server_hostname=host).close()
    except ssl.SSLCertVerificationError as exc:
        raise FedpsyError(
            f"the SuperLink's certificate does not hold for {host} ({exc.verify_message}), "
            f"where the coordinator reaches it: issue the coordinator's certificate for it "
            f"as well (`fedpsy pki issue PKI_DIR --name coordinator {_san(host)} …`), "
            f"chained to {ca}",
            code=ErrorCode.TLS_INVALID,
        ) from None
    except OSError as exc:
        raise FedpsyError(
            f"the SuperLink at {address} cannot be reached over TLS: {exc}",
            code=ErrorCode.SUPERLINK_ERROR,
        ) from None


@contextmanager
def coordinator_superlink(
    directory: Path,
    *,
    start: bool,
    attach: str | None,
    port: int = SUPERLINK_PORT,
    tls: ServerTls | None = None,
    host: str = "127.0.0.1",
) -> Iterator[str | None]:
    """Start or attach the SuperLink for this coordinator process; yields its address.

    A started SuperLink listens on ``host``; with the coordinator's TLS (certificate, key
    and CA) it admits only registered SuperNodes, without it it must stay on loopback."""
    if start and attach is not None:
        raise FedpsyError("give either --flower or --superlink ADDRESS", code=ErrorCode.BAD_INPUT)
    if not start and attach is None:
        yield None
        return
    home = (directory / "flwr").resolve()
    home.mkdir(parents=True, exist_ok=True)
    process: subprocess.Popen[bytes] | None = None
    ca = tls.ca_certs.resolve() if tls is not None and tls.ca_certs is not None else None
    if start:
        files = _secure_files(tls)
        if files is None and host not in LOOPBACK:
            raise FedpsyError(
                f"a SuperLink without TLS admits any SuperNode, so it listens on loopback "
                f"only, not on {host}: set the coordinator's tls_certfile, tls_keyfile and "
                "tls_ca_certs (SuperNode authentication is then on)",
                code=ErrorCode.CONFIG_INVALID,
            )
        database = home / "superlink.db" if files is not None else None
        process = start_superlink(
            home,
            port,
            home / "superlink.log",
            host=host,
            insecure=files is None,
            tls=files,
            supernode_auth=files is not None,
            database=database,
        )
        address = f"{local_host(host)}:{port}"
    else:
        assert attach is not None
        address = attach
        wait_for_port(*_split(address), timeout=10)
    try:
        if ca is not None:
            _check_certificate(address, ca)
        write_connection(home, address, insecure=ca is None, root_certificates=ca)
        os.environ.update(superlink_env(address, home, ca))
        yield address
    finally:
        if process is not None:
            stop_process(process, "the SuperLink")


@contextmanager
def site_supernode(
    directory: Path,
    superlink: str | None,
    *,
    port: int = SUPERNODE_PORT,
    ca_certs: Path | None = None,
) -> Iterator[list[Kept]]:
    """Start the site's SuperNode and its ClientApp worker next to the node's API (nothing
    without ``superlink``), kept running (:mod:`fedpsy.keeper`) until the block ends. With
    ``ca_certs`` the SuperNode connects over TLS and authenticates with the site's
    SuperNode key."""
    if superlink is None:
        yield []
        return
    _split(superlink)
    log = directory / "flwr" / "supernode.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    auth_key = None if ca_certs is None else supernode_key(directory).private
    options = {"insecure": ca_certs is None, "root_certificates": ca_certs, "auth_key": auth_key}
    kept = [
        Kept(
            "the SuperNode",
            lambda: start_supernode(directory, superlink, port, log, warm=True, **options),
            log,
        ),
        Kept("the ClientApp worker", lambda: start_worker(directory, port, log), log),
    ]
    with keep_running(kept):
        yield kept


__all__ = ["SUPERLINK_PORT", "SUPERNODE_PORT", "coordinator_superlink", "site_supernode"]
