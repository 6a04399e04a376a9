"""Base of every computation step: what the coordinator asks a node to compute.

A step names the rows (``cohort``, ``visit``) and the computation. Its result is a
``StepResult``; additive results (counts, sums, cross-products, scores) can be summed
across sites field by field, which is what secure aggregation does without seeing the
per-site values. Concrete steps live in sibling modules and are collected in
``schemas.steps.registry``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.cohort import Cohort


class StepBase(BaseModel):
    """Fields every step request carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str
    cohort: Cohort | None = None
    visit: str = "baseline"


class StepResult(BaseModel):
    """Base of every step result."""

    model_config = ConfigDict(extra="forbid")


class Disclosure(BaseModel):
    """What a step result reveals, stated by the node's step code for the privacy gate.

    ``rows``: the rows the result is computed from (cohort size after complete cases);
    ``cells``: every count that leaves (contingency cells, per-group n, histogram bins);
    ``parameters``: number of model parameters (design columns) when the step fits a model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    cells: tuple[int, ...] = ()
    parameters: int | None = None
