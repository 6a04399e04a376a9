"""What a training run's rounds produce, as plain data (it crosses a process boundary in
simulation and deployment): the history, the chosen weights, the test sums over sites and,
when asked, each site's own test and local-only results; or the error that ended the run
(:func:`error_record`, raised again by the waiting process with :func:`raise_recorded`).
In deployment the ServerApp writes it next to the run's plan (:func:`outcome_path`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from coordinator.federation.failures import SiteFailure, SitesFailed
from schemas.errors import ErrorCode, FedpsyError, known_code
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
    federation's :class:`~coordinator.federation.base.PrivacyTally` of that run)."""

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


def outcome_path(plan_path: Path) -> Path:
    """Where the ServerApp writes the outcome of the run whose plan is ``plan_path``."""
    return plan_path.with_name(plan_path.name + ".outcome.json")


def error_record(exc: BaseException) -> dict[str, Any]:
    """The error that ended a run as plain data: the first fedpsy error in its chain, with
    each failing site's code and detail (``failures``) or the error's ``extra``."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, FedpsyError):
        seen = seen.__cause__ or seen.__context__
    if isinstance(seen, SitesFailed):
        return {
            "code": seen.code,
            "detail": seen.message,
            "failures": {s: [f.code, f.detail] for s, f in seen.failures.items()},
        }
    if isinstance(seen, FedpsyError):
        return {"code": seen.code, "detail": seen.detail or seen.message, "extra": seen.extra}
    return {"code": ErrorCode.TRAINING_FAILED.value, "detail": f"{type(exc).__name__}: {exc}"}


def raise_recorded(error: Mapping[str, Any], fallback: ErrorCode) -> NoReturn:
    """Raise the error :func:`error_record` recorded (``fallback``: the code of an
    unknown one)."""
    failures = error.get("failures")
    if failures:
        raise SitesFailed({s: SiteFailure(str(c), str(d)) for s, (c, d) in failures.items()})
    raise FedpsyError(
        str(error.get("detail", "")),
        code=known_code(error.get("code", fallback)) or fallback,
        extra=dict(error.get("extra") or {}),
    )


__all__ = [
    "Outcome",
    "Protection",
    "RoundStats",
    "error_record",
    "outcome_path",
    "raise_recorded",
]
