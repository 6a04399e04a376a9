"""Handler of the site-fit step: this site's estimate and standard error of one term."""

from __future__ import annotations

import logging
import math

from node.data.source import FrameSource
from node.steps.base import Computed
from node.steps.design import prepared
from node.steps.math.local_fit import fit_local
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.site_fit import SiteFitResult, SiteFitStep

logger = logging.getLogger(__name__)


def site_fit(step: SiteFitStep, source: FrameSource) -> Computed:
    """Fit the formula on this site's rows and report ``step.term``."""
    ready = prepared(step, source)
    design = ready.design
    if step.term not in design.columns:
        raise FedpsyError(
            f"term {step.term!r} is not a column of {step.formula!r}; its "
            f"columns are {design.columns}",
            code=ErrorCode.REQUEST_INVALID,
        )
    fit = fit_local(design, step.family)
    if step.term not in fit.columns:
        raise FedpsyError(
            f"term {step.term!r} cannot be estimated from this site's rows "
            "(its column is zero here)",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    k = fit.columns.index(step.term)
    result = SiteFitResult(
        term=step.term,
        n=fit.n,
        missing=design.missing,
        estimate=float(fit.estimates[k]),
        std_error=math.sqrt(float(fit.covariance[k, k])),
        parameters=len(fit.columns),
        df_residual=fit.df_residual,
        converged=fit.converged,
    )
    revealed = ready.disclosure.model_copy(update={"parameters": len(fit.columns)})
    return Computed(result, revealed, used=ready.used, queries=ready.queries)


__all__ = ["site_fit"]
