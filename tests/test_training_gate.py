"""Training app bundles and hashes, and runs whose rounds fail or come back empty, driven
through the simulation ServerApp's rounds on an in-process Flower grid."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from coordinator.federation.failures import SitesFailed
from node.privacy.policy import Policy
from node.site import NodeSite
from schemas.errors import FedpsyError
from schemas.models.layout import ModelSpec, flatten, initial_weights
from schemas.models.metrics import on_score_grid
from schemas.steps.train import TrainStep
from schemas.training.bundle import app_hash, bundle_files, hash_files, write_bundle
from schemas.training.env import flower_environment
from tests.support.consortium import clinical_sites
from tests.support.federation import split_sites
from tests.support.training import BREAST_FEATURES, SourceLink, TrainingFederation, breast_cancer

FORMULA = "ketamine ~ age + madrs_total"
COLUMNS = ["Intercept", "age", "madrs_total"]


@pytest.fixture
def node(tmp_path: Path) -> NodeSite:
    person, obs = clinical_sites({"berlin": 120})["berlin"]
    folder = tmp_path / "data"
    folder.mkdir()
    person.to_csv(folder / "person.csv", index=False)
    obs.to_csv(folder / "observations.csv", index=False)
    site = NodeSite.create(tmp_path / "node", "berlin", None)
    site.ingest(folder)
    return site


def _step(phase: str = "fit", app: str | None = None, **extra: Any) -> TrainStep:
    spec = ModelSpec(kind="logistic")
    return TrainStep(
        phase=phase,
        app_hash=app or app_hash(),
        run_id="run1",
        round=1,
        model=spec,
        weights=flatten(initial_weights(spec, 3, 0)),
        formula=FORMULA,
        columns=COLUMNS,
        center=[0.0, 45.0, 30.0],
        scale=[1.0, 15.0, 8.0],
        **extra,
    )


def test_app_hash_covers_the_bundle(tmp_path: Path) -> None:
    written = write_bundle(tmp_path / "app")
    assert app_hash(written) == app_hash() == hash_files(bundle_files())
    (written / "extra.py").write_text("print('not reviewed')\n")
    assert app_hash(written) != app_hash()


class LocalGrid:
    """A Flower grid that runs a ClientApp in this process, one node per link.

    ``drop`` (phase → bool) lets a test lose every reply of a phase (an empty round).
    """

    def __init__(
        self,
        links: list[Any],
        drop: Callable[[str], bool] = lambda phase: False,
        crash: Callable[[str], bool] = lambda phase: False,
    ) -> None:
        from flwr.app import Context, Error, Message, RecordDict
        from flwr.supercore.task_identity import TaskIdentity

        from coordinator.training.runtimes.relay import relay_app

        TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
        self._message, self._error, self._context, self._records = (
            Message,
            Error,
            Context,
            RecordDict,
        )
        self.app = relay_app(links)
        self.nodes = {i + 1: i for i in range(len(links))}
        self.drop, self.crash = drop, crash

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def send_and_receive(
        self, messages: Iterable[Any], *, timeout: float | None = None
    ) -> Iterable[Any]:
        from schemas.training.protocol import step_of

        replies = []
        for message in messages:
            phase = step_of(message).phase
            if self.drop(phase):
                continue
            if self.crash(phase):
                replies.append(self._message(self._error(code=1, reason="boom"), reply_to=message))
                continue
            node = message.metadata.dst_node_id
            context = self._context(
                run_id=1,
                node_id=node,
                node_config={"partition-id": self.nodes[node]},
                state=self._records(),
                run_config={},
            )
            replies.append(self.app(message, context))
        return replies


def _plan(tmp_path: Path, policies: dict[str, Policy] | None = None) -> tuple[Any, list[Any]]:
    flower_environment(tmp_path / "flwr")
    from coordinator.training.plan import make_plan
    from schemas.analyses import parse_request

    frame = breast_cancer()[["malignant", *BREAST_FEATURES[:4]]]
    sources = split_sites(frame, [0.5, 0.3, 0.2], seed=2)
    federation = TrainingFederation(sources, policies=policies)
    request = parse_request(
        {
            "analysis": "train",
            "rounds": 3,
            "seed": 1,
            "formula": "malignant ~ " + " + ".join(BREAST_FEATURES[:4]),
        }
    )
    plan = asyncio.run(make_plan(request, federation, run_id="r1", app_hash=app_hash()))  # type: ignore[arg-type]
    return plan, federation.training_links()


def test_rounds_on_an_in_process_grid(tmp_path: Path) -> None:
    plan, links = _plan(tmp_path)
    from coordinator.training.rounds import Rounds

    outcome = Rounds(plan, LocalGrid(links)).run()  # type: ignore[arg-type]
    assert [h.round for h in outcome.history] == [1, 2, 3]
    assert all(h.bytes_sent > 0 and h.bytes_received > 0 for h in outcome.history)
    assert set(outcome.test) == set(outcome.local) == {"site1", "site2", "site3"}


@pytest.mark.parametrize("phase", ["fit", "validate", "test"])
def test_an_empty_round_fails_the_run(tmp_path: Path, phase: str) -> None:
    plan, links = _plan(tmp_path)
    from coordinator.training.rounds import Rounds

    grid = LocalGrid(links, drop=lambda p: p == phase)
    with pytest.raises(FedpsyError) as failed:
        Rounds(plan, grid).run()  # type: ignore[arg-type]
    assert failed.value.code == "training_failed"


def test_a_failed_round_fails_the_run(tmp_path: Path) -> None:
    plan, links = _plan(tmp_path)
    from coordinator.training.rounds import Rounds

    with pytest.raises(FedpsyError) as failed:
        Rounds(plan, LocalGrid(links, crash=lambda p: p == "validate")).run()  # type: ignore[arg-type]
    assert failed.value.code == "training_failed"
    assert "boom" in failed.value.detail


def test_a_partial_round_fails_the_run(tmp_path: Path) -> None:
    plan, links = _plan(tmp_path)
    from coordinator.training.rounds import Rounds

    class Partial(LocalGrid):
        def send_and_receive(
            self, messages: Iterable[Any], *, timeout: float | None = None
        ) -> Iterable[Any]:
            return list(super().send_and_receive(messages, timeout=timeout))[:-1]

    with pytest.raises(FedpsyError) as failed:
        Rounds(plan, Partial(links)).run()  # type: ignore[arg-type]
    assert failed.value.code == "training_failed"


def test_a_refusing_site_fails_the_run_with_its_code(tmp_path: Path) -> None:
    strict = {"site3": Policy(min_model_rows=1000)}
    plan, links = _plan(tmp_path, strict)
    from coordinator.training.rounds import Rounds

    with pytest.raises(SitesFailed) as refused:
        Rounds(plan, LocalGrid(links)).run()  # type: ignore[arg-type]
    assert refused.value.extra["sites"] == {"site3": "model_too_small"}
    assert refused.value.code == "refused"
    assert isinstance(links[0], SourceLink)


def test_score_bins_are_as_fine_as_every_sites_cells_allow(tmp_path: Path) -> None:
    plan, links = _plan(tmp_path)  # default policies: a score cell of 1-4 rows is refused
    from coordinator.analyses.train import pooled_metrics
    from coordinator.training.rounds import Rounds

    outcome = Rounds(plan, LocalGrid(links)).run()  # type: ignore[arg-type]
    assert outcome.pooled is not None and outcome.pooled.n > 0
    metrics = pooled_metrics(outcome.pooled, outcome.test, outcome.edges)
    # fixed equal-width bins were refused down to one here; searched ones pass
    assert 2 < len(outcome.edges) <= plan.bins + 1
    assert all(on_score_grid(e) for e in outcome.edges)
    assert metrics.auc is not None and metrics.auc_lower is not None
    assert metrics.auc_upper is not None and metrics.auc_upper - metrics.auc_lower < 0.5
    strict = {"site3": Policy(min_cell=15)}  # more than its test positives
    plan, links = _plan(tmp_path, strict)  # even one bin is refused: no histograms
    outcome = Rounds(plan, LocalGrid(links)).run()  # type: ignore[arg-type]
    assert outcome.edges == [] and outcome.pooled is not None and outcome.pooled.hist_pos == []
    metrics = pooled_metrics(outcome.pooled, outcome.test, outcome.edges)
    assert metrics.auc is None and metrics.auc_bins == 0 and metrics.brier is not None
    permissive = {s: Policy(min_cell=1) for s in ("site1", "site2", "site3")}
    plan, links = _plan(tmp_path, permissive)
    outcome = Rounds(plan, LocalGrid(links)).run()  # type: ignore[arg-type]
    metrics = pooled_metrics(outcome.pooled, outcome.test, outcome.edges)
    assert len(outcome.edges) <= plan.bins + 1 and metrics.auc is not None
    assert metrics.auc_lower is not None and metrics.auc_upper is not None
    assert metrics.auc_upper - metrics.auc_lower < 0.02  # bins split until one class each
