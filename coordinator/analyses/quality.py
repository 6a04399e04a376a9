"""The consortium data-quality report: per variable × visit × site completeness, moments,
shares and plausibility, the sites' temporal checks, and flags.

One gathered ``temporal`` step (temporal counts and each site's visit labels; left out when
the request says ``temporal: false``), then one
gathered ``quality`` step per visit (:mod:`schemas.steps.quality`); every number comes
from a site's gate, suppressed where the gate would not let it leave. A site with fewer
persons at a visit than its minimum cohort refuses that visit's step (``cohort_too_small``),
and a site whose rows of a variable lie a few persons from an earlier answer's refuses for
``differencing``: the report goes on without them and says so (``withheld``; groups of the
variables are asked again to find those a site withholds, each verdict from its gate). The
other sites pooled for a site's SMD are merged exactly from their ``(n, mean, M2)`` (Chan,
Golub & LeVeque, The American Statistician 37(3), 1983).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from coordinator.federation.base import Federation
from coordinator.federation.failures import SitesFailed
from schemas.analyses.data_quality import (
    DataQualityRequest,
    DataQualityResult,
    Flag,
    SiteQuality,
)
from schemas.cohort import All, Cohort, Condition
from schemas.dictionary import load_dictionary
from schemas.errors import ErrorCode
from schemas.steps.quality import (
    TEMPORAL_RULES,
    QualityResult,
    QualityStep,
    TemporalResult,
    TemporalStep,
    VariableQuality,
    visit_order,
)

logger = logging.getLogger(__name__)

TEMPORAL_TABLES = {
    "visit_order": "visit",
    "event_before_index": "event",
    "exposure_end_before_start": "drug_exposure",
}
"""The CDM table each temporal rule checks (a temporal flag's ``variable``)."""

Moments = tuple[int, float, float]  # n, mean, M2


def merge(parts: list[Moments]) -> Moments:
    """Pooled ``(n, mean, M2)`` of several groups' ``(n, mean, M2)``."""
    n = sum(k for k, _, _ in parts)
    mean = sum(k * m for k, m, _ in parts) / n
    m2 = sum(s + k * (m - mean) ** 2 for k, m, s in parts)
    return n, mean, m2


def _sd(part: Moments) -> float | None:
    n, _, m2 = part
    return math.sqrt(m2 / (n - 1)) if n > 1 else None


def smd(site: Moments, others: Moments) -> float | None:
    """``(mean_site − mean_others) / √((sd_site² + sd_others²) / 2)``; None when either
    sd is undefined or both are 0."""
    a, b = _sd(site), _sd(others)
    if a is None or b is None or a * a + b * b == 0.0:
        return None
    return (site[1] - others[1]) / math.sqrt((a * a + b * b) / 2.0)


Answers = dict[str, QualityResult]
WITHHELD = (ErrorCode.COHORT_TOO_SMALL.value, ErrorCode.DIFFERENCING.value)


async def _ask(federation: Federation, step: QualityStep) -> tuple[Answers, dict[str, str]]:
    """Each site's answer, and the sites withholding it with a code of :data:`WITHHELD`."""
    try:
        return await federation.gather(step, QualityResult), {}
    except SitesFailed as exc:
        codes = {s: str(f.code) for s, f in exc.failures.items()}
        if any(code not in WITHHELD for code in codes.values()):
            raise
        return {s: QualityResult.model_validate(r) for s, r in exc.answered.items()}, codes


def _chunks(codes: list[str]) -> list[list[str]]:
    """``codes`` in about √n groups of about √n (a refused group is asked again in its
    groups, down to single variables: few variables are refused, so few groups are)."""
    size = math.isqrt(len(codes) - 1) + 1 if codes else 1  # ⌈√n⌉
    if size >= len(codes):
        size = 1
    return [codes[i : i + size] for i in range(0, len(codes), size)]


async def _visit(
    federation: Federation, step: QualityStep
) -> tuple[Answers, dict[str, str], dict[str, dict[str, str]]]:
    """Answers at one visit; the sites withholding the whole visit (too few persons, or
    persons too close to an earlier answer's), with their code; and per site the variables
    it withholds (``differencing``: its rows of that variable lie 1 to min_cohort − 1
    persons from an earlier answer's), found by asking groups of the variables it refuses
    again (:func:`_chunks`)."""
    answers, refused = await _ask(federation, step)
    if not refused or not step.variables:
        return answers, refused, {}
    persons, whole = await _ask(federation, step.model_copy(update={"variables": []}))
    pending = [s for s in refused if s not in whole]
    withheld: dict[str, dict[str, str]] = {}
    parts: dict[str, list[QualityResult]] = {s: [] for s in pending}
    queue = _chunks(list(step.variables))
    while queue and pending:
        codes = queue.pop()
        half, left = await _ask(federation, step.model_copy(update={"variables": codes}))
        for site in pending:
            if site in half:
                parts[site].append(half[site])
            elif len(codes) == 1:
                withheld.setdefault(site, {})[codes[0]] = left.get(site, "")
        if any(s in left for s in pending) and len(codes) > 1:
            queue += _chunks(codes)
    for site in pending:
        merged = {k: v for part in parts[site] for k, v in part.variables.items()}
        answers[site] = QualityResult(persons=persons[site].persons, variables=merged)
    return answers, whole, withheld


def _site_cell(part: VariableQuality, persons: int) -> SiteQuality:
    """One site's cell from what it released (``persons``: its persons at the visit)."""
    n = part.n
    sd = None
    if n is not None and part.mean is not None and part.m2 is not None:
        sd = _sd((n, part.mean, part.m2))
    cell = SiteQuality(
        n=n,
        completeness=n / persons if n is not None and persons else None,
        mean=part.mean,
        sd=sd,
        implausible=part.implausible,
        suppressed=list(part.suppressed),
    )
    if part.levels is not None and n:
        cell.shares = {level: count / n for level, count in part.levels.items()}
    return cell


def _add_smd(cells: dict[str, SiteQuality], parts: dict[str, VariableQuality]) -> None:
    moments = {
        s: (p.n, p.mean, p.m2)
        for s, p in parts.items()
        if p.n and p.mean is not None and p.m2 is not None
    }
    for site, own in moments.items():
        others = [m for s, m in moments.items() if s != site]
        if others:
            cells[site].smd = smd(own, merge(others))


def _site_cohort(site: str, cohort: Cohort | None) -> dict[str, Any]:
    """``cohort`` at ``site`` only: a top-level ``site`` condition before its own."""
    at_site = Condition(var="site", op="==", value=site)
    if isinstance(cohort, All):
        return All(all=[at_site, *cohort.all]).model_dump(mode="json", exclude_none=True)
    kept = [at_site] if cohort is None else [at_site, cohort]
    return All(all=kept).model_dump(mode="json", exclude_none=True)


def _flags(request: DataQualityRequest, result: DataQualityResult) -> list[Flag]:
    flags: list[Flag] = []
    cohort = request.cohort.model_dump(mode="json", exclude_none=True) if request.cohort else None
    for code, visits in result.report.items():
        for visit, sites in visits.items():
            measured = any(c.n != 0 for c in sites.values())
            for site, cell in sites.items():
                summary = {
                    "analysis": "summary",
                    "variables": [code],
                    "visit": visit,
                    "cohort": _site_cohort(site, request.cohort),
                }
                low = cell.completeness
                if measured and low is not None and low < request.completeness_threshold:
                    flags.append(
                        Flag(
                            site=site,
                            variable=code,
                            visit=visit,
                            rule="completeness",
                            value=low,
                            threshold=request.completeness_threshold,
                            suggestion=summary,
                        )
                    )
                if cell.smd is not None and abs(cell.smd) > request.smd_threshold:
                    combat: dict[str, Any] = {
                        "analysis": "combat",
                        "variables": [code],
                        "batch": "site",
                        "eb": False,
                        "visit": visit,
                    }
                    if cohort is not None:
                        combat["cohort"] = cohort
                    flags.append(
                        Flag(
                            site=site,
                            variable=code,
                            visit=visit,
                            rule="site_effect",
                            value=cell.smd,
                            threshold=request.smd_threshold,
                            suggestion=combat,
                        )
                    )
                if cell.implausible or "implausible" in cell.suppressed:
                    flags.append(
                        Flag(
                            site=site,
                            variable=code,
                            visit=visit,
                            rule="implausible",
                            value=cell.implausible,
                            threshold=0,
                            suggestion=summary,
                        )
                    )
    for site, counts in result.temporal.items():
        for rule in TEMPORAL_RULES:
            if counts.get(rule, 0) != 0:
                flags.append(
                    Flag(
                        site=site,
                        variable=TEMPORAL_TABLES[rule],
                        visit=None,
                        rule=rule,
                        value=counts.get(rule),
                        threshold=0,
                    )
                )
    return flags


def _level(code: str) -> str:
    shipped = load_dictionary().variables.get(code)
    return shipped.level if shipped is not None else "visit"


async def data_quality(request: DataQualityRequest, federation: Federation) -> DataQualityResult:
    """The report; see :mod:`schemas.analyses.data_quality` for its fields."""
    variables = request.variables or [c for c in load_dictionary().variables if c != "site"]
    checks: dict[str, TemporalResult] = {}
    if request.temporal:
        checks = await federation.gather(
            TemporalStep(cohort=request.cohort, visit=request.visit), TemporalResult
        )
    held = {v for a in checks.values() for v in a.visits} if request.temporal else {"baseline"}
    visits = list(request.visits or sorted(held, key=visit_order))
    persons: dict[str, dict[str, int]] = {}
    withheld: dict[str, dict[str, str]] = {}
    report: dict[str, dict[str, dict[str, SiteQuality]]] = {code: {} for code in variables}
    for k, visit in enumerate(visits):
        # a person-level variable has one value per person: reported at the first visit
        codes = [c for c in variables if k == 0 or _level(c) != "person"]
        step = QualityStep(variables=codes, cohort=request.cohort, visit=visit)
        answers, whole, partly = await _visit(federation, step)
        if whole:
            withheld[visit] = whole
        persons[visit] = {s: a.persons for s, a in answers.items()}
        for code in codes:
            cells: dict[str, SiteQuality] = {}
            parts: dict[str, VariableQuality] = {}
            for site in federation.sites:
                why = whole.get(site) or partly.get(site, {}).get(code)
                if why is not None or site not in answers:
                    cells[site] = SiteQuality(n=None, completeness=None, suppressed=[why or ""])
                    continue
                parts[site] = answers[site].variables[code]
                cells[site] = _site_cell(parts[site], answers[site].persons)
            _add_smd(cells, parts)
            report[code][visit] = cells
    result = DataQualityResult(
        sites=list(federation.sites),
        visits=visits,
        variables=variables,
        persons=persons,
        withheld=withheld,
        report=report,
        temporal={s: dict(a.counts) for s, a in checks.items()},
        flags=[],
        completeness_threshold=request.completeness_threshold,
        smd_threshold=request.smd_threshold,
    )
    result.flags = _flags(request, result)
    return result
