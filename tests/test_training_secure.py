"""Training over real signed HTTP with secure aggregation: the pooled AUC target holds, the
coordinator never holds a site's model update in the clear, a secure run equals the same
run in the clear, and a node refuses training steps of an app it has not approved."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.jobs.runner import run_request
from coordinator.store import registry
from node.data.formula import build_design
from node.privacy.approvals import approvals_path, approve_app
from node.steps.registry import run_step
from schemas.analyses.train import TrainingResult
from schemas.models.layout import unflatten
from schemas.models.numeric import predict
from schemas.models.split import split_rows
from schemas.secagg import fixedpoint
from schemas.secagg.wire import SecureAnswer, SecureTask
from schemas.steps.additive import flatten
from schemas.steps.base import StepBase
from schemas.steps.train import TrainResult, TrainStep, TrainSumResult, TrainSumStep
from schemas.training.bundle import app_hash
from schemas.wire import TaskOutcome
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("training_secure")
SIZES = {"amsterdam": 260, "berlin": 190, "copenhagen": 130}
FORMULA = "ketamine ~ age + madrs_total + education_years"
TRAIN = {
    "analysis": "train",
    "formula": FORMULA,
    "rounds": 15,
    "local_epochs": 2,
    "patience": 3,
    "seed": 3,
}


def planted_sites() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Clinical sites whose ``ketamine`` follows a known logistic model (sites differ)."""
    data = clinical_sites(SIZES, seed=11)
    rng = np.random.default_rng(7)
    for person, obs in data.values():
        del person
        madrs = obs["madrs_total"].fillna(30.0).to_numpy()
        logit = (
            -4.0
            + 0.05 * obs["age"].to_numpy()
            + 0.08 * madrs
            - 0.1 * obs["education_years"].to_numpy()
        )
        obs["ketamine"] = (rng.random(len(obs)) < 1 / (1 + np.exp(-logit))).astype(int)
    return data


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    # min_cell 1: every score bin may leave, so the pooled AUC comes from 64 bins
    permissive = {site: {"min_cell": "1"} for site in SIZES}
    built = LocalConsortium.build(
        tmp_path_factory.mktemp("train-secure"), planted_sites(), policy_extra=permissive
    )
    for node in built.nodes.values():
        approve_app(node.dir.root, app_hash(), "fedpsy training app")
    yield built
    built.close()


@dataclass
class Recording(HttpFederation):
    """The HTTP federation, remembering each step it sent, to whom, and every answer."""

    sent: list[tuple[str, StepBase, SecureTask | None]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def task(self, site: str, step: StepBase, secure: SecureTask | None) -> TaskOutcome:
        self.sent.append((site, step, secure))
        self.answers.append({})
        slot = len(self.answers) - 1  # answers of concurrent tasks come back in any order
        outcome = await super().task(site, step, secure)
        self.answers[slot] = outcome.result or {}
        return outcome


def run_job(
    c: LocalConsortium, request: dict[str, Any], *, secure: bool = True
) -> tuple[dict[str, Any], Recording]:
    nodes = registry.list_nodes(c.coordinator.engine)
    hashes = {n.site: dict(n.variable_hashes) for n in nodes}
    feds: list[Recording] = []

    async def job() -> dict[str, Any]:
        async with httpx.AsyncClient() as client:

            def federation_for(sites: list[str]) -> Recording:
                fed = Recording(
                    [Endpoint(n.site, n.url, n.fingerprint) for n in nodes if n.site in sites],
                    c.coordinator.key,
                    "job-train",
                    "train",
                    client,
                    secure=secure,
                )
                fed.on_receive = lambda s, k, p: fed.received.append((s, k, p))
                feds.append(fed)
                return fed

            return await run_request(request, hashes, federation_for, "job-train")

    envelope = asyncio.run(job())
    assert len(feds) == 1
    return envelope, feds[0]


def _site_parts(
    c: LocalConsortium, result: TrainingResult, seed: int
) -> dict[str, tuple[np.ndarray, ...]]:
    """Per site: train x, train y, test x, test y, split as the site splits its rows."""
    out: dict[str, tuple[np.ndarray, ...]] = {}
    variables = ["ketamine", "age", "madrs_total", "education_years"]
    for site, service in c.services.items():
        frame = service.frames.frame(variables, "baseline", None)
        design = build_design(FORMULA, frame, columns=result.model.columns)
        split = split_rows(design.n, site, seed, 0.25, 0.2, service.split_salt)
        out[site] = (
            design.x[split.train],
            design.y[split.train],
            design.x[split.test],
            design.y[split.test],
        )
    return out


def _scores(result: TrainingResult, x: np.ndarray) -> np.ndarray:
    m = result.model
    z = (x - np.asarray(m.center)) / np.asarray(m.scale)
    return predict(m.spec, unflatten(m.spec, len(m.columns), m.weights), z)


def test_secure_training_reaches_the_pooled_auc_and_no_update_leaves_clear(
    consortium: LocalConsortium,
) -> None:
    envelope, fed = run_job(consortium, TRAIN)
    assert envelope["status"] == "ok", envelope
    result = TrainingResult.model_validate(envelope["result"])
    # AUC on the same test rows as a pooled scikit-learn model trained on the same rows
    parts = _site_parts(consortium, result, 3)
    x_train = np.vstack([p[0] for p in parts.values()])
    y_train = np.concatenate([p[1] for p in parts.values()])
    x_test = np.vstack([p[2] for p in parts.values()])
    y_test = np.concatenate([p[3] for p in parts.values()])
    pooled = LogisticRegression(max_iter=5000).fit(x_train[:, 1:], y_train)
    auc_pooled = roc_auc_score(y_test, pooled.predict_proba(x_test[:, 1:])[:, 1])
    scores = _scores(result, x_test)
    auc_federated = roc_auc_score(y_test, scores)
    assert auc_pooled > 0.7
    assert abs(auc_federated - auc_pooled) <= 0.01, (auc_federated, auc_pooled)
    assert result.metrics.n == y_test.size
    # the bins are as fine as every site's cells allow (the split is seeded with each
    # node's secret, so how fine varies between consortia): at most the 64 asked for
    assert result.metrics.auc is not None and 2 <= (result.metrics.auc_bins or 0) <= 64
    assert abs(result.metrics.auc - auc_federated) <= result.metrics.auc_error_bound + 1e-12
    assert result.metrics.auc_error_bound < 0.05
    assert result.metrics.brier == pytest.approx(float(((scores - y_test) ** 2).mean()))
    for site, (_, _, xs, ys) in parts.items():
        assert result.metrics.per_site[site].n == ys.size
        assert result.metrics.per_site[site].auc == pytest.approx(
            roc_auc_score(ys, _scores(result, xs))
        )
    assert set(result.local_only) == set(SIZES)

    # every fit, validate and test phase went out as a secure sum; only each site's own
    # test metrics and local-only baseline (asked per site) came back in the clear
    summed = [(s, st, sec) for s, st, sec in fed.sent if isinstance(st, TrainSumStep)]
    gathered = [(s, st) for s, st, _ in fed.sent if isinstance(st, TrainStep)]
    assert all(sec is not None for _, _, sec in summed)
    fits = [st for _, st, _ in summed if st.phase == "fit"]
    assert len(fits) == len(result.history) * len(SIZES)
    assert sorted({st.phase for _, st in gathered}) == ["local", "test"]
    everything = repr(fed.received)
    checked = 0
    for (site, step, secure), payload in zip(fed.sent, fed.answers, strict=True):
        if isinstance(step, TrainStep):
            clear = TrainResult.model_validate(payload)
            assert clear.weights == [] and clear.site == site
            continue
        assert secure is not None  # the plan's column moments, and every train_sum
        answer = SecureAnswer.model_validate(payload)  # nothing but a masked answer arrived
        if not isinstance(step, TrainSumStep):
            continue
        partial = run_step(step, consortium.services[site].frames).result
        assert isinstance(partial, TrainSumResult)
        vector = flatten(partial)[0]
        masked = fixedpoint.decode(fixedpoint.from_bytes(base64.b64decode(answer.masked)))
        assert masked.shape == vector.shape
        informative = vector[np.abs(vector) > 1e-6]
        assert not np.any(np.isclose(masked[:, None], informative[None, :], rtol=1e-6))
        if step.phase == "fit":  # the site's own updated weights appear nowhere
            own = [v / partial.n for v in partial.weighted]
            for value in own:
                assert repr(float(value)) not in everything
                assert not np.any(np.isclose(masked, value, rtol=1e-9))
            checked += 1
    assert checked == len(fits)
    assert envelope["privacy"]["secure_aggregation"] is False  # per-site metrics left clear


def test_a_secure_run_equals_the_clear_run_and_says_so(consortium: LocalConsortium) -> None:
    request = {**TRAIN, "rounds": 3, "patience": 3, "per_site": False}
    secure, fed = run_job(consortium, request)
    clear, _ = run_job(consortium, request, secure=False)
    assert secure["status"] == clear["status"] == "ok", (secure, clear)
    assert secure["privacy"] == {"secure_aggregation": True, "dp": None}
    assert clear["privacy"]["secure_aggregation"] is False
    assert all(
        isinstance(step, TrainSumStep) or step.step == "column_moments" for _, step, _ in fed.sent
    )
    a = TrainingResult.model_validate(secure["result"])
    b = TrainingResult.model_validate(clear["result"])
    np.testing.assert_allclose(a.model.weights, b.model.weights, rtol=1e-9, atol=1e-12)
    assert a.metrics.per_site == {} and a.local_only == {}
    assert a.metrics.n == b.metrics.n and a.metrics.auc == b.metrics.auc
    assert [h.round for h in a.history] == [1, 2, 3]


def test_a_node_refuses_training_steps_of_an_unapproved_app(
    consortium: LocalConsortium,
) -> None:
    node = consortium.nodes["berlin"]
    path = approvals_path(node.dir.root)
    kept = path.read_text(encoding="utf-8")
    path.write_text("# nothing approved\n", encoding="utf-8")
    try:
        envelope, _ = run_job(consortium, {**TRAIN, "rounds": 1})
    finally:
        path.write_text(kept, encoding="utf-8")
    assert envelope["status"] == "refused", envelope
    assert envelope["reason"]["sites"] == {"berlin": "app_not_approved"}
    fix = f"fedpsy node approve-app NODE_DIR {app_hash()}"
    assert fix in envelope["reason"]["detail"], envelope["reason"]  # the site is told how
    audit = consortium.services["berlin"].audit.entries()
    refused = [e for e in audit if e.kind == "refused"]
    assert refused[-1].payload["code"] == "app_not_approved"


def test_the_superlink_runtime_needs_a_superlink(consortium: LocalConsortium) -> None:
    envelope, fed = run_job(consortium, {**TRAIN, "runtime": "superlink"})
    assert envelope["status"] == "error"
    assert envelope["reason"]["code"] == "request_invalid"
    assert "fedpsy coordinator serve DIR --flower" in envelope["reason"]["detail"]
    assert fed.sent == []  # refused before any site was asked
