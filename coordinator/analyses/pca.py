"""PCA from the exact federated covariance matrix; scores stay at the nodes.

The covariance (or, with ``scale``, correlation) matrix of the complete cases comes from
two secure-summed rounds of centered moments (:func:`~coordinator.analyses.moments.
pooled_moments`), so it equals the pooled matrix to rounding; its eigendecomposition
(``numpy.linalg.eigh``) gives the components and the variances they explain (Jolliffe,
*Principal Component Analysis*, 2nd ed., Springer 2002, ch. 1–2). This is the pooled PCA
of scikit-learn up to the sign of each component; signs follow scikit-learn's rule (the
largest loading of each component is positive). Per-person scores are computed and kept
at the nodes only.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from coordinator.analyses.derived import commit, new_run_id, numeric_variable
from coordinator.analyses.moments import pooled_moments
from coordinator.federation.base import Federation
from schemas.analyses.pca import PcaRequest, PcaResult
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.derived import DeriveSpec
from schemas.steps.pca import PcaScoresResult, PcaScoresStep

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


def principal_components(matrix: Array) -> tuple[Array, Array]:
    """Eigenvalues (descending) and eigenvectors as rows, each row's largest-magnitude
    entry made positive."""
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(values)[::-1]
    values, rows = values[order], vectors[:, order].T
    biggest = np.argmax(np.abs(rows), axis=1)
    signs = np.sign(rows[np.arange(len(rows)), biggest])
    return np.maximum(values, 0.0), rows * signs[:, None]


async def pca(request: PcaRequest, federation: Federation) -> PcaResult:
    """Components, explained variance and ratios; optionally scores kept at the nodes."""
    variables = list(request.variables)
    mo = await pooled_moments(
        federation, variables, cohort=request.cohort, visit=request.visit, complete_cases=True
    )
    assert mo.cross is not None
    n = int(mo.n[0, 0])
    if n < 2:
        raise FedpsyError("PCA needs at least 2 complete rows", code=ErrorCode.NOT_ESTIMABLE)
    cov = mo.cross[0] / (n - 1)
    sd = np.sqrt(np.diag(cov))
    if request.scale and not np.all(sd > 0.0):
        flat = [v for v, s in zip(variables, sd, strict=True) if not s > 0.0]
        raise FedpsyError(f"PCA: {flat} do not vary; leave them out", code=ErrorCode.NOT_ESTIMABLE)
    matrix = cov / np.outer(sd, sd) if request.scale else cov
    values, rows = principal_components(matrix)
    keep = request.components_wanted()
    total = float(values.sum())
    run_id = None
    if request.scores_prefix is not None:
        run_id = new_run_id()
        basis = "standardized " if request.scale else "centered "
        defs = tuple(
            numeric_variable(
                code,
                f"Principal component {j + 1} score",
                f"PCA run {run_id}: score on component {j + 1} of the {basis}"
                f"variables {', '.join(variables)}; values for the rows of that "
                f"run at visit {request.visit}.",
            )
            for j, code in enumerate(request.new_codes())
        )
        step = PcaScoresStep(
            variables=variables,
            center=[float(v) for v in mo.mean[0]],
            scale=[float(v) for v in sd] if request.scale else [1.0] * len(variables),
            components=[[float(v) for v in r] for r in rows[:keep]],
            derive=DeriveSpec(run_id=run_id, variables=defs),
            cohort=request.cohort,
            visit=request.visit,
        )
        scored = await federation.sum(step, PcaScoresResult)
        await commit(federation, run_id, request.cohort, request.visit, scored.n)
    return PcaResult(
        variables=variables,
        scale=request.scale,
        n=n,
        missing=mo.missing,
        mean=[float(v) for v in mo.mean[0]],
        sd=[float(v) for v in sd],
        components=[[float(v) for v in r] for r in rows[:keep]],
        explained_variance=[float(v) for v in values[:keep]],
        explained_variance_ratio=[float(v) / total if total > 0 else 0.0 for v in values[:keep]],
        new_variables=request.new_codes(),
        run_id=run_id,
    )


__all__ = ["pca", "principal_components"]
