"""fedpsy's Flower ServerApps.

In deployment the SuperLink runs ``coordinator.training.server_app:app`` in its own
process: the run config ``plan`` names the plan's JSON file (written by the coordinator),
the rounds run as the job's federation carried over the grid
(:func:`coordinator.training.carried.carried_run`: signed tasks, secure sums), and the
outcome — or the error that ended the run — is written next to the plan as
``<plan>.outcome.json`` (:func:`~coordinator.training.outcome.outcome_path`). In
simulation (the in-process sites of the tests and benchmarks,
:mod:`coordinator.training.runtimes.simulation`) :func:`server_app_for` builds one per run
that runs :class:`coordinator.training.rounds.Rounds` over the simulated grid and hands
its :class:`~coordinator.training.outcome.Outcome` back in memory.
Import after :func:`schemas.training.env.flower_environment`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from coordinator.training.carried import carried_run
from coordinator.training.outcome import Outcome, error_record, outcome_path
from coordinator.training.plan import TrainPlan
from coordinator.training.rounds import Rounds
from schemas.errors import FedpsyError
from schemas.training.env import quick_object_pulls

logger = logging.getLogger(__name__)

PLAN_KEY = "plan"

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Deployment entry: read the plan, run the rounds, write the outcome."""
    quick_object_pulls()
    plan_path = Path(str(context.run_config[PLAN_KEY]))
    target = outcome_path(plan_path)
    try:
        plan = TrainPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
        outcome = carried_run(plan, grid)
    except Exception as exc:  # the coordinator must learn why the run failed
        if not isinstance(exc, FedpsyError):
            logger.exception("training run failed")
        outcome = Outcome(error=error_record(exc))
    target.write_text(outcome.model_dump_json(), encoding="utf-8")
    if outcome.error is not None:
        raise RuntimeError(f"training failed: {outcome.error['code']}")


def server_app_for(plan: TrainPlan, sink: list[Outcome]) -> ServerApp:
    """A ServerApp that runs ``plan`` and appends its outcome to ``sink``."""
    server = ServerApp()

    @server.main()
    def run(grid: Grid, context: Context) -> None:
        sink.append(Rounds(plan, grid).run())

    return server


__all__ = ["app", "server_app_for"]
