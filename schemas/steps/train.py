"""The train step: one site's part of one round of federated model training.

The coordinator sends the model, the global weights and how to optimise; the site builds
the complete-case design of ``formula`` in the standardized basis ``z = (x − m) / s``
(``center``/``scale`` from the federated column moments, as in ``crossprod``), splits its
rows deterministically into train, validation and test (:mod:`schemas.models.split`) and,
by ``phase``:

- ``fit``: trains ``local_epochs`` passes from the global weights on its train rows and
  returns the new weights (FedAvg/FedProx local update) with the train loss;
- ``validate``: scores the global weights on its validation rows (early stopping);
- ``test``: scores the global weights on its test rows: loss, Brier and correct sums, its
  own AUC and, with ``edges`` (from 0 to 1, on the public grid of
  :func:`schemas.models.metrics.on_score_grid`), class histograms of the scores (the
  pooled AUC);
- ``local``: trains a model from the initial weights on its train rows alone and scores
  it on its test rows (the local-only baseline); no weights leave.

Every phase states its rows and the model's parameter count, so the privacy gate applies
the minimum rows for a model and the maximum parameters per row; histogram counts are
cells. ``app_hash`` names the training app the run comes from: a site only takes part in
runs of an app it approved.

``train_sum`` is the same work for the ``fit``, ``validate`` and ``test`` phases with a
result that is summed over sites (secure aggregation): the weights multiplied by the rows
they were fitted on, the rows, and the loss, Brier, correct and histogram sums. FedAvg is
then the secure sum of ``n_k · w_k`` divided by the secure sum of ``n_k`` (McMahan et al.,
AISTATS 2017), so no site's update is ever seen on its own (Bonawitz et al., CCS 2017).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.models.layout import ModelSpec
from schemas.models.metrics import on_score_grid
from schemas.steps.base import StepResult
from schemas.steps.design import BasisStep

Phase = Literal["fit", "validate", "test", "local"]


class TrainWork(BasisStep):
    """The fields of one site's work in one training round (see the module docstring)."""

    phase: Phase
    app_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    run_id: str = Field(min_length=1, max_length=64)
    round: int = Field(0, ge=0)
    model: ModelSpec
    weights: list[float] = Field(default_factory=list)
    local_epochs: int = Field(1, ge=1, le=1000)
    learning_rate: float = Field(0.1, gt=0, le=10)
    batch_size: int = Field(32, ge=1)
    l2: float = Field(0.0, ge=0)
    proximal_mu: float = Field(0.0, ge=0)
    seed: int = 0
    test_fraction: float = Field(0.25, ge=0, lt=1)
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    edges: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _phase_needs(self) -> Self:
        if self.phase in ("fit", "validate", "test") and not self.weights:
            raise ValueError(f"phase {self.phase!r} needs the global weights")
        if len(self.edges) == 1:
            raise ValueError("edges: give at least 2 bin edges, or none")
        if self.edges and (self.edges[0] != 0.0 or self.edges[-1] != 1.0):
            raise ValueError("edges: score bins run from 0 to 1")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges: must increase")
        off = [e for e in self.edges if not on_score_grid(e)]
        if off:
            raise ValueError(
                f"edges: {off[0]!r} is not on the public grid of score edges, so it could "
                "be aimed at one person's score"
            )
        return self


class TrainStep(TrainWork):
    """One site's work in one training round; its result is the site's own."""

    step: Literal["train"] = "train"


class TrainSumStep(TrainWork):
    """One site's work in one round, answered as a summable :class:`TrainSumResult`."""

    step: Literal["train_sum"] = "train_sum"

    @model_validator(mode="after")
    def _summable_phase(self) -> Self:
        if self.phase == "local":
            raise ValueError("phase 'local' is per site; send it as a 'train' step")
        return self

    def as_train(self) -> TrainStep:
        """The same work as a ``train`` step."""
        return TrainStep.model_validate({**self.model_dump(), "step": "train"})


class TrainResult(StepResult):
    """What one site returns for one phase.

    ``n``: rows the phase used (train rows for ``fit``, validation rows for ``validate``,
    test rows for ``test`` and ``local``); ``loss_sum``: summed cross-entropy over those
    rows; ``weights``: the updated weights (``fit`` only); ``brier_sum``, ``correct``
    (threshold 0.5), ``positives``, ``auc`` (this site's own) and ``hist_pos``/``hist_neg``
    (score counts per bin) for ``test`` and ``local``.
    """

    site: str
    phase: Phase
    n: int
    missing: int
    loss_sum: float
    weights: list[float] = Field(default_factory=list)
    brier_sum: float = 0.0
    correct: int = 0
    positives: int = 0
    auc: float | None = None
    hist_pos: list[int] = Field(default_factory=list)
    hist_neg: list[int] = Field(default_factory=list)


class TrainSumResult(StepResult):
    """A phase's sums, additive over sites (``phase`` is carried, equal everywhere).

    ``weighted``: ``n · weights`` (``fit`` only); the other fields as in
    :class:`TrainResult`, without the site's own AUC.
    """

    phase: Phase
    n: int
    missing: int
    loss_sum: float
    weighted: list[float] = Field(default_factory=list)
    brier_sum: float = 0.0
    correct: int = 0
    positives: int = 0
    hist_pos: list[int] = Field(default_factory=list)
    hist_neg: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, result: TrainResult) -> TrainSumResult:
        """The summable part of one site's result."""
        return cls(
            phase=result.phase,
            n=result.n,
            missing=result.missing,
            loss_sum=result.loss_sum,
            weighted=[result.n * w for w in result.weights],
            brier_sum=result.brier_sum,
            correct=result.correct,
            positives=result.positives,
            hist_pos=list(result.hist_pos),
            hist_neg=list(result.hist_neg),
        )

    def average(self) -> list[float]:
        """FedAvg: the summed weighted updates over the summed rows."""
        return [v / self.n for v in self.weighted]


__all__ = ["Phase", "TrainResult", "TrainStep", "TrainSumResult", "TrainSumStep", "TrainWork"]
