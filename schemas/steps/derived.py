"""Values derived at the node that stay there: harmonized values, scores, cluster labels.

Some analyses compute a new value per person (ComBat-harmonized measures, principal
component scores, cluster labels). Those values never leave the node. A step that computes
them carries a :class:`DeriveSpec`: the run id the coordinator chose and the dictionary
definitions of the new variables, so every site stores the same definition (and hence the
same content hash, which later analyses of the new variables are checked against). The node
*stages* the values under the run id; only when every site has answered does the
coordinator send :class:`CommitDerivedStep`, and each node then keeps the values as
variables of its own. A run that fails at any site is never committed anywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.dictionary.model import Variable
from schemas.steps.base import StepBase, StepResult

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class DeriveSpec(BaseModel):
    """Stage the step's per-person values as ``variables`` under ``run_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    variables: tuple[Variable, ...] = Field(min_length=1)

    @property
    def codes(self) -> list[str]:
        return [v.code for v in self.variables]


class CommitDerivedStep(StepBase):
    """Keep the values staged under ``run_id`` as variables at the node."""

    step: Literal["commit_derived"] = "commit_derived"
    run_id: str = Field(pattern=RUN_ID_PATTERN)


class CommitDerivedResult(StepResult):
    """``rows``: rows that now hold a value of ``variables`` (summed over sites)."""

    rows: int
    variables: list[str]


__all__ = ["RUN_ID_PATTERN", "CommitDerivedResult", "CommitDerivedStep", "DeriveSpec"]
