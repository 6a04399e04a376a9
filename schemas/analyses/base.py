"""Fields every analysis request carries, and the base of every analysis result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.cohort import Cohort


class AnalysisBase(BaseModel):
    """Common request fields.

    ``cohort``: which rows (nestable all/any of conditions; a top-level ``site`` condition
    selects the sites asked); ``visit``: the visit label rows are taken at;
    ``on_refusal``: ``fail`` (any refusing site refuses the whole result) or ``drop_site``
    (answer from the remaining sites and say which were left out); ``min_sites``: the job's
    quorum — unset, every site taking part must answer; set, sites that fail (unreachable,
    timed out) are left out as long as at least ``min_sites`` answer (deploy/FAULTS.md);
    ``project``: the project the request is made under (a researcher in exactly one project
    may leave it out); the coordinator refuses what the project does not allow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis: str
    cohort: Cohort | None = None
    visit: str = "baseline"
    on_refusal: Literal["fail", "drop_site"] = "fail"
    min_sites: int | None = Field(default=None, ge=1)
    project: str | None = Field(default=None, min_length=1, max_length=64)

    def analysis_variables(self) -> set[str]:
        """Variables the analysis itself uses (beyond the cohort); overridden per analysis."""
        return set()

    def used_variables(self) -> set[str]:
        """Every variable the request names (analysis fields and cohort)."""
        used = set(self.analysis_variables())
        if self.cohort is not None:
            used |= self.cohort.variables()
        return used


class AnalysisResult(BaseModel):
    """Base of every analysis's ``result`` object."""

    model_config = ConfigDict(extra="forbid")
