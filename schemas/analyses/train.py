"""``train``: a predictive model trained across sites with Flower, rows never leaving.

Request: ``model`` (``logistic`` or ``mlp``), ``formula`` (binary 0/1 outcome),
``strategy`` (``fedavg`` or ``fedprox``), ``rounds`` (most rounds; training stops early
when the federated validation loss has not improved for ``patience`` rounds),
``local_epochs``, ``test_fraction`` (of each site's rows held out for scoring; 0 scores
on the training rows), ``seed`` (the split and the initial weights), plus ``cohort`` and
``visit``; optional ``hidden`` units (mlp), ``learning_rate``, ``batch_size``, ``l2``,
``proximal_mu`` (fedprox), ``validation_fraction``, ``bins`` (the most score bins for
the pooled AUC), ``per_site`` (default true: each site's own test metrics and local-only
baseline; these leave each site in the clear, so with false every answer the coordinator
receives over HTTP is a secure sum), ``runtime`` (``federation``, the default: rounds
through the nodes' APIs, every model update a secure sum; ``superlink``: rounds on the
consortium's Flower SuperLink and the sites' SuperNodes, where the ServerApp receives each
site's update).

Result: ``metrics`` — ``auc`` (pooled over every site's test rows, from secure-summable
score histograms on bins as fine as every site's cell rule allows; ``auc_lower`` and
``auc_upper`` are the exact bounds those bins allow, ties within a bin counted against
and then for the model; ``auc`` is their midpoint, ``auc_error_bound`` half their width
and ``auc_bins`` the number of bins),
``accuracy`` (threshold 0.5), ``brier``, ``log_loss``, ``n`` and ``per_site`` (each
site's own ``n``, ``auc``, ``accuracy``, ``brier``); ``history`` (a row per round:
``round``, ``train_loss``, ``val_loss``, ``seconds``); ``coefficients`` (logistic, on the
original scale of the design, without standard errors); ``model_id`` (the coordinator's
model registry; ``GET /v1/models/{id}``); ``local_only`` (each site's model trained on
its own rows, scored on its test rows) and ``model`` (the trained weights and the
standardization they need).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import Coefficient, FormulaRequest
from schemas.models.layout import ModelSpec


class TrainRequest(FormulaRequest):
    analysis: Literal["train"] = "train"
    model: Literal["logistic", "mlp"] = "logistic"
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    rounds: int = Field(20, ge=1, le=500)
    local_epochs: int = Field(1, ge=1, le=100)
    test_fraction: float = Field(0.25, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    hidden: int = Field(8, ge=1, le=256)
    learning_rate: float = Field(0.1, gt=0, le=10)
    batch_size: int = Field(32, ge=1, le=100_000)
    l2: float = Field(0.0, ge=0)
    proximal_mu: float = Field(0.1, ge=0)
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    patience: int = Field(5, ge=1)
    bins: int = Field(64, ge=1, le=1024)
    per_site: bool = True
    runtime: Literal["federation", "superlink"] = "federation"

    @model_validator(mode="after")
    def _strategy_options(self) -> Self:
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise ValueError("fedprox needs proximal_mu > 0")
        return self

    def spec(self) -> ModelSpec:
        return ModelSpec(kind=self.model, hidden=self.hidden)


class SiteMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    auc: float | None
    accuracy: float | None
    brier: float | None


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    auc: float | None
    auc_error_bound: float
    auc_bins: int
    auc_lower: float | None = None
    auc_upper: float | None = None
    accuracy: float | None
    brier: float | None
    log_loss: float | None
    per_site: dict[str, SiteMetrics]


class RoundRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    round: int
    train_loss: float
    val_loss: float | None
    seconds: float


class TrainedModel(BaseModel):
    """Everything needed to score new rows: the design and the weights."""

    model_config = ConfigDict(extra="forbid")

    spec: ModelSpec
    formula: str
    columns: list[str]
    categories: dict[str, list[str]]
    center: list[float]
    scale: list[float]
    weights: list[float]


class TrainingResult(AnalysisResult):
    formula: str
    model_kind: Literal["logistic", "mlp"]
    strategy: Literal["fedavg", "fedprox"]
    metrics: Metrics
    history: list[RoundRow]
    best_round: int
    stopped_early: bool
    coefficients: list[Coefficient]
    model_id: str
    app_hash: str
    n: int
    missing: int
    local_only: dict[str, SiteMetrics]
    model: TrainedModel


__all__ = [
    "Metrics",
    "RoundRow",
    "SiteMetrics",
    "TrainRequest",
    "TrainedModel",
    "TrainingResult",
]
