"""Deployment mode: a real Flower SuperLink, and runs submitted to it with ``flwr run``.

The coordinator starts (or attaches to) one ``flower-superlink``: Fleet, Control and
Runtime APIs on one HTTP port, runtime dependency installation off (the bundle has no
dependencies; sites run their installed fedpsy). Each site runs a SuperNode
(:mod:`node.training.supernode`). A run writes the plan's JSON and the app bundle under
``FLWR_HOME`` (inside the coordinator directory), submits the bundle with
``flwr run BUNDLE CONNECTION --format json --run-config plan="…"`` (the connection is in
``$FLWR_HOME/config.toml``), and waits for the ServerApp's outcome file.

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
process where the SuperLink is through :data:`SUPERLINK_ENV` and its companions;
:func:`superlink_runtime` reads them when a ``train`` request asks for
``runtime = "superlink"``. The plan then carries the job's
:class:`~coordinator.training.delivery.Delivery`, and the ServerApp runs the job's
federation over the grid (:mod:`coordinator.training.carried`): the same signed tasks and
secure sums as over HTTP, sent only to the SuperNodes that prove the job's sites'
identities. A site's refusal comes back as :class:`~coordinator.federation.failures.SitesFailed`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from coordinator.training.links import SiteLink
from coordinator.training.outcome import Outcome, raise_recorded
from coordinator.training.plan import TrainPlan
from schemas.errors import FedpsyError
from schemas.settings import local_host
from schemas.training.bundle import write_bundle
from schemas.training.env import child_env

logger = logging.getLogger(__name__)
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
    raise FedpsyError(f"nothing listens on {host}:{port} after {timeout:g} s",
                      code="site_unreachable")  # fmt: skip


def superlink_command(port: int, *, insecure: bool = False, database: Path | None = None,
                      tls: tuple[Path, Path, Path] | None = None, supernode_auth: bool = False,
                      host: str | None = None) -> list[str]:  # fmt: skip
    """The SuperLink's command line; ``tls`` is (certificate, key, CA certificate),
    ``supernode_auth`` needs it; ``host``: the interface (Flower's default: 127.0.0.1)."""
    scripts = Path(sys.executable).parent
    command = [str(scripts / "flower-superlink"), "--port", str(port),
               "--disable-runtime-dependency-installation"]  # fmt: skip
    if host is not None:
        command += ["--host", host]
    if insecure:
        command.append("--insecure")
    if tls is not None:
        cert, key, ca = tls
        command += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                    "--ssl-ca-certfile", str(ca)]  # fmt: skip
    if supernode_auth:
        command.append("--enable-supernode-auth")
    if database is not None:
        command += ["--database", str(database)]
    return command


def start_superlink(home: Path, port: int, log: Path, **options: Any) -> subprocess.Popen[bytes]:
    """Start the SuperLink with Flower's environment in ``home``; waits for its port."""
    home.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(superlink_command(port, **options), env=child_env(home),
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    wait_for_port(local_host(options.get("host")), port, 60)
    return process


def flwr_json(home: Path, *args: str, timeout: float = 60.0,
              code: str = "superlink_error") -> dict[str, Any]:  # fmt: skip
    """``flwr ARGS --format json`` in Flower's environment of ``home`` (where the
    connection is); an answer that is not JSON is an error with ``code``. Flower reports
    the SuperLink's refusals in the JSON (``success: false``) and exits 0."""
    scripts = Path(sys.executable).parent
    done = subprocess.run([str(scripts / "flwr"), *args, "--format", "json"],
                          env=child_env(home), cwd=home, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        detail = (done.stderr.strip() or done.stdout.strip())[-400:]
        raise FedpsyError(f"flwr {' '.join(args[:2])} failed: {detail}",
                          code=code) from None  # fmt: skip


def write_connection(home: Path, address: str, *, insecure: bool = False,
                     root_certificates: Path | None = None) -> None:  # fmt: skip
    """``$FLWR_HOME/config.toml`` with the connection ``fedpsy`` (the default)."""
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
             f'address = "{address}"']  # fmt: skip
    if insecure:
        lines.append("insecure = true")
    if root_certificates is not None:
        lines.append(f'root-certificates = "{root_certificates}"')
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


class DeploymentRuntime:
    """Runs on a SuperLink at ``address`` (the connection is written into ``home``)."""

    def __init__(self, home: Path, address: str, *, insecure: bool = False,
                 root_certificates: Path | None = None,
                 timeout: float = 600.0) -> None:  # fmt: skip
        self.home = home
        self.address = address
        self.insecure = insecure
        self.root_certificates = root_certificates
        self.timeout = timeout
        self.last_run: dict[str, Any] = {}

    def _flwr(self, *args: str) -> dict[str, Any]:
        return flwr_json(self.home, *args, timeout=120, code="training_failed")

    def _ended_without_outcome(self, run_id: str, result: Path) -> None:
        runs = self._flwr("ls", CONNECTION, "--run-id", run_id).get("runs", [])
        status = str(runs[0].get("status", "")) if runs else ""
        if status.startswith("finished") and not result.exists():
            details = str(runs[0].get("status-details", ""))[:300]
            raise FedpsyError(f"the run ended ({status}) without an outcome: {details}",
                              code="training_failed")  # fmt: skip

    def _finished(self, run_id: str, wait: float = 10.0) -> dict[str, Any]:
        """The run's listing once the SuperLink reports it finished (the ServerApp writes
        its outcome just before it returns), or the last listing after ``wait`` s."""
        deadline = time.monotonic() + wait
        while True:
            listed = self._flwr("ls", CONNECTION, "--run-id", run_id)
            run: dict[str, Any] = next(iter(listed.get("runs", [])), {})
            if str(run.get("status", "")).startswith("finished") or time.monotonic() > deadline:
                return run
            time.sleep(0.2)

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        from coordinator.training.server_app import outcome_path

        del links  # in deployment each site's SuperNode runs the ClientApp itself
        write_connection(self.home, self.address, insecure=self.insecure,
                         root_certificates=self.root_certificates)  # fmt: skip
        bundle = write_bundle(self.home / "bundle")
        runs = self.home / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        plan_path = runs / f"{plan.run_id}.plan.json"
        plan_path.write_text(plan.model_dump_json(), encoding="utf-8")
        result = outcome_path(plan_path)
        started = self._flwr("run", str(bundle), CONNECTION, "--run-config",
                             f'plan="{plan_path}"')  # fmt: skip
        if not started.get("success"):
            raise FedpsyError(f"the SuperLink did not start the run: {started}",
                              code="training_failed")  # fmt: skip
        run_id = str(started["run-id"])
        deadline = time.monotonic() + self.timeout
        checked = time.monotonic()
        while not result.exists():
            if time.monotonic() > deadline:
                self._flwr("stop", run_id, CONNECTION)
                raise FedpsyError("the training run did not finish in time", code="site_timeout")
            if time.monotonic() - checked > 10:  # `flwr ls` is a process start
                checked = time.monotonic()
                self._ended_without_outcome(run_id, result)
            time.sleep(0.2)
        time.sleep(0.1)  # the file is written in one call; let it close
        outcome = Outcome.model_validate_json(result.read_text(encoding="utf-8"))
        self.last_run = self._finished(run_id)
        if outcome.error is not None:
            raise_recorded(outcome.error, fallback="training_failed")
        return outcome


def superlink_env(address: str, home: Path, ca: Path | None) -> dict[str, str]:
    """The variables that point this process's ``train`` jobs at a SuperLink."""
    env = {SUPERLINK_ENV: address, SUPERLINK_HOME_ENV: str(home.resolve())}
    if ca is not None:
        env[SUPERLINK_CA_ENV] = str(ca.resolve())
    return env


def superlink_runtime() -> DeploymentRuntime | None:
    """The deployment runtime of the SuperLink this process was started with, if any."""
    address = os.environ.get(SUPERLINK_ENV)
    home = os.environ.get(SUPERLINK_HOME_ENV)
    if not address or not home:
        return None
    ca = os.environ.get(SUPERLINK_CA_ENV)
    return DeploymentRuntime(Path(home), address, insecure=ca is None,
                             root_certificates=Path(ca) if ca else None)  # fmt: skip


__all__ = [
    "DeploymentRuntime",
    "flwr_json",
    "start_superlink",
    "superlink_command",
    "superlink_env",
    "superlink_runtime",
    "write_connection",
]
