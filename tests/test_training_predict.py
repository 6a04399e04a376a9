"""``predict`` over real HTTP: a model from the coordinator's registry scores every node's
rows, the scores stay at the nodes as a new variable (equal to scoring the node's rows
with the model), later jobs can use it, and nothing but counts reaches the coordinator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from node.data.formula import build_design
from node.privacy.approvals import approve_app
from node.store import tables as t
from schemas.analyses.train import TrainedModel
from schemas.models.layout import unflatten
from schemas.models.numeric import predict
from schemas.training.bundle import app_hash
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("training_predict")
SIZES = {"oslo": 480, "porto": 390, "riga": 330}
"""Large enough that every site's held-out parts (drawn with its own secret salt) hold
more than min_cohort positives and negatives whatever the salt."""
FORMULA = "ketamine ~ age + madrs_total + sex"


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    data = clinical_sites(SIZES, seed=5)
    for _, obs in data.values():  # some persons' outcome not known yet: they are scored too
        obs.loc[obs.index[::7], "ketamine"] = np.nan
    built = LocalConsortium.build(tmp_path_factory.mktemp("predict"), data)
    for node in built.nodes.values():
        approve_app(node.dir.root, app_hash())
    yield built
    built.close()


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request))


def kept(c: LocalConsortium, site: str, code: str) -> pd.Series:
    """The values of ``code`` the node keeps, by person row id."""
    with c.nodes[site].engine.connect() as conn:
        rows = conn.execute(
            select(t.person.c.row_id, t.observation.c.value_num)
            .join(t.person, t.person.c.person_id == t.observation.c.person_id)
            .where(t.observation.c.variable == code)
        ).all()
    return pd.Series({int(r): float(v) for r, v in rows}, dtype=np.float64).sort_index()


def expected(c: LocalConsortium, site: str, model: TrainedModel) -> pd.Series:
    """The model's score of each of the node's rows with complete predictors."""
    frame = c.services[site].frames.frame(["age", "madrs_total", "sex"], "baseline", None)
    complete = frame.dropna()
    x = build_design(FORMULA, complete.assign(ketamine=0.0), columns=model.columns).x
    z = (x - np.asarray(model.center)) / np.asarray(model.scale)
    weights = unflatten(model.spec, len(model.columns), model.weights)
    scores = predict(model.spec, weights, z)
    return pd.Series(scores, index=complete.index.astype(int), dtype=np.float64).sort_index()


def test_scores_are_kept_at_each_node_and_never_leave(consortium: LocalConsortium) -> None:
    trained = run(
        consortium,
        {
            "analysis": "train",
            "formula": FORMULA,
            "rounds": 3,
            "validation_fraction": 0.3,
            "per_site": False,
            "seed": 2,
        },
    )
    assert trained["status"] == "ok", trained["reason"]
    model_id = trained["result"]["model_id"]
    model = TrainedModel.model_validate(trained["result"]["model"])

    scored = run(
        consortium, {"analysis": "predict", "model_id": model_id, "new_variable": "ketamine_risk"}
    )
    assert scored["status"] == "ok", scored
    result = scored["result"]
    assert result["new_variable"] == "ketamine_risk" and result["model_id"] == model_id
    assert scored["privacy"]["secure_aggregation"] is True
    total = 0
    for site in SIZES:
        want = expected(consortium, site, model)
        got = kept(consortium, site, "ketamine_risk")
        assert list(got.index) == list(want.index)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
        total += len(got)
        derived = (consortium.nodes[site].dir.dictionary / "derived.yaml").read_text()
        assert "ketamine_risk" in derived and model_id in derived
        # what left the node for this job: row counts, never a score
        audit = consortium.services[site].audit.entries()
        released = [e.payload["left"] for e in audit if e.kind == "released"]
        assert not any(repr(float(v)) in repr(released) for v in got.to_numpy()[:20])
    assert result["n"] == total
    assert scored["sites"] == {s: {"n": len(kept(consortium, s, "ketamine_risk"))} for s in SIZES}
    # persons without a known outcome were scored too
    pooled = consortium.pooled
    assert total == len(pooled.dropna(subset=["age", "madrs_total", "sex"]))
    assert pooled["ketamine"].isna().sum() > 0

    # the new variable is usable by later jobs, as any other
    summary = run(consortium, {"analysis": "summary", "variables": ["ketamine_risk"]})
    assert summary["status"] == "ok", summary
    values = np.concatenate([kept(consortium, s, "ketamine_risk").to_numpy() for s in SIZES])
    got_summary = summary["result"]["variables"]["ketamine_risk"]
    assert got_summary["n"] == values.size
    assert got_summary["mean"] == pytest.approx(values.mean(), rel=1e-10)


def test_an_unknown_model_is_an_error(consortium: LocalConsortium) -> None:
    missing = run(
        consortium,
        {"analysis": "predict", "model_id": "no-such-model", "new_variable": "nothing_here"},
    )
    assert missing["status"] == "error"
    assert missing["reason"]["code"] == "not_found"
    for site in SIZES:
        assert kept(consortium, site, "nothing_here").empty
