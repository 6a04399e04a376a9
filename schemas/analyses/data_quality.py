"""``data_quality``: which site has what, how complete, and where sites disagree.

Per variable × visit × site (``report[variable][visit][site]``): ``n`` persons with a
value, ``completeness`` (``n`` over the site's persons in the cohort at that visit,
``persons[visit][site]``); for numeric and integer variables ``mean``, ``sd`` (ddof 1) and
``smd``, the standardized mean difference of the site against the other sites pooled,
``(mean_site − mean_others) / √((sd_site² + sd_others²) / 2)``; for binary and categorical
variables the ``shares`` of each level; for variables with soft plausibility bounds in the
dictionary, ``implausible`` (values outside them). A number a site's gate would not let
leave is ``null`` and named in ``suppressed`` (a count from 1 to the site's minimum cell
minus 1, a mean one value dominates). ``temporal[site][rule]`` counts persons with visit
days out of the order of their labels (``visit_order``), an event before the index date
(``event_before_index``) and a drug exposure ending before it starts
(``exposure_end_before_start``). ``withheld[visit][site]`` names the sites that answer
nothing at a visit and why: ``cohort_too_small`` (fewer persons there than the site's
minimum cohort) or ``differencing`` (its persons there are 1 to min_cohort − 1 apart from
an earlier answer's); a variable a site withholds alone has ``differencing`` in
``suppressed``. A person-level variable (one value per person: sex, diagnosis, derived
phenotypes) is reported at the first visit only.

``flags`` lists findings, each with ``site``, ``variable`` (for a temporal rule, the CDM
table checked), ``visit``, ``rule``, ``value``, ``threshold`` and a ``suggestion`` (the
request to run next: a ``summary`` at that site, or a ``combat``): ``completeness`` below
``completeness_threshold`` where another site measured the variable at that visit;
``site_effect``, ``|smd|`` above ``smd_threshold`` (a site effect ComBat may remove:
the suggestion is that ComBat request); ``implausible`` and each temporal rule when its
count is above zero (``value`` null: suppressed, 1 to the site's minimum cell − 1).
``variables`` default to every variable of the shipped dictionary; ``visits`` to every
visit label some site holds (baseline, then by nominal time). ``temporal`` false leaves the
temporal checks out (``temporal`` is then empty, and ``visits`` default to ``baseline``,
the labels the sites hold being an answer of those checks).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analyses.base import AnalysisBase, AnalysisResult

Rule = Literal[
    "completeness",
    "site_effect",
    "implausible",
    "visit_order",
    "event_before_index",
    "exposure_end_before_start",
]


class DataQualityRequest(AnalysisBase):
    analysis: Literal["data_quality"] = "data_quality"
    variables: list[str] | None = Field(default=None, min_length=1)
    visits: list[str] | None = Field(default=None, min_length=1)
    completeness_threshold: float = Field(default=0.5, ge=0, le=1)
    smd_threshold: float = Field(default=0.5, gt=0)
    temporal: bool = True

    def analysis_variables(self) -> set[str]:
        return set(self.variables or ())


class SiteQuality(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int | None
    completeness: float | None
    mean: float | None = None
    sd: float | None = None
    smd: float | None = None
    shares: dict[str, float] | None = None
    implausible: int | None = None
    suppressed: list[str] = Field(default_factory=list)


class Flag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    variable: str
    visit: str | None
    rule: Rule
    value: float | None
    threshold: float
    suggestion: dict[str, Any] | None = None


class DataQualityResult(AnalysisResult):
    sites: list[str]
    visits: list[str]
    variables: list[str]
    persons: dict[str, dict[str, int]]
    withheld: dict[str, dict[str, str]] = Field(default_factory=dict)
    report: dict[str, dict[str, dict[str, SiteQuality]]]
    temporal: dict[str, dict[str, int | None]]
    flags: list[Flag]
    completeness_threshold: float
    smd_threshold: float
