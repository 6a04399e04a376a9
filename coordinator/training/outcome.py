"""What a training run's rounds produce, as plain data (it crosses a process boundary in
deployment): the history, the chosen weights, the test sums over sites and, when asked,
each site's own test and local-only results."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.secagg.wire import DpRelease
from schemas.steps.train import TrainResult, TrainSumResult


class RoundStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    round: int
    train_loss: float
    val_loss: float | None
    seconds: float
    bytes_sent: int
    bytes_received: int


class Protection(BaseModel):
    """What protected the sites' answers in a run carried over the grid (the
    federation's :class:`~coordinator.federation.PrivacyTally` of that run)."""

    model_config = ConfigDict(extra="forbid")

    secure: int = 0
    clear: int = 0
    dp: dict[str, list[DpRelease]] = Field(default_factory=dict)


class Outcome(BaseModel):
    """The ServerApp's answer; ``error`` set (code, detail, sites) when the run failed."""

    model_config = ConfigDict(extra="forbid")

    history: list[RoundStats] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=list)
    best_round: int = 0
    stopped_early: bool = False
    edges: list[float] = Field(default_factory=list)
    pooled: TrainSumResult | None = None
    test: dict[str, TrainResult] = Field(default_factory=dict)
    local: dict[str, TrainResult] = Field(default_factory=dict)
    error: dict[str, object] | None = None
    protection: Protection | None = None


__all__ = ["Outcome", "Protection", "RoundStats"]
