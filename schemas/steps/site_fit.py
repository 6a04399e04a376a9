"""The site-fit step: one site's own estimate of one coefficient, for meta-analysis.

Two-stage meta-analysis (e.g. Burke, Ensor & Riley, "Meta-analysis using individual
participant data: one-stage and two-stage approaches", Statistics in Medicine 36(5),
2017) fits the model at each site alone and pools the estimates. The node fits ``formula``
on its complete-case rows by least squares (``family`` None) or a GLM, and returns the
estimate and standard error of the coefficient named ``term``. These per-site values
leave the site on their own (gathered), so the policy must allow ``meta``.
"""

from __future__ import annotations

from typing import Literal

from schemas.steps.base import StepResult
from schemas.steps.design import DesignStep
from schemas.steps.glm import Family


class SiteFitStep(DesignStep):
    """Fit ``formula`` at the site and report coefficient ``term`` (formulaic's name)."""

    step: Literal["site_fit"] = "site_fit"
    term: str
    family: Family | None = None


class SiteFitResult(StepResult):
    """The site's estimate of ``term``, its standard error and the fit's size.

    ``parameters``: columns estimated (a column that is zero at this site is dropped);
    ``df_residual``: ``n − parameters``; ``converged``: the GLM fit converged (always
    true for least squares).
    """

    term: str
    n: int
    missing: int
    estimate: float
    std_error: float
    parameters: int
    df_residual: int
    converged: bool


__all__ = ["SiteFitResult", "SiteFitStep"]
