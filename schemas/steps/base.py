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

    Every field describes the rows the step actually used (after the cohort, complete
    cases and transforms), never the rows it read:

    ``rows``: the rows the result is computed from;
    ``cells``: every count that leaves (contingency cells, per-group n, histogram bins,
    counts of each value of a two-valued variable, outcome cells of a model, exits from a
    risk set between reported times);
    ``dropped``: rows of the cohort the step read and left out without counting them as
    missing (at levels the request did not ask for): their count follows from the others,
    so it is a cell;
    ``parameters``: number of model parameters (design columns) when the step fits a model;
    ``support``: per non-constant design column, the rows off its most common value;
    ``leverage``: the largest hat value of the step's design at this site;
    ``dominance``: per released sum of magnitudes, ``(total − two largest contributions) /
    largest contribution`` of the squared deviations (the p%-rule's ratio);
    ``split``: for a training phase on held-out rows, its rows, positives and negatives.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    cells: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    parameters: int | None = None
    support: tuple[int, ...] = ()
    leverage: float | None = None
    dominance: tuple[float, ...] = ()
    split: tuple[int, ...] = ()
