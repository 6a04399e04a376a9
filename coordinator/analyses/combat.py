"""Distributed ComBat (Chen et al., NeuroImage 248, 2022), equal to pooled ComBat.

Pooled ComBat (Johnson, Li & Rabinovic, Biostatistics 8(1), 2007; the neuroCombat
implementation of Fortin et al., NeuroImage 167, 2018) fits, per variable, least squares on
the design ``[batch indicators, covariates]``; the grand mean is the batch coefficients
weighted by batch size (or the reference batch's coefficient), the pooled variance the mean
squared residual (over the reference batch's rows when one is given). Each row is
standardized with them, each batch's location and scale are estimated (empirical Bayes
across the batch's variables) and removed, and the row is mapped back.

Here the sites exchange: their batch labels and counts (gathered; each batch must live at
one site); ``XᵀX`` and ``XᵀY`` (summed); residual sums of squares (summed); and, from the
adjusting step, each batch's ``n``, ``γ*`` and ``δ*²`` (gathered — per batch by nature).
The normal equations are solved after scaling ``XᵀX`` to unit diagonal (equilibration);
the reference category of each categorical covariate is its first category with rows, as
in neuroCombat.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import scipy.linalg

from coordinator.analyses.derived import commit, new_run_id, numeric_variable
from coordinator.analyses.tables import site_levels
from coordinator.federation.base import Federation
from schemas.analyses.combat import BatchEstimates, CombatRequest, CombatResult
from schemas.dictionary.model import Variable
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.combat import (
    BatchFit,
    CombatAdjustResult,
    CombatAdjustStep,
    CombatBatchesResult,
    CombatBatchesStep,
    CombatFitResult,
    CombatFitStep,
    CombatResidualsResult,
    CombatResidualsStep,
)
from schemas.steps.derived import DeriveSpec

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
MAX_CONDITION = 1e12


def batch_levels(found: dict[str, CombatBatchesResult], hint: list[str] | None) -> list[str]:
    """The batch levels with rows, each at exactly one site (else ``request_invalid``)."""
    where: dict[str, list[str]] = {}
    for site, result in found.items():
        for label, k in result.counts.items():
            if k > 0:
                where.setdefault(label, []).append(site)
    shared = {lv: sites for lv, sites in where.items() if len(sites) > 1}
    if shared:
        parts = [f"{lv!r} at {', '.join(sorted(s))}" for lv, s in sorted(shared.items())]
        raise FedpsyError(
            f"ComBat estimates each batch where its rows are, but batches {'; '.join(parts)} "
            "have rows at more than one site: give them site-specific labels or use "
            "batch 'site'",
            code=ErrorCode.REQUEST_INVALID,
        )
    order = hint if hint is not None else sorted(where)
    return [lv for lv in order if lv in where]


def kept_columns(columns: list[str], xtx: Array, covariates: list[str], n_batch: int) -> list[int]:
    """Design columns to estimate: the batches, then each covariate's columns with rows
    except a categorical covariate's first (its reference category)."""
    keep = list(range(n_batch))
    diagonal = np.diag(xtx)
    for code in covariates:
        own = [j for j, c in enumerate(columns) if c.startswith(f"{code}[")]
        if not own:
            keep.append(columns.index(code))
            continue
        present = [j for j in own if diagonal[j] > 0]
        keep.extend(present[1:])
    return keep


def solve_coefficients(fit: CombatFitResult, keep: list[int]) -> Array:
    """``B̂`` (design column × variable) from the summed normal equations; zero for columns
    left out."""
    xtx = np.asarray(fit.xtx, dtype=np.float64)
    xty = np.asarray(fit.xty, dtype=np.float64)
    a = xtx[np.ix_(keep, keep)]
    d = 1.0 / np.sqrt(np.diag(a))
    scaled = a * d[:, None] * d[None, :]
    if np.linalg.cond(scaled) > MAX_CONDITION:
        raise FedpsyError(
            "ComBat: the covariates are confounded with the batches (or with each other); "
            "drop the covariates that one batch alone determines",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    z = scipy.linalg.solve(scaled, xty[keep] * d[:, None], assume_a="pos")
    b = np.zeros_like(xty)
    b[keep] = z * d[:, None]
    return b


async def combat(request: CombatRequest, federation: Federation) -> CombatResult:
    """Harmonize ``request.variables`` across batches; the values stay at the nodes."""
    common = {
        "variables": list(request.variables),
        "batch": request.batch,
        "covariates": list(request.covariates),
        "cohort": request.cohort,
        "visit": request.visit,
    }
    hint = site_levels(request.batch, None, federation)
    found = await federation.gather(CombatBatchesStep(**common, levels=hint), CombatBatchesResult)
    levels = batch_levels(found, hint)
    if len(levels) < 2:
        raise FedpsyError(
            f"ComBat needs at least 2 batches of {request.batch!r} with rows; found {levels}",
            code=ErrorCode.REQUEST_INVALID,
        )
    if request.ref_batch is not None and request.ref_batch not in levels:
        raise FedpsyError(
            f"ref_batch {request.ref_batch!r} is not one of the batches {levels}",
            code=ErrorCode.REQUEST_INVALID,
        )
    fit = await federation.sum(CombatFitStep(**common, levels=levels), CombatFitResult)
    xtx = np.asarray(fit.xtx, dtype=np.float64)
    k = len(levels)
    sizes = np.diag(xtx)[:k]
    b = solve_coefficients(fit, kept_columns(fit.columns, xtx, list(request.covariates), k))
    coefficients = [[float(v) for v in row] for row in b]
    ref = levels.index(request.ref_batch) if request.ref_batch is not None else None
    grand = b[ref] if ref is not None else (sizes / sizes.sum()) @ b[:k]
    resid = await federation.sum(
        CombatResidualsStep(
            **common, levels=levels, coefficients=coefficients, only_batch=request.ref_batch
        ),
        CombatResidualsResult,
    )
    var_pooled = np.asarray(resid.ssr, dtype=np.float64) / resid.n
    flat = [v for v, s2 in zip(request.variables, var_pooled, strict=True) if not s2 > 0.0]
    if flat:
        raise FedpsyError(f"ComBat: {flat} have no residual variance", code=ErrorCode.NOT_ESTIMABLE)
    run_id = new_run_id() if request.store else None
    derive = None
    if run_id is not None:
        derive = DeriveSpec(run_id=run_id, variables=tuple(_definitions(request, run_id)))
    adjust = CombatAdjustStep(
        **common,
        levels=levels,
        coefficients=coefficients,
        grand_mean=[float(v) for v in grand],
        var_pooled=[float(v) for v in var_pooled],
        eb=request.eb,
        ref_batch=request.ref_batch,
        derive=derive,
    )
    parts = await federation.gather(adjust, CombatAdjustResult)
    fits = _merge(parts, levels)
    if run_id is not None:
        await commit(federation, run_id, request.cohort, request.visit, fit.n)
    names = list(request.variables)
    return CombatResult(
        variables=names,
        new_variables=request.new_codes() if run_id is not None else [],
        run_id=run_id,
        batch=request.batch,
        ref_batch=request.ref_batch,
        eb=request.eb,
        batches={
            lv: BatchEstimates(
                n=f.n,
                gamma=dict(zip(names, f.gamma, strict=True)),
                delta=dict(zip(names, f.delta, strict=True)),
            )
            for lv, f in fits.items()
        },
        grand_mean=dict(zip(names, (float(v) for v in grand), strict=True)),
        var_pooled=dict(zip(names, (float(v) for v in var_pooled), strict=True)),
        coefficients={
            column: dict(zip(names, (float(v) for v in b[j]), strict=True))
            for j, column in enumerate(fit.columns)
            if j >= k and np.any(b[j] != 0.0)
        },
        n=fit.n,
        missing=fit.missing,
    )


def _merge(parts: dict[str, CombatAdjustResult], levels: list[str]) -> dict[str, BatchFit]:
    fits: dict[str, BatchFit] = {}
    for site, part in parts.items():
        for label, batch_fit in part.batches.items():
            if label in fits or label not in levels:
                raise FedpsyError(
                    f"ComBat: site {site} reported batch {label!r} unexpectedly "
                    "(its rows changed during the run); run it again",
                    code=ErrorCode.INTERNAL,
                )
            fits[label] = batch_fit
    if sorted(fits) != sorted(levels):
        raise FedpsyError(
            "ComBat: not every batch was adjusted; run it again", code=ErrorCode.INTERNAL
        )
    return {lv: fits[lv] for lv in levels}


def _definitions(request: CombatRequest, run_id: str) -> list[Variable]:
    covariates = ", ".join(request.covariates) or "none"
    ref = f"; reference batch {request.ref_batch}" if request.ref_batch else ""
    return [
        numeric_variable(
            code,
            f"{variable}, ComBat-harmonized",
            f"ComBat run {run_id}: {variable} harmonized across batch {request.batch} "
            f"(covariates: {covariates}; empirical Bayes: {'yes' if request.eb else 'no'}"
            f"{ref}); values for the rows of that run at visit {request.visit}.",
        )
        for variable, code in zip(request.variables, request.new_codes(), strict=True)
    ]


__all__ = ["batch_levels", "combat", "kept_columns", "solve_coefficients"]
