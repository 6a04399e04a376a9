"""Federated training against pooled scikit-learn: logistic regression in Flower's
simulation (each simulated ClientApp relaying to its site's gate), the MLP through the
federation's own sums (the path the HTTP federation takes with secure aggregation)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from coordinator.analyses.registry import run_analysis
from node.data.formula import build_design
from node.privacy.policy import Policy
from schemas.analyses import parse_request
from schemas.analyses.train import TrainingResult
from schemas.models.layout import unflatten
from schemas.models.numeric import predict
from schemas.models.split import split_rows
from tests.support.federation import InProcessFederation, split_sites
from tests.support.training import BREAST_FEATURES, TrainingFederation, breast_cancer

pytestmark = pytest.mark.xdist_group("flower")

FORMULA = "malignant ~ " + " + ".join(BREAST_FEATURES)
# every score bin may leave; 30 features on small sites have rows of high leverage
POLICY = Policy(max_parameter_fraction=1.0, min_cell=1, max_leverage=1.0)


@pytest.fixture(scope="module")
def sites() -> dict[str, Any]:
    """Three unequal sites with different case mix (sorted by texture)."""
    frame = breast_cancer()[["malignant", *BREAST_FEATURES]]
    return split_sites(frame, [0.45, 0.35, 0.2], seed=5, sort_by="mean_texture")


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower's simulation workers import the in-process links from ``tests.support``."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))


def _train(sites: dict[str, Any], *, flower: bool = True, **request: Any) -> TrainingResult:
    data = {"analysis": "train", "formula": FORMULA, "seed": 3, **request}
    federation = (
        TrainingFederation(sites, policies={s: POLICY for s in sites})
        if flower
        else InProcessFederation(sites)
    )
    result, _ = asyncio.run(run_analysis(parse_request(data), federation))
    assert isinstance(result, TrainingResult)
    return result


def _parts(
    sites: dict[str, Any],
    result: TrainingResult,
    seed: int,
    test_fraction: float,
    validation_fraction: float,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per site: (train x, train y, test x, test y) as the sites split their rows."""
    out = {}
    for site, source in sites.items():
        frame = source.frame(["malignant", *BREAST_FEATURES], "baseline", None)
        design = build_design(FORMULA, frame, columns=result.model.columns)
        split = split_rows(design.n, site, seed, test_fraction, validation_fraction)
        out[site] = (
            design.x[split.train],
            design.y[split.train],
            design.x[split.test],
            design.y[split.test],
        )
    return out


def _federated_scores(result: TrainingResult, x: np.ndarray) -> np.ndarray:
    m = result.model
    z = (x - np.asarray(m.center)) / np.asarray(m.scale)
    return predict(m.spec, unflatten(m.spec, len(m.columns), m.weights), z)


def _compare(sites: dict[str, Any], result: TrainingResult, tolerance: float) -> None:
    parts = _parts(sites, result, 3, 0.25, 0.2)
    x_train = np.vstack([p[0] for p in parts.values()])
    y_train = np.concatenate([p[1] for p in parts.values()])
    x_test = np.vstack([p[2] for p in parts.values()])
    y_test = np.concatenate([p[3] for p in parts.values()])
    pooled = LogisticRegression(max_iter=5000).fit(x_train[:, 1:], y_train)
    auc_pooled = roc_auc_score(y_test, pooled.predict_proba(x_test[:, 1:])[:, 1])
    scores = _federated_scores(result, x_test)
    auc_federated = roc_auc_score(y_test, scores)
    assert abs(auc_federated - auc_pooled) <= tolerance, (auc_federated, auc_pooled)
    # the reported pooled AUC is within its stated bound of the exact pooled AUC
    metrics = result.metrics
    assert metrics.n == y_test.size
    assert metrics.auc is not None
    assert abs(metrics.auc - auc_federated) <= metrics.auc_error_bound + 1e-12
    assert metrics.accuracy == pytest.approx(float(((scores >= 0.5) == (y_test == 1)).mean()))
    assert metrics.brier == pytest.approx(float(((scores - y_test) ** 2).mean()))
    for site, (_, _, xs, ys) in parts.items():
        own = result.metrics.per_site[site]
        assert own.n == ys.size
        if 0 < ys.sum() < ys.size:
            assert own.auc == pytest.approx(roc_auc_score(ys, _federated_scores(result, xs)))


@pytest.mark.slow
def test_logistic_regression_reaches_pooled_auc(sites: dict[str, Any]) -> None:
    result = _train(sites, model="logistic", rounds=15, local_epochs=2, patience=3)
    _compare(sites, result, 0.01)
    assert result.history and result.history[0].round == 1
    assert 1 <= result.best_round <= len(result.history) <= 15
    assert [h.round for h in result.history] == list(range(1, len(result.history) + 1))
    assert set(result.local_only) == set(sites)
    # coefficients on the design's scale score exactly as the standardized weights
    frame = pd.concat(
        [s.frame(["malignant", *BREAST_FEATURES], "baseline", None) for s in sites.values()]
    )
    design = build_design(FORMULA, frame, columns=result.model.columns)
    beta = np.array([c.estimate for c in result.coefficients])
    assert [c.term for c in result.coefficients] == result.model.columns
    np.testing.assert_allclose(
        1 / (1 + np.exp(-design.x @ beta)),
        _federated_scores(result, design.x),
        rtol=1e-9,
        atol=1e-12,
    )


def test_mlp_reaches_pooled_auc(sites: dict[str, Any]) -> None:
    result = _train(
        sites,
        flower=False,
        model="mlp",
        hidden=4,
        rounds=20,
        local_epochs=2,
        patience=4,
        strategy="fedprox",
        proximal_mu=0.01,
    )
    assert result.coefficients == []
    _compare(sites, result, 0.02)
