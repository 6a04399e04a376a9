"""Training over in-process sites: the federation of the tests with links for Flower.

:class:`SourceLink` runs a train step on a :class:`~node.data.frame_memory.DataFrameSource`
with the node's real step handler and privacy gate (:func:`node.privacy.gate.check_disclosure`
under a :class:`~node.privacy.policy.Policy`); it is picklable, so Flower's simulation workers
can run it. :class:`TrainingFederation` is the in-process federation whose training links
are those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from sklearn.datasets import load_breast_cancer

from coordinator.training.links import SiteLink
from node.data.frame_memory import DataFrameSource
from node.privacy.gate import check_disclosure
from node.privacy.policy import Policy
from node.steps.registry import run_step
from schemas.cohort import Cohort
from schemas.steps.base import Disclosure
from schemas.steps.train import TrainResult, TrainStep
from tests.support.federation import InProcessFederation

BREAST_FEATURES = [
    "mean_radius",
    "mean_texture",
    "mean_smoothness",
    "mean_compactness",
    "mean_concavity",
    "mean_symmetry",
    "worst_radius",
    "worst_texture",
    "worst_concave_points",
    "worst_area",
]


def breast_cancer() -> pd.DataFrame:
    """scikit-learn's breast cancer data (569 rows), malignant = 1, snake_case columns."""
    data = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = (frame.pop("target") == 0).astype(float)
    return frame


@dataclass(frozen=True)
class SourceLink:
    """A site as a frame source behind the node's step handler and gate."""

    source: DataFrameSource
    policy: Policy

    @property
    def site(self) -> str:
        return self.source.site

    def run(self, step: TrainStep) -> TrainResult:
        computed = run_step(step, self.source)
        check_disclosure(self.policy, "train", step.step, computed.disclosure)
        assert isinstance(computed.result, TrainResult)
        return computed.result


class TrainingFederation(InProcessFederation):
    """In-process sites that can also train (``policies`` per site, default policy)."""

    def __init__(
        self,
        sources: Mapping[str, DataFrameSource],
        *,
        policies: Mapping[str, Policy] | None = None,
        cohort: Cohort | None = None,
    ) -> None:
        super().__init__(sources, cohort=cohort)
        self._frames = dict(sources)
        self._policies = dict(policies or {})

    def training_links(self) -> list[SiteLink]:
        return [SourceLink(self._frames[s], self._policies.get(s, Policy())) for s in self.sites]


class GatedFederation(InProcessFederation):
    """In-process sites behind the node's threshold rules (:func:`check_disclosure` under
    ``policy``, the default one unless given). It has no training links, so a training run
    goes through the federation's own sums, as over HTTP."""

    def __init__(
        self, sources: Mapping[str, DataFrameSource], *, policy: Policy | None = None
    ) -> None:
        super().__init__(sources)
        self.policy = policy or Policy()

    def _gate(self, disclosure: Disclosure) -> None:
        check_disclosure(self.policy, "train", "train", disclosure)
