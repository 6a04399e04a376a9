"""Deployment mode: training runs submitted to the coordinator's SuperLink with ``flwr run``.

A run writes the plan's JSON and the app bundle under ``FLWR_HOME`` (inside the
coordinator directory), submits the bundle with
``flwr run BUNDLE CONNECTION --format json --run-config plan="…"`` (the connection is in
``$FLWR_HOME/config.toml``, see :mod:`coordinator.training.superlink`), and waits for the
ServerApp's outcome file (:func:`~coordinator.training.outcome.outcome_path`).

A ``train`` request with ``runtime = "superlink"`` runs on the SuperLink this coordinator
process was started with (:func:`superlink_runtime`). The plan then carries the job's
:class:`~coordinator.training.delivery.Delivery` (:class:`Delivered`), and the ServerApp
runs the job's federation over the grid (:mod:`coordinator.training.carried`): the same
signed tasks and secure sums as over HTTP, sent only to the SuperNodes that prove the
job's sites' identities. A site's refusal comes back as
:class:`~coordinator.federation.failures.SitesFailed`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from coordinator.federation.base import Federation
from coordinator.training.delivery import delivery_for
from coordinator.training.links import SiteLink
from coordinator.training.outcome import Outcome, outcome_path, raise_recorded
from coordinator.training.plan import TrainPlan
from coordinator.training.superlink import (
    CONNECTION,
    SUPERLINK_CA_ENV,
    SUPERLINK_ENV,
    SUPERLINK_HOME_ENV,
    flwr_json,
    write_connection,
)
from schemas.errors import ErrorCode, FedpsyError
from schemas.training.bundle import write_bundle

logger = logging.getLogger(__name__)


class DeploymentRuntime:
    """Runs on a SuperLink at ``address`` (the connection is written into ``home``)."""

    def __init__(
        self,
        home: Path,
        address: str,
        *,
        insecure: bool = False,
        root_certificates: Path | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.home = home
        self.address = address
        self.insecure = insecure
        self.root_certificates = root_certificates
        self.timeout = timeout
        self.last_run: dict[str, Any] = {}

    def _flwr(self, *args: str) -> dict[str, Any]:
        return flwr_json(self.home, *args, timeout=120, code=ErrorCode.TRAINING_FAILED)

    def _ended_without_outcome(self, run_id: str, result: Path) -> None:
        runs = self._flwr("ls", CONNECTION, "--run-id", run_id).get("runs", [])
        status = str(runs[0].get("status", "")) if runs else ""
        if status.startswith("finished") and not result.exists():
            details = str(runs[0].get("status-details", ""))[:300]
            raise FedpsyError(
                f"the run ended ({status}) without an outcome: {details}",
                code=ErrorCode.TRAINING_FAILED,
            )

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
        del links  # in deployment each site's SuperNode runs the ClientApp itself
        write_connection(
            self.home,
            self.address,
            insecure=self.insecure,
            root_certificates=self.root_certificates,
        )
        bundle = write_bundle(self.home / "bundle")
        runs = self.home / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        plan_path = runs / f"{plan.run_id}.plan.json"
        plan_path.write_text(plan.model_dump_json(), encoding="utf-8")
        result = outcome_path(plan_path)
        started = self._flwr("run", str(bundle), CONNECTION, "--run-config", f'plan="{plan_path}"')
        if not started.get("success"):
            raise FedpsyError(
                f"the SuperLink did not start the run: {started}", code=ErrorCode.TRAINING_FAILED
            )
        run_id = str(started["run-id"])
        deadline = time.monotonic() + self.timeout
        checked = time.monotonic()
        while not result.exists():
            if time.monotonic() > deadline:
                self._flwr("stop", run_id, CONNECTION)
                raise FedpsyError(
                    "the training run did not finish in time", code=ErrorCode.SITE_TIMEOUT
                )
            if time.monotonic() - checked > 10:  # `flwr ls` is a process start
                checked = time.monotonic()
                self._ended_without_outcome(run_id, result)
            time.sleep(0.2)
        time.sleep(0.1)  # the file is written in one call; let it close
        outcome = Outcome.model_validate_json(result.read_text(encoding="utf-8"))
        self.last_run = self._finished(run_id)
        if outcome.error is not None:
            raise_recorded(outcome.error, fallback=ErrorCode.TRAINING_FAILED)
        return outcome


def superlink_runtime() -> DeploymentRuntime | None:
    """The deployment runtime of the SuperLink this process was started with, if any."""
    address = os.environ.get(SUPERLINK_ENV)
    home = os.environ.get(SUPERLINK_HOME_ENV)
    if not address or not home:
        return None
    ca = os.environ.get(SUPERLINK_CA_ENV)
    return DeploymentRuntime(
        Path(home), address, insecure=ca is None, root_certificates=Path(ca) if ca else None
    )


class Delivered:
    """A deployment runtime whose plans carry the delivery of ``federation``."""

    def __init__(self, runtime: DeploymentRuntime, federation: Federation, key_file: Path) -> None:
        self.runtime = runtime
        self.federation = federation
        self.key_file = key_file
        delivery_for(federation, key_file)  # refuse before any step

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        delivery = delivery_for(self.federation, self.key_file)
        return self.runtime.run(plan.model_copy(update={"delivery": delivery}), links)


__all__ = ["Delivered", "DeploymentRuntime", "superlink_runtime"]
