"""``meta``: two-stage random-effects meta-analysis of one coefficient across sites.

Each site fits ``formula`` on its own rows (least squares, or a GLM of ``family``) and
returns the estimate and standard error of ``term``; the coordinator pools them. ``method``
chooses the between-site variance τ²: ``dl`` DerSimonian & Laird (Controlled Clinical
Trials 7, 1986), ``reml`` restricted maximum likelihood, ``pm`` Paule & Mandel (J. Res.
NBS 87, 1982). Result: ``per_site`` rows (estimate, standard error, confidence interval
and random-effects weight per site — the forest plot), the ``fixed`` (inverse variance)
and ``random`` pooled estimates, ``tau2``, the heterogeneity test ``q``, ``i_squared``
``= max(0, (Q − df) / Q)`` and ``n`` (rows over all sites). Per-site estimates leave the
sites, so the policy must allow ``meta``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import FormulaRequest
from schemas.analyses.crosstab import Statistic
from schemas.steps.glm import Family


class MetaRequest(FormulaRequest):
    analysis: Literal["meta"] = "meta"
    term: str
    family: Family | None = None
    method: Literal["dl", "reml", "pm"] = "reml"
    level: float = Field(default=0.95, gt=0.0, lt=1.0)


class SiteEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    n: int
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    weight: float


class Pooled(BaseModel):
    model_config = ConfigDict(extra="forbid")

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float


class MetaResult(AnalysisResult):
    formula: str
    term: str
    method: Literal["dl", "reml", "pm"]
    level: float
    per_site: list[SiteEstimate]
    fixed: Pooled
    random: Pooled
    tau2: float
    q: Statistic
    i_squared: float
    n: int
    missing: int


__all__ = ["MetaRequest", "MetaResult", "Pooled", "SiteEstimate"]
