"""Naming, defining and committing the per-person values an analysis leaves at the nodes.

ComBat, PCA scores and cluster labels are computed per person at each node and never leave
it (see :mod:`schemas.steps.derived`). The coordinator chooses a run id, writes the new
variables' dictionary definitions (the same at every site, so their content hashes agree),
sends them with the step that stages the values, and commits the run at every site only
after every site answered.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from coordinator.federation.base import Federation
from schemas.cohort import Cohort
from schemas.dictionary.model import Variable
from schemas.steps.derived import CommitDerivedResult, CommitDerivedStep, DeriveSpec

logger = logging.getLogger(__name__)


def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


def numeric_variable(code: str, label: str, description: str) -> Variable:
    """The definition of a new numeric per-visit variable."""
    return Variable(code=code, label=label, type="numeric", description=description)


def categorical_variable(
    code: str, label: str, categories: list[str], description: str
) -> Variable:
    """The definition of a new categorical per-visit variable (e.g. cluster labels)."""
    return Variable(
        code=code,
        label=label,
        type="categorical",
        categories=tuple(categories),
        description=description,
    )


def cluster_labels(
    code: str, k: int, label: str, what: str, member: str, variables: Sequence[str], visit: str
) -> DeriveSpec:
    """A new run keeping each row's cluster (``"1"`` … ``"k"``) as the variable ``code``,
    described as "``what`` run ID: ``member`` the variables …"."""
    run_id = new_run_id()
    description = (
        f"{what} run {run_id}: {member} the variables {', '.join(variables)}; "
        f"values for the rows of that run at visit {visit}."
    )
    variable = categorical_variable(code, label, [str(j + 1) for j in range(k)], description)
    return DeriveSpec(run_id=run_id, variables=(variable,))


async def commit(
    federation: Federation, run_id: str, cohort: Cohort | None, visit: str, expected: int
) -> CommitDerivedResult:
    """Commit run ``run_id`` at every site; ``expected``: rows the run staged in total."""
    step = CommitDerivedStep(run_id=run_id, cohort=cohort, visit=visit)
    done = await federation.sum(step, CommitDerivedResult)
    if done.rows != expected:  # only a node's noise (differential privacy) explains this
        logger.warning(
            "run %s: the sites report %d rows kept, %d staged", run_id, done.rows, expected
        )
    logger.info("run %s committed: %d rows of %s", run_id, done.rows, done.variables)
    return done


__all__ = ["categorical_variable", "cluster_labels", "commit", "new_run_id", "numeric_variable"]
