"""A job's design is built once and reused by its later rounds, never by another job, and
never after the store changed (:mod:`node.steps.design_cache`), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from node.audit import AuditLog
from node.data.formula import build_design
from node.data.frame_store import StoreFrameSource
from node.privacy.projects import ProjectSource
from node.privacy.separation import SeparatedSource
from node.service import NodeService
from node.site import NodeSite
from node.steps.design import readable
from node.steps.design_cache import DesignCache
from schemas.cohort import All, Condition
from schemas.errors import Refused
from schemas.wire import TaskOutcome
from tests.support.consortium import LocalConsortium, clinical_sites

FORMULA = "ketamine ~ age + madrs_total + sex"
OLDER = {"all": [{"var": "age", "op": ">=", "value": 40}]}
YOUNGER = {"all": [{"var": "age", "op": "<", "value": 60}]}


@pytest.fixture
def service(tmp_path: Path, store_url: str) -> Iterator[NodeService]:
    """A node service holding one site of 300 persons."""
    person, obs = clinical_sites({"alpha": 300})["alpha"]
    folder = tmp_path / "data"
    folder.mkdir()
    person.to_csv(folder / "person.csv", index=False)
    obs.to_csv(folder / "observations.csv", index=False)
    url = None if store_url.startswith("sqlite") else store_url
    with NodeSite.create(tmp_path / "node", "alpha", url) as node:
        node.ingest(folder)
        yield NodeService(node)


def submit(
    service: NodeService, job: str, step: dict[str, Any], signer: str = "coordinator-key"
) -> TaskOutcome:
    """``step`` as a task of ``job`` whose signature (by ``signer``) the API verified."""
    body = {"task_id": uuid.uuid4().hex, "job_id": job, "analysis": "glm", "step": step}
    return service.submit(json.dumps(body).encode(), signer)


def columns(service: NodeService, cohort: dict[str, Any] | None = None) -> list[str]:
    step = {"step": "column_moments", "formula": FORMULA, "cohort": cohort}
    found = submit(service, uuid.uuid4().hex, step)
    assert found.status == "answered", found.reason
    assert found.result is not None
    return list(found.result["columns"])


def score_step(
    names: list[str], beta: float, cohort: dict[str, Any] | None = None
) -> dict[str, Any]:
    p = len(names)
    return {
        "step": "glm_score",
        "formula": FORMULA,
        "columns": names,
        "center": [0.0] * p,
        "scale": [1.0] * p,
        "family": "binomial",
        "beta": [beta] * p,
        "cohort": cohort,
    }


def score(service: NodeService, job: str, step: dict[str, Any]) -> np.ndarray:
    found = submit(service, job, step)
    assert found.status == "answered", found.reason
    assert found.result is not None
    return np.asarray(found.result["score"])


def expected_score(service: NodeService, names: list[str], beta: float) -> np.ndarray:
    """``Xᵀ(y − μ)`` on the rows read from the store itself (not the columnar layer)."""
    node = service.node
    frame = StoreFrameSource(node.engine, "alpha", node.dictionary).frame(
        ["ketamine", "age", "madrs_total", "sex"], "baseline", None
    )
    design = build_design(FORMULA, frame, columns=names)
    mu = 1.0 / (1.0 + np.exp(-(design.x @ np.full(len(names), beta))))
    return np.asarray(design.x.T @ (design.y - mu))


def test_later_rounds_of_a_job_reuse_its_design(service: NodeService) -> None:
    names = columns(service)
    built = service.designs.built
    job = uuid.uuid4().hex
    first = score(service, job, score_step(names, 0.0))
    assert (service.designs.built, service.designs.reused) == (built + 1, 0)
    for r in range(1, 4):
        found = score(service, job, score_step(names, 0.01 * r))
        np.testing.assert_allclose(found, expected_score(service, names, 0.01 * r), rtol=1e-12)
    assert (service.designs.built, service.designs.reused) == (built + 1, 3)
    np.testing.assert_allclose(first, expected_score(service, names, 0.0), rtol=1e-12)
    # every round still passes the gate and is audited as released, reused design or not
    events = [e.kind for e in AuditLog(service.node.engine).entries()]
    assert events.count("released") == 5  # column_moments and four rounds


def test_a_design_is_kept_under_the_columns_it_has(service: NodeService) -> None:
    job = uuid.uuid4().hex
    moments = submit(service, job, {"step": "column_moments", "formula": FORMULA})
    assert moments.result is not None
    names = list(moments.result["columns"])
    score(service, job, score_step(names, 0.0))  # the same columns, named
    assert (service.designs.built, service.designs.reused) == (1, 1)
    fewer = score(service, job, score_step(names[:-1], 0.0))  # a column dropped
    assert (service.designs.built, service.designs.reused) == (2, 1)
    np.testing.assert_allclose(fewer, expected_score(service, names[:-1], 0.0), rtol=1e-12)


def test_an_ingest_between_rounds_gives_the_next_round_the_new_data(
    service: NodeService, tmp_path: Path
) -> None:
    names = columns(service)
    job = uuid.uuid4().hex
    before = score(service, job, score_step(names, 0.02))
    score(service, job, score_step(names, 0.02))
    assert service.designs.reused == 1
    built = service.designs.built

    frame = service.frames.frame(["age"], "baseline", None)
    changed = tmp_path / "changed"
    changed.mkdir()
    persons = pd.read_csv(tmp_path / "data" / "person.csv")["person_id"]
    pd.DataFrame(
        {
            "person_id": persons.head(40),
            "visit": "baseline",
            "age": frame["age"].to_numpy()[:40] + 1.5,
        }
    ).to_csv(changed / "observations.csv", index=False)
    service.node.ingest(changed)

    after = score(service, job, score_step(names, 0.02))
    assert service.designs.built == built + 1  # the old design was not served
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, expected_score(service, names, 0.02), rtol=1e-12)
    score(service, job, score_step(names, 0.02))
    assert (service.designs.built, service.designs.reused) == (built + 1, 2)


def test_another_job_or_cohort_never_gets_a_kept_design(service: NodeService) -> None:
    names = columns(service)
    job = uuid.uuid4().hex
    score(service, job, score_step(names, 0.01, OLDER))
    built = service.designs.built
    # the same formula on another cohort: in another job, and in the same job
    younger = score(service, uuid.uuid4().hex, score_step(names, 0.01, YOUNGER))
    assert score(service, job, score_step(names, 0.01, YOUNGER)) == pytest.approx(younger)
    # the same formula and cohort in another job builds its own, and so does the same
    # job id signed by another coordinator's key
    score(service, uuid.uuid4().hex, score_step(names, 0.01, OLDER))
    other = submit(service, job, score_step(names, 0.01, OLDER), signer="another-key")
    assert other.status == "answered"
    assert (service.designs.built, service.designs.reused) == (built + 4, 0)
    score(service, job, score_step(names, 0.01, OLDER))
    assert service.designs.reused == 1


def test_a_failing_round_on_a_reused_small_design_is_the_size_refusal(
    service: NodeService,
) -> None:
    tiny = {"all": [{"var": "age", "op": ">=", "value": 79.5}]}  # below min_cohort
    # a binary family on a score: the step fails on the design's outcome, every round
    step = score_step(["Intercept", "age", "sex[T.M]"], 0.0, tiny)
    step["formula"] = "madrs_total ~ age + sex"
    job = uuid.uuid4().hex
    first = submit(service, job, step)
    assert first.reason is not None and first.reason["code"] == "cohort_too_small"
    # on the reused design the failure is refused word for word as the small cohort is
    again = submit(service, job, step)
    assert service.designs.reused == 1
    assert again.reason == first.reason


def test_every_wrapper_s_read_rule_applies_to_a_reused_design(service: NodeService) -> None:
    """A round reusing its design reads no frame, so the read rules are applied to its
    variables and cohort directly, through every wrapper down to the store's source."""
    wrapped = SeparatedSource(
        ProjectSource(service.frames, "p", frozenset({"age", "sex", "ketamine"})),
        service.node.dictionary,
    )
    readable(wrapped, ["ketamine", "age", "sex"], None)
    with pytest.raises(Refused) as outside:
        readable(wrapped, ["ketamine", "age", "madrs_total"], None)
    assert outside.value.code == "project_not_approved"
    tested = All(all=[Condition(var="age", op="==", value=41)])  # fixes the value read
    with pytest.raises(Refused) as selected:
        readable(wrapped, ["ketamine", "age", "sex"], tested)
    assert selected.value.code == "cohort_on_released"


def test_kept_designs_are_bounded_and_read_only(service: NodeService) -> None:
    names = columns(service)
    service.designs = DesignCache(max_designs=2)
    jobs = [uuid.uuid4().hex for _ in range(3)]
    for job in jobs:
        score(service, job, score_step(names, 0.0))
    assert len(service.designs) == 2
    score(service, jobs[0], score_step(names, 0.0))  # the least recently used went
    assert (service.designs.built, service.designs.reused) == (4, 0)
    score(service, jobs[2], score_step(names, 0.0))
    assert service.designs.reused == 1
    small = DesignCache(max_bytes=service.designs.nbytes // 4)
    service.designs = small
    score(service, jobs[1], score_step(names, 0.0))
    assert (len(small), small.built) == (0, 1)  # larger than the whole budget: not kept


def test_a_glm_over_http_builds_each_design_once_per_site(tmp_path: Path) -> None:
    consortium = LocalConsortium.build(tmp_path, clinical_sites({"alpha": 200, "beta": 150}))
    try:
        request = {"analysis": "glm", "formula": FORMULA, "family": "binomial"}
        result = asyncio.run(consortium.coordinator.run(request))
        assert result["status"] == "ok", result
        rounds = result["result"]["iterations"]
        for service in consortium.services.values():
            # built once by column_moments (every column); every glm_score round (the
            # same columns) reused it
            assert service.designs.built == 1
            assert service.designs.reused >= rounds + 1
    finally:
        consortium.close()
