"""The ``train`` analysis: plan over the federation, rounds, result and model.

The plan takes one secure-summed round of column moments (standardization from federated
moments); the rounds run in the federation's training runtime
(:func:`coordinator.training.runtimes.choice.runtime_for`: over HTTP the federation's secure
sums, for in-process sites Flower's simulation, or a Flower deployment), off the event
loop; the result reports pooled and per-site test metrics, the history,
the logistic coefficients on the original scale of the design and the local-only
baselines, and carries the trained model (which the coordinator keeps in its model
registry under ``model_id``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import numpy as np

from coordinator.federation.base import Federation, PrivacyTally
from coordinator.stats.regression import INTERCEPT
from coordinator.training.federated import FederationRuntime
from coordinator.training.links import links_for
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan, make_plan
from coordinator.training.runtimes.choice import runtime_for
from schemas.analyses.coefficients import Coefficient
from schemas.analyses.train import (
    Metrics,
    RoundRow,
    SiteMetrics,
    TrainedModel,
    TrainingResult,
    TrainRequest,
)
from schemas.models.metrics import auc_interval, binned_auc
from schemas.steps.train import TrainResult, TrainSumResult
from schemas.training.bundle import app_hash

logger = logging.getLogger(__name__)


def _site_metrics(r: TrainResult) -> SiteMetrics:
    if r.n == 0:
        return SiteMetrics(n=0, auc=None, accuracy=None, brier=None)
    return SiteMetrics(n=r.n, auc=r.auc, accuracy=r.correct / r.n, brier=r.brier_sum / r.n)


def pooled_metrics(
    total: TrainSumResult | None, per_site: dict[str, TrainResult], edges: list[float]
) -> Metrics:
    """Pooled test metrics from the sites' summed test phase (and each site's own). Bins
    that rank no pair (every row in one bin: the interval is [0, 1]) give no pooled AUC."""
    bins = max(len(edges) - 1, 0)
    if total is None:
        total = TrainSumResult(phase="test", n=0, missing=0, loss_sum=0.0)
    n = total.n
    lower, upper = auc_interval(total.hist_pos, total.hist_neg) or (None, None)
    ranked = lower is not None and upper is not None and upper - lower < 1.0
    auc, bound = binned_auc(total.hist_pos, total.hist_neg) if ranked else (None, 0.0)
    return Metrics(
        n=n,
        auc=auc,
        auc_error_bound=bound,
        auc_bins=bins,
        auc_lower=lower,
        auc_upper=upper,
        accuracy=total.correct / n if n else None,
        brier=total.brier_sum / n if n else None,
        log_loss=total.loss_sum / n if n else None,
        per_site={s: _site_metrics(r) for s, r in sorted(per_site.items())},
    )


def coefficients(plan: TrainPlan, weights: list[float]) -> list[Coefficient]:
    """Logistic weights of the standardized basis mapped back to the design's scale."""
    w = np.asarray(weights, dtype=np.float64)
    center = np.asarray(plan.center)
    scale = np.asarray(plan.scale)
    beta = w / scale
    if INTERCEPT in plan.columns:
        j = plan.columns.index(INTERCEPT)
        others = np.arange(len(w)) != j
        beta[j] = w[j] - float((w[others] * center[others] / scale[others]).sum())
    return [
        Coefficient(term=c, estimate=float(b), std_error=None, statistic=None, p_value=None)
        for c, b in zip(plan.columns, beta, strict=True)
    ]


def result_of(request: TrainRequest, plan: TrainPlan, outcome: Outcome) -> TrainingResult:
    history = [
        RoundRow(round=h.round, train_loss=h.train_loss, val_loss=h.val_loss, seconds=h.seconds)
        for h in outcome.history
    ]
    model = TrainedModel(
        spec=plan.spec,
        formula=plan.formula,
        columns=plan.columns,
        categories=plan.categories,
        center=plan.center,
        scale=plan.scale,
        weights=outcome.weights,
    )
    return TrainingResult(
        formula=request.formula,
        model_kind=request.model,
        strategy=request.strategy,
        metrics=pooled_metrics(outcome.pooled, outcome.test, outcome.edges),
        history=history,
        best_round=outcome.best_round,
        stopped_early=outcome.stopped_early,
        coefficients=coefficients(plan, outcome.weights) if request.model == "logistic" else [],
        model_id=plan.run_id,
        app_hash=plan.app_hash,
        n=plan.n,
        missing=plan.missing,
        local_only={s: _site_metrics(r) for s, r in sorted(outcome.local.items())},
        model=model,
    )


async def train(request: TrainRequest, federation: Federation) -> TrainingResult:
    """Train ``request``'s model across ``federation``'s sites."""
    runtime = runtime_for(federation, request.runtime)  # before any step: it may refuse
    plan = await make_plan(request, federation, run_id=uuid.uuid4().hex, app_hash=app_hash())
    links = links_for(federation)
    logger.info("training %s over %s (run %s)", request.model, plan.sites, plan.run_id)
    outcome = await asyncio.to_thread(runtime.run, plan, links)
    tally = getattr(federation, "tally", None)
    if isinstance(tally, PrivacyTally) and not isinstance(runtime, FederationRuntime):
        if outcome.protection is None:  # simulation: the ServerApp held each site's update
            tally.clear += 1
        else:  # deployment: what the federation carried over the grid received
            tally.secure += outcome.protection.secure
            tally.clear += outcome.protection.clear
            for site, releases in outcome.protection.dp.items():
                for release in releases:
                    tally.add_dp(site, release)
    return result_of(request, plan, outcome)


__all__ = ["coefficients", "pooled_metrics", "result_of", "train"]
