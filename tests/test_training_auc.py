"""The pooled AUC of a trained model as an interval from score bins the sites' rules allow,
and small sites training under the default policy, on MASS's Pima data (532 rows over
three sites of 106, 213 and 213), end to end through the federation's summed phases with
each site's real threshold rules (:class:`tests.support.training.GatedFederation`)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from coordinator.analyses.registry import run_analysis
from coordinator.federation.failures import SitesFailed
from node.data.formula import build_design
from node.privacy.policy import Policy
from schemas.analyses import parse_request
from schemas.analyses.train import TrainingResult
from schemas.models.layout import ModelSpec, unflatten
from schemas.models.metrics import (
    auc_interval,
    on_score_grid,
    score_histogram,
    snap_score,
    split_on_grid,
)
from schemas.models.numeric import predict
from schemas.models.split import split_rows
from schemas.steps.train import TrainStep, TrainSumResult
from tests.support.datasets import pima
from tests.support.federation import split_sites
from tests.support.training import GatedFederation

PREDICTORS = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]
FORMULA = "diabetes ~ " + " + ".join(PREDICTORS)  # 8 parameters
ALL_ROWS = {"test_fraction": 0.0, "validation_fraction": 0.0}  # every row scored
HOLDOUT = {"test_fraction": 0.25, "seed": 4}  # 5+ of each outcome in every held-out part


@pytest.fixture(scope="module")
def sites() -> dict[str, Any]:
    return split_sites(pima(), [0.2, 0.4, 0.4], seed=1)


def _train(
    sites: dict[str, Any], policy: Policy | None, **request: Any
) -> tuple[GatedFederation, TrainingResult]:
    federation = GatedFederation(sites, policy=policy)
    data = {"analysis": "train", "formula": FORMULA, "rounds": 40, "learning_rate": 0.5}
    result, _ = asyncio.run(run_analysis(parse_request({**data, **request}), federation))
    assert isinstance(result, TrainingResult)
    return federation, result


def _test_scores(
    sites: dict[str, Any], result: TrainingResult, split: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The federated model's scores, outcomes and sites on every site's test rows."""
    scores, labels, where = [], [], []
    model = result.model
    weights = unflatten(model.spec, len(model.columns), model.weights)
    for site, source in sites.items():
        frame = source.frame(["diabetes", *PREDICTORS], "baseline", None)
        design = build_design(FORMULA, frame, columns=model.columns)
        part = split_rows(
            design.n,
            site,
            int(split.get("seed", 0)),
            split["test_fraction"],
            split.get("validation_fraction", 0.2),
            source.split_salt,
        )
        z = (design.x - np.asarray(model.center)) / np.asarray(model.scale)
        scores.append(predict(model.spec, weights, z)[part.test])
        labels.append(design.y[part.test])
        where.append(np.full(part.test.size, site))
    return np.concatenate(scores), np.concatenate(labels), np.concatenate(where)


def _bounds_by_pairs(pos: list[int], neg: list[int]) -> tuple[float, float]:
    """The AUC bounds from class counts per bin, pair by pair of bins."""
    concordant = tied = 0
    for i, p in enumerate(pos):
        for j, n in enumerate(neg):
            concordant += p * n if j < i else 0
            tied += p * n if j == i else 0
    pairs = sum(pos) * sum(neg)
    return concordant / pairs, (concordant + tied) / pairs


def _narrowest(scores: np.ndarray, labels: np.ndarray, site_of: np.ndarray, m: int) -> float:
    """The narrowest AUC interval that any bins on the score grid allow when every site's
    count of each class per bin must be 0 or at least ``m`` (dynamic programming over the
    edges, knowing every score: a limit, not something a coordinator could compute)."""
    grid = sorted({snap_score(float(s)) for s in scores} - {0.0, 1.0})
    edges = np.array([0.0, *grid, 1.0])

    def below(chosen: np.ndarray) -> np.ndarray:
        counts = [(chosen & (scores < e)).sum() for e in edges[:-1]]
        return np.array([*counts, chosen.sum()])

    groups = np.array([below((site_of == s) & (labels == c)) for s in set(site_of) for c in (0, 1)])
    pos, neg = below(labels == 1), below(labels == 0)
    best = np.full(len(edges), np.inf)
    best[0] = 0.0
    for j in range(1, len(edges)):
        cells = groups[:, j][:, None] - groups[:, :j]
        allowed = np.all((cells == 0) | (cells >= m), axis=0)
        cost = (pos[j] - pos[:j]) * (neg[j] - neg[:j]) + best[:j]
        best[j] = np.min(np.where(allowed, cost, np.inf))
    return float(best[-1] / (pos[-1] * neg[-1]))


@pytest.mark.parametrize(
    ("split", "default_width", "permissive_width"),
    [(ALL_ROWS, 0.30, 0.05), (HOLDOUT, 1.0, 0.10)],
    ids=["all-rows", "holdout"],
)
def test_pooled_auc_interval_from_the_finest_bins_the_sites_allow(
    sites: dict[str, Any], split: dict[str, float], default_width: float, permissive_width: float
) -> None:
    for policy, most in ((None, default_width), (Policy(min_cell=1), permissive_width)):
        federation, result = _train(sites, policy, **split)
        metrics = result.metrics
        scores, labels, site_of = _test_scores(sites, result, split)
        exact = roc_auc_score(labels, scores)
        assert metrics.n == labels.size
        assert metrics.auc_lower is not None and metrics.auc_upper is not None
        assert metrics.auc_lower <= exact <= metrics.auc_upper, (metrics, exact)
        width = metrics.auc_upper - metrics.auc_lower
        if width < 1:
            assert metrics.auc == pytest.approx((metrics.auc_lower + metrics.auc_upper) / 2)
            assert metrics.auc_error_bound == pytest.approx(width / 2)
        else:  # bins that rank no pair: no pooled AUC, the interval is [0, 1]
            assert metrics.auc is None and (metrics.auc_lower, metrics.auc_upper) == (0, 1)
        assert width <= most, (width, metrics.auc_bins)
        # the interval is what the last released histogram implies, pair by pair
        tests = [
            e
            for e in federation.log
            if e.mode == "sum" and getattr(e.step, "phase", None) == "test"
        ]  # type: ignore[attr-defined]
        released = [e for e in tests if e.total is not None]
        last = released[-1].total
        assert isinstance(last, TrainSumResult)
        assert (metrics.auc_lower, metrics.auc_upper) == pytest.approx(
            _bounds_by_pairs(last.hist_pos, last.hist_neg), abs=1e-12
        )
        assert metrics.auc_bins == len(last.hist_pos)
        # every count that left a site passed its cell rule; every histogram only added
        # public grid edges to the one before
        minimum = (policy or Policy()).min_cell
        previous: set[float] = set()
        for exchange in released:
            edges = exchange.step.edges  # type: ignore[attr-defined]
            assert all(on_score_grid(e) for e in edges) and previous <= set(edges)
            previous = set(edges)
            for answer in exchange.results.values():
                assert all(c == 0 or c >= minimum for c in answer.hist_pos + answer.hist_neg)  # type: ignore[attr-defined]
        if policy is None:  # the default rules: how narrow any bins could be
            limit = _narrowest(scores, labels, site_of, minimum)
            assert limit > permissive_width  # the target is out of the rules' reach
            assert limit - 1e-12 <= width <= 1.6 * limit, (width, limit)


def test_a_site_of_106_rows_trains_an_8_parameter_model_under_the_default_policy(
    sites: dict[str, Any],
) -> None:
    assert len(sites["site1"].frame(["diabetes"], "baseline", None)) == 106
    _, result = _train(sites, None, **HOLDOUT)
    assert len(result.model.columns) == 8 and result.metrics.per_site["site1"].n > 0
    with pytest.raises(SitesFailed) as refused:  # the former default refused it
        _train(sites, Policy(max_parameter_fraction=0.1), **HOLDOUT)
    assert refused.value.extra["sites"]["site1"] == "too_many_parameters"


def test_auc_interval_counts_ties_in_a_bin_against_then_for() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.6 + 0.3 * labels, 2)  # many exact ties
    for edges in (
        [0.0, 1.0],
        [0.0, 0.25, 0.5, 0.75, 1.0],
        [0.0, *np.linspace(0.01, 0.99, 99), 1.0],
    ):
        pos, neg = score_histogram(scores, labels, list(edges))
        lower, upper = auc_interval(pos, neg)  # type: ignore[misc]
        assert (lower, upper) == pytest.approx(_bounds_by_pairs(pos, neg))
        assert lower <= roc_auc_score(labels, scores) <= upper
    assert auc_interval([3, 0], [0, 0]) is None


def test_score_edges_lie_on_the_public_grid() -> None:
    assert all(on_score_grid(e) for e in (0.0, 0.5, 0.0105, 0.25, 1 - 0.0105, 0.985, 1.0))
    assert not any(on_score_grid(e) for e in (0.0104, 0.987654, 1 - 0.0104, -0.1, 1.5))
    for lower, upper in ((0.0, 1.0), (0.0, 0.2), (0.7, 1.0), (0.31, 0.42)):
        for fraction in (0.0625, 0.5, 0.9375):
            point = split_on_grid(lower, upper, fraction)
            assert point is not None and on_score_grid(point) and lower < point < upper
    assert split_on_grid(0.5, 0.505, 0.5) is None  # no grid number strictly inside
    base = {
        "phase": "test",
        "app_hash": "0" * 64,
        "run_id": "r",
        "model": ModelSpec(kind="logistic"),
        "weights": [0.0, 0.0],
        "formula": "y ~ x",
        "columns": ["Intercept", "x"],
        "center": [0.0, 0.0],
        "scale": [1.0, 1.0],
    }
    TrainStep(**base, edges=[0.0, 0.25, 0.985, 1.0])
    for edges in ([0.0, 0.2468, 1.0], [0.0, 0.5], [0.0, 0.5, 0.25, 1.0]):
        with pytest.raises(ValidationError):
            TrainStep(**base, edges=edges)
