"""Training over real nodes: the secure federation path and Flower's deployment mode.

One consortium of three served nodes (``tests.support.consortium``) whose ``ketamine``
follows a known logistic model; the same plan runs (1) through the HTTP federation, every
model update a secure sum, and (2) on a real ``flower-superlink`` with one
``flower-supernode`` and long-running ClientApp worker per site, the same signed tasks and
secure sums carried by Flower messages. Reported per mode:
seconds per round, bytes per round (federation: JSON of the steps sent and the answers
received, masked vectors included; deployment: the SuperLink's network traffic over the
run's rounds), the federated model's AUC on every site's test rows, scikit-learn's
``LogisticRegression`` trained on the pooled training rows (the reference no consortium
could fit without moving rows) and the local-only models' AUC (weighted by test rows).
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.store import registry
from coordinator.training.delivery import Delivery
from coordinator.training.federated import FederationRuntime
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan, make_plan
from coordinator.training.runtimes.deployment import DeploymentRuntime
from coordinator.training.superlink import start_superlink
from fedpsy.flower import site_supernode
from fedpsy.keeper import stop_process
from node.data.formula import build_design
from node.privacy.approvals import approve_app
from schemas.analyses import parse_request
from schemas.analyses.train import TrainRequest
from schemas.models.layout import unflatten
from schemas.models.numeric import predict
from schemas.models.split import split_rows
from schemas.training.bundle import app_hash
from tests.support.consortium import LocalConsortium, clinical_sites

SIZES = {"amsterdam": 600, "berlin": 450, "copenhagen": 300}
FORMULA = "ketamine ~ age + madrs_total + education_years"
VARIABLES = ["ketamine", "age", "madrs_total", "education_years"]
ROUNDS = 10


def planted() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    data = clinical_sites(SIZES, seed=11)
    rng = np.random.default_rng(7)
    for _, obs in data.values():
        madrs = obs["madrs_total"].fillna(30.0).to_numpy()
        logit = (
            -4.0
            + 0.05 * obs["age"].to_numpy()
            + 0.08 * madrs
            - 0.1 * obs["education_years"].to_numpy()
        )
        obs["ketamine"] = (rng.random(len(obs)) < 1 / (1 + np.exp(-logit))).astype(int)
    return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aucs(c: LocalConsortium, plan: TrainPlan, outcome: Outcome) -> dict[str, float]:
    xs, ys, xt, yt = [], [], [], []
    for site, service in c.services.items():
        design = build_design(
            FORMULA, service.frames.frame(VARIABLES, "baseline", None), columns=plan.columns
        )
        split = split_rows(design.n, site, plan.seed, plan.test_fraction, plan.validation_fraction)
        xs.append(design.x[split.train])
        ys.append(design.y[split.train])
        xt.append(design.x[split.test])
        yt.append(design.y[split.test])
    x_test, y_test = np.vstack(xt), np.concatenate(yt)
    pooled = LogisticRegression(max_iter=5000).fit(np.vstack(xs)[:, 1:], np.concatenate(ys))
    z = (x_test - np.asarray(plan.center)) / np.asarray(plan.scale)
    weights = unflatten(plan.spec, len(plan.columns), outcome.weights)
    local = [(r.auc, r.n) for r in outcome.local.values() if r.auc is not None]
    return {
        "federated_auc": float(roc_auc_score(y_test, predict(plan.spec, weights, z))),
        "pooled_auc": float(roc_auc_score(y_test, pooled.predict_proba(x_test[:, 1:])[:, 1])),
        "local_only_auc": float(np.average([a for a, _ in local], weights=[n for _, n in local])),
    }


async def _federated(c: LocalConsortium, request: TrainRequest) -> tuple[TrainPlan, Outcome]:
    nodes = registry.list_nodes(c.coordinator.engine)
    async with httpx.AsyncClient() as client:
        federation = HttpFederation(
            [Endpoint(n.site, n.url, n.fingerprint) for n in nodes],
            c.coordinator.key,
            "bench-train",
            "train",
            client,
        )
        plan = await make_plan(request, federation, run_id=uuid.uuid4().hex, app_hash=app_hash())
        runtime = FederationRuntime(federation, asyncio.get_running_loop())
        outcome = await asyncio.to_thread(runtime.run, plan, [])
    return plan, outcome


def _deployed(
    stack: ExitStack, c: LocalConsortium, root: Path, plan: TrainPlan
) -> tuple[Outcome, float]:
    port = free_port()
    link = start_superlink(root / "superlink", port, root / "superlink.log", insecure=True)
    stack.callback(stop_process, link, "the SuperLink")
    for node in c.nodes.values():  # as `fedpsy node serve --supernode` runs them
        stack.enter_context(site_supernode(node.dir.root, f"127.0.0.1:{port}", port=free_port()))
    runtime = DeploymentRuntime(root / "superlink", f"127.0.0.1:{port}", insecure=True, timeout=300)
    nodes = registry.list_nodes(c.coordinator.engine)
    delivery = Delivery(
        job_id="bench-train",
        key_file=str(c.coordinator.dir.private_key),
        identities={n.site: n.fingerprint for n in nodes},
    )
    outcome = runtime.run(
        plan.model_copy(update={"run_id": uuid.uuid4().hex, "delivery": delivery}), []
    )
    traffic = float(runtime.last_run.get("network-traffic", {}).get("total-bytes", 0))
    return outcome, traffic


def _row(
    mode: str, outcome: Outcome, bytes_per_round: float, scores: dict[str, float]
) -> dict[str, Any]:
    seconds = [h.seconds for h in outcome.history]
    return {
        "mode": mode,
        "rounds": len(seconds),
        "s_per_round": float(np.mean(seconds)),
        "bytes_per_round": bytes_per_round,
        **scores,
    }


def rows() -> list[dict[str, Any]]:
    """The federation and deployment rows (the consortium is built and torn down here)."""
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
    with tempfile.TemporaryDirectory(prefix="fedpsy-bench-train-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        c = LocalConsortium.build(root / "consortium", planted())
        stack.callback(c.close)
        for node in c.nodes.values():
            approve_app(node.dir.root, app_hash())
        plan, outcome = asyncio.run(_federated(c, request))
        sent = float(np.mean([h.bytes_sent + h.bytes_received for h in outcome.history]))
        out = [_row("federation (HTTP, secure sums)", outcome, sent, aucs(c, plan, outcome))]
        deployed, traffic = _deployed(stack, c, root, plan)
        # the run's traffic over its rounds (the test and local phases ride along)
        per_round = traffic / max(len(deployed.history), 1)
        scores = aucs(c, plan, deployed)
        out.append(_row("deployment (SuperLink, secure sums)", deployed, per_round, scores))
    return out


__all__ = ["rows"]
