"""The plan of one training run: everything the ServerApp needs, as plain data.

The coordinator makes it before any round from the request and the design's federated
column moments (:func:`coordinator.stats.regression.design_basis`: columns present at
some site, centers and scales for the standardized basis). In deployment the ServerApp
runs in another process and reads the plan from a JSON file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from coordinator.federation.base import Federation
from coordinator.stats.regression import design_basis
from coordinator.training.delivery import Delivery
from schemas.analyses.train import TrainRequest
from schemas.cohort import Cohort
from schemas.models.layout import ModelSpec, flatten, initial_weights
from schemas.steps.train import Phase, TrainStep


class TrainPlan(BaseModel):
    """A run's fixed settings (see :class:`schemas.analyses.train.TrainRequest`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    app_hash: str
    sites: list[str]
    formula: str
    categories: dict[str, list[str]]
    columns: list[str]
    center: list[float]
    scale: list[float]
    cohort: Cohort | None
    visit: str
    spec: ModelSpec
    strategy: Literal["fedavg", "fedprox"]
    rounds: int
    patience: int
    local_epochs: int
    learning_rate: float
    batch_size: int
    l2: float
    proximal_mu: float
    seed: int
    test_fraction: float
    validation_fraction: float
    bins: int
    per_site: bool = True
    n: int
    missing: int
    initial: list[float]
    round_timeout: float = 600.0
    delivery: Delivery | None = None

    def step(
        self, phase: Phase, weights: list[float], round: int = 0, edges: list[float] | None = None
    ) -> TrainStep:
        """The train step of ``phase`` with ``weights`` (every site gets the same)."""
        return TrainStep(
            phase=phase,
            app_hash=self.app_hash,
            run_id=self.run_id,
            round=round,
            model=self.spec,
            weights=weights,
            formula=self.formula,
            categories=self.categories,
            columns=self.columns,
            center=self.center,
            scale=self.scale,
            cohort=self.cohort,
            visit=self.visit,
            local_epochs=self.local_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            l2=self.l2,
            proximal_mu=self.proximal_mu if self.strategy == "fedprox" else 0.0,
            seed=self.seed,
            test_fraction=self.test_fraction,
            validation_fraction=self.validation_fraction,
            edges=edges or [],
        )


async def make_plan(
    request: TrainRequest, federation: Federation, *, run_id: str, app_hash: str
) -> TrainPlan:
    """The plan of ``request`` over ``federation``'s sites (one secure-summed round)."""
    basis = await design_basis(
        federation, request.formula, cohort=request.cohort, visit=request.visit
    )
    spec = request.spec()
    p = len(basis.columns)
    return TrainPlan(
        run_id=run_id,
        app_hash=app_hash,
        sites=list(federation.sites),
        formula=request.formula,
        categories=basis.categories,
        columns=basis.columns,
        center=[float(v) for v in basis.center],
        scale=[float(v) for v in basis.scale],
        cohort=request.cohort,
        visit=request.visit,
        spec=spec,
        strategy=request.strategy,
        rounds=request.rounds,
        patience=request.patience,
        local_epochs=request.local_epochs,
        learning_rate=request.learning_rate,
        batch_size=request.batch_size,
        l2=request.l2,
        proximal_mu=request.proximal_mu,
        seed=request.seed,
        test_fraction=request.test_fraction,
        validation_fraction=request.validation_fraction,
        bins=request.bins,
        per_site=request.per_site,
        n=basis.n,
        missing=basis.missing,
        initial=flatten(initial_weights(spec, p, request.seed)),
    )


__all__ = ["TrainPlan", "make_plan"]
