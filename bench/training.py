"""Training benchmark: per-round wall time and bytes per round in Flower's simulation, over
real nodes with secure sums and in Flower's deployment mode, and federated vs pooled vs
local-only AUC on the same test rows.
Simulation data: scikit-learn's breast cancer set split over three unequal sites with
different case mix (bytes: the arrays and configuration in every message of a round).
Federation and deployment: three served nodes with a planted logistic outcome
(:mod:`bench.training_http`). Pooled: scikit-learn's LogisticRegression on every site's
training rows. Local-only: each site's own model (trained at the site), AUC on its own
test rows, weighted by rows.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from bench.report import emit
from coordinator.analyses.train import result_of
from coordinator.stats.regression import INTERCEPT
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan, make_plan
from coordinator.training.runtimes.simulation import SimulationRuntime
from node.data.formula import build_design
from schemas.analyses import parse_request
from schemas.analyses.train import TrainRequest
from schemas.models.layout import unflatten
from schemas.models.numeric import predict
from schemas.models.split import split_rows
from schemas.training.bundle import app_hash
from tests.support.federation import split_sites
from tests.support.training import BREAST_FEATURES, TrainingFederation, breast_cancer

FORMULA = "malignant ~ " + " + ".join(BREAST_FEATURES)
ROUNDS = 10


def _aucs(sites: dict[str, Any], plan: TrainPlan, outcome: Outcome) -> dict[str, float]:
    xs, ys, xt, yt = [], [], [], []
    for site, source in sites.items():
        frame = source.frame(["malignant", *BREAST_FEATURES], "baseline", None)
        design = build_design(FORMULA, frame, columns=plan.columns)
        split = split_rows(design.n, site, plan.seed, plan.test_fraction, plan.validation_fraction)
        xs.append(design.x[split.train])
        ys.append(design.y[split.train])
        xt.append(design.x[split.test])
        yt.append(design.y[split.test])
    x_train, y_train = np.vstack(xs), np.concatenate(ys)
    x_test, y_test = np.vstack(xt), np.concatenate(yt)
    keep = [j for j, c in enumerate(plan.columns) if c != INTERCEPT]
    pooled = LogisticRegression(max_iter=5000).fit(x_train[:, keep], y_train)
    z = (x_test - np.asarray(plan.center)) / np.asarray(plan.scale)
    weights = unflatten(plan.spec, len(plan.columns), outcome.weights)
    local = [(r.auc, r.n) for r in outcome.local.values() if r.auc is not None]
    return {
        "federated_auc": float(roc_auc_score(y_test, predict(plan.spec, weights, z))),
        "pooled_auc": float(roc_auc_score(y_test, pooled.predict_proba(x_test[:, keep])[:, 1])),
        "local_only_auc": float(np.average([a for a, _ in local], weights=[n for _, n in local])),
    }


def _row(
    mode: str, outcome: Outcome, bytes_per_round: float, aucs: dict[str, float]
) -> dict[str, Any]:
    seconds = [h.seconds for h in outcome.history]
    return {
        "mode": mode,
        "rounds": len(seconds),
        "s_per_round": float(np.mean(seconds)),
        "bytes_per_round": bytes_per_round,
        **aucs,
    }


def run() -> None:
    # Flower's simulation workers import the in-process links from ``tests.support``
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    frame = breast_cancer()[["malignant", *BREAST_FEATURES]]
    sites = split_sites(frame, [0.45, 0.35, 0.2], seed=5, sort_by="mean_texture")
    from node.privacy.policy import Policy

    federation = TrainingFederation(
        sites, policies={s: Policy(max_parameter_fraction=1.0) for s in sites}
    )
    request = parse_request(
        {
            "analysis": "train",
            "formula": FORMULA,
            "rounds": ROUNDS,
            "local_epochs": 2,
            "patience": ROUNDS,
            "seed": 3,
        }
    )
    assert isinstance(request, TrainRequest)
    plan = asyncio.run(make_plan(request, federation, run_id="bench", app_hash=app_hash()))
    outcome = SimulationRuntime().run(plan, federation.training_links())
    result_of(request, plan, outcome)  # the result builds from this outcome
    sim_bytes = float(np.mean([h.bytes_sent + h.bytes_received for h in outcome.history]))
    from bench.training_http import rows as http_rows

    rows = [
        {
            "data": "breast cancer",
            **_row(
                "simulation (Flower, in-process sites)",
                outcome,
                sim_bytes,
                _aucs(sites, plan, outcome),
            ),
        }
    ]
    rows += [{"data": "planted clinical", **row} for row in http_rows()]
    notes = [
        "federation: every fit, validate and test phase a secure sum over HTTP "
        "(masked vectors: 16 bytes per number); deployment: the SuperLink's traffic "
        "for the whole run divided by its rounds",
        "seconds per round include each node's gate, audit and store reads",
    ]
    emit(
        "training",
        "Federated training (3 sites, logistic)",
        [
            "data",
            "mode",
            "rounds",
            "s_per_round",
            "bytes_per_round",
            "federated_auc",
            "pooled_auc",
            "local_only_auc",
        ],
        rows,
        notes,
    )
