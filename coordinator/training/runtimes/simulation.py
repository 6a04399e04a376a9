"""The one place a training run meets Flower's simulation runtime.

:func:`simulate` runs the plan's ServerApp and a relaying ClientApp per site with
``flwr.simulation.run_simulation`` (Ray workers; Flower deprecates it in favour of
``flwr run`` against a simulation SuperLink), so replacing the runtime means replacing
this module only. :class:`SimulationRuntime` is the runtime of federations with in-process
sites (``training_links()``: the tests and benchmarks); the coordinator's jobs never run
here. The simulation runs in a spawned child process: Ray's processes, threads and open
files end with it, Flower's environment (telemetry off, ``FLWR_HOME`` in a temporary
directory) is set there before Flower is imported, and Flower's console logging goes to
stderr at warning level, so the caller's stdout stays its own. The child sends back the
:class:`~coordinator.training.outcome.Outcome` or the error.

The ServerApp and the ClientApp (:mod:`coordinator.training.server_app`,
:mod:`coordinator.training.runtimes.relay`) import Flower, so the child imports them once
Flower's environment is set, and importing this module does not import Flower.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from coordinator.training.links import SiteLink
from coordinator.training.outcome import Outcome, error_record, raise_recorded
from coordinator.training.plan import TrainPlan
from schemas.errors import ErrorCode, FedpsyError
from schemas.training.env import flower_environment

logger = logging.getLogger(__name__)


def backend_config(workers: int) -> dict[str, Any]:
    """Ray settings: one CPU per ClientApp, ``workers`` CPUs, quiet logs."""
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": workers,
            "include_dashboard": False,
            "logging_level": "ERROR",
            "log_to_driver": False,
        },
    }


def _run(plan: TrainPlan, links: list[SiteLink], workers: int) -> Outcome:
    """In the child: run the simulation and return the ServerApp's outcome."""
    with tempfile.TemporaryDirectory(prefix="fedpsy-flwr-") as home:
        flower_environment(Path(home))
        # Ray would warn (FutureWarning) about a default it changes in later versions
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        from flwr.simulation import run_simulation
        from flwr.supercore.logger import ConsoleHandler

        # deferred: these two import Flower; only here, in the child, after its environment is set
        from coordinator.training.runtimes.relay import relay_app
        from coordinator.training.server_app import server_app_for

        for handler in logging.getLogger("flwr").handlers:
            if isinstance(handler, ConsoleHandler):
                handler.setLevel(logging.WARNING)
                handler.setStream(sys.stderr)
        sink: list[Outcome] = []
        run_simulation(
            server_app=server_app_for(plan, sink),
            client_app=relay_app(links),
            num_supernodes=len(links),
            backend_config=backend_config(min(workers, len(links))),
        )
    if not sink:
        raise FedpsyError("the ServerApp ended without an outcome", code=ErrorCode.TRAINING_FAILED)
    return sink[0]


def _child(plan_json: str, links: list[SiteLink], workers: int, conn: Connection) -> None:
    try:
        outcome = _run(TrainPlan.model_validate_json(plan_json), links, workers)
        conn.send({"outcome": outcome.model_dump_json()})
    except BaseException as exc:  # everything must reach the parent
        conn.send({"error": error_record(exc)})
    finally:
        conn.close()


def simulate(plan: TrainPlan, links: list[SiteLink], workers: int = 2) -> Outcome:
    """Run ``plan`` in Flower's simulation, one SuperNode per link; errors re-raise here."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(plan.model_dump_json(), links, workers, send),
        name="fedpsy-simulation",
        daemon=True,
    )
    logger.info("simulating %d sites in process %s", len(links), child.name)
    child.start()
    send.close()
    try:
        answer = receive.recv()
    except EOFError:
        answer = {
            "error": {
                "code": ErrorCode.TRAINING_FAILED.value,
                "detail": "the simulation process died",
            }
        }
    finally:
        receive.close()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            child.join()
    if "outcome" in answer:
        return Outcome.model_validate_json(answer["outcome"])
    raise_recorded(answer["error"], fallback=ErrorCode.INTERNAL)


class SimulationRuntime:
    """Flower's simulation runtime (in a child process), one SuperNode per site."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        return simulate(plan, links, self.workers)


__all__ = ["SimulationRuntime", "backend_config", "simulate"]
