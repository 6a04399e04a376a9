"""The coordinator's Flower SuperLink: its command line, starting it, and the ``flwr`` CLI.

The coordinator starts (or attaches to) one ``flower-superlink``: Fleet, Control and
Runtime APIs on one HTTP port, runtime dependency installation off (the bundle has no
dependencies; sites run their installed fedpsy). Each site runs a SuperNode
(:mod:`node.training.supernode`). The connection ``fedpsy`` to the SuperLink is written
into ``$FLWR_HOME/config.toml`` (:func:`write_connection`) and the ``flwr`` CLI reaches it
by that name (:func:`flwr_json`); runs are submitted by
:class:`coordinator.training.runtimes.deployment.DeploymentRuntime`.

TLS and SuperNode authentication. With the coordinator's certificate, key and CA the
SuperLink serves TLS (``--ssl-certfile/--ssl-keyfile/--ssl-ca-certfile``) and runs with
``--enable-supernode-auth``: it accepts only SuperNodes whose public key was registered
through its Control API (``flwr supernode register``, see
:mod:`coordinator.training.supernodes`), and keeps its state, those registrations
included, in ``FLWR_HOME/superlink.db`` so that they survive a restart. Each SuperNode
runs with ``--root-certificates`` and ``--auth-supernode-private-key``. Flower refuses
SuperNode authentication without TLS, so without TLS the SuperLink runs ``--insecure``,
accepts any SuperNode and must listen on loopback only. The Control API (runs,
registrations) shares the SuperLink's port and asks for no account in Flower's open-source
SuperLink: the port is for the sites' SuperNodes and the coordinator only.

``fedpsy coordinator serve --flower`` (or ``--superlink ADDRESS``) tells the jobs of its
process where the SuperLink is through :data:`SUPERLINK_ENV` and its companions
(:func:`superlink_env`);
:func:`coordinator.training.runtimes.deployment.superlink_runtime` reads them when a
``train`` request asks for ``runtime = "superlink"``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from schemas.errors import ErrorCode, FedpsyError
from schemas.settings import local_host
from schemas.training.env import child_env

CONNECTION = "fedpsy"
SUPERLINK_ENV = "FEDPSY_SUPERLINK"
"""``host:port`` of the SuperLink this coordinator process submits runs to."""
SUPERLINK_HOME_ENV = "FEDPSY_SUPERLINK_HOME"
"""The coordinator's ``FLWR_HOME`` (connection, bundles, plans and outcomes)."""
SUPERLINK_CA_ENV = "FEDPSY_SUPERLINK_CA"
"""CA certificate the SuperLink's TLS certificate chains to (unset: plain, loopback only)."""


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise FedpsyError(
        f"nothing listens on {host}:{port} after {timeout:g} s", code=ErrorCode.SITE_UNREACHABLE
    )


def superlink_command(
    port: int,
    *,
    insecure: bool = False,
    database: Path | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    supernode_auth: bool = False,
    host: str | None = None,
) -> list[str]:
    """The SuperLink's command line; ``tls`` is (certificate, key, CA certificate),
    ``supernode_auth`` needs it; ``host``: the interface (Flower's default: 127.0.0.1)."""
    scripts = Path(sys.executable).parent
    command = [
        str(scripts / "flower-superlink"),
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
    ]
    if host is not None:
        command += ["--host", host]
    if insecure:
        command.append("--insecure")
    if tls is not None:
        cert, key, ca = tls
        command += [
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
            "--ssl-ca-certfile",
            str(ca),
        ]
    if supernode_auth:
        command.append("--enable-supernode-auth")
    if database is not None:
        command += ["--database", str(database)]
    return command


def start_superlink(home: Path, port: int, log: Path, **options: Any) -> subprocess.Popen[bytes]:
    """Start the SuperLink with Flower's environment in ``home``; waits for its port."""
    home.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            superlink_command(port, **options),
            env=child_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(local_host(options.get("host")), port, 60)
    return process


def flwr_json(
    home: Path, *args: str, timeout: float = 60.0, code: ErrorCode = ErrorCode.SUPERLINK_ERROR
) -> dict[str, Any]:
    """``flwr ARGS --format json`` in Flower's environment of ``home`` (where the
    connection is); an answer that is not JSON is an error with ``code``. Flower reports
    the SuperLink's refusals in the JSON (``success: false``) and exits 0."""
    scripts = Path(sys.executable).parent
    done = subprocess.run(
        [str(scripts / "flwr"), *args, "--format", "json"],
        env=child_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        detail = (done.stderr.strip() or done.stdout.strip())[-400:]
        raise FedpsyError(f"flwr {' '.join(args[:2])} failed: {detail}", code=code) from None


def write_connection(
    home: Path, address: str, *, insecure: bool = False, root_certificates: Path | None = None
) -> None:
    """``$FLWR_HOME/config.toml`` with the connection ``fedpsy`` (the default)."""
    lines = [
        "[superlink]",
        f'default = "{CONNECTION}"',
        "",
        f"[superlink.{CONNECTION}]",
        f'address = "{address}"',
    ]
    if insecure:
        lines.append("insecure = true")
    if root_certificates is not None:
        lines.append(f'root-certificates = "{root_certificates}"')
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def superlink_env(address: str, home: Path, ca: Path | None) -> dict[str, str]:
    """The variables that point this process's ``train`` jobs at a SuperLink."""
    env = {SUPERLINK_ENV: address, SUPERLINK_HOME_ENV: str(home.resolve())}
    if ca is not None:
        env[SUPERLINK_CA_ENV] = str(ca.resolve())
    return env


__all__ = [
    "CONNECTION",
    "SUPERLINK_CA_ENV",
    "SUPERLINK_ENV",
    "SUPERLINK_HOME_ENV",
    "flwr_json",
    "start_superlink",
    "superlink_command",
    "superlink_env",
    "wait_for_port",
    "write_connection",
]
