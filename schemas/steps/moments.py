"""The moments step: counts, centered sums and centered cross-products, per group.

Exact federated means, variances and correlations take two rounds (see METHODS.md,
"Moments"): round one sums ``n`` and ``Σx`` to get the global mean ``m``; round two sums
``Σ(x − m)`` and ``Σ(x − m)(y − m)`` about that mean. Keeping ``Σ(x − m)`` (zero up to
rounding) lets the coordinator apply the corrected two-pass formula
``Σ(x − m)² − (Σ(x − m))² / n`` (Chan, Golub & LeVeque, "Algorithms for computing the
sample variance", The American Statistician 37(3), 1983), which is exact where one round of
raw ``Σx²`` loses every digit when ``|mean| ≫ sd``. All fields are additive.

Skewness and kurtosis take a third round about the exact pooled mean, with the values
divided by the pooled standard deviation (``higher`` with ``scale``): ``Σz³`` and ``Σz⁴``
of ``z = (x − m)/s`` are of the order of ``n`` whatever the variable's unit, so they stay
within the range and the precision of secure aggregation's fixed point.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.steps.base import StepBase, StepResult

Scale = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class MomentsStep(StepBase):
    """Moments of ``variables``, optionally per level of ``group``.

    ``complete_cases``: drop a row missing any variable (or the group) — correlation,
    t-test; otherwise each variable uses its own non-missing rows — summary.
    ``levels``: the group's levels (strings); default: the group's categories, or
    ``["0", "1"]`` for a binary group. Rows of other levels are left out.
    ``center``: per group, per variable, the value sums are taken about (default 0).
    ``products``: also return ``Σ(x − c)²`` and, with complete cases, the matrix
    ``Σ(x − c)(y − c)ᵀ``.
    ``scale``: per group, per variable, a positive number every deviation is divided by
    before it is summed (default 1): the sums are then of ``z = (x − c)/s``.
    ``higher``: variables (of ``variables``) whose ``Σz³`` and ``Σz⁴`` are also returned
    (skewness and kurtosis).
    """

    step: Literal["moments"] = "moments"
    variables: list[str] = Field(min_length=1)
    complete_cases: bool = True
    group: str | None = None
    levels: list[str] | None = None
    center: list[list[float]] | None = None
    scale: list[list[Scale]] | None = None
    products: bool = False
    higher: list[str] = Field(default_factory=list)


class MomentsResult(StepResult):
    """Per group ``g`` (one group when ungrouped) and variable ``v``.

    ``total``: cohort rows at the visit; ``missing``: rows dropped for a missing value
    (complete cases: any variable or the group; per variable: the group only — a
    variable's own missing count is ``total − missing − Σ_g n[g][v]`` when ungrouped);
    ``n[g][v]``: rows used; ``sums[g][v] = Σ(x − c)``; ``squares[g][v] = Σ(x − c)²``;
    ``cross[g][v][w] = Σ(x_v − c_v)(x_w − c_w)`` (complete cases with ``products``);
    ``cubes[g][h] = Σz³`` and ``fourths[g][h] = Σz⁴`` of the variables ``h`` of ``higher``
    in its order. With ``scale``
    every sum is of ``z = (x − c)/s`` instead of ``x − c``.
    """

    levels: list[str] | None
    total: int
    missing: int
    n: list[list[int]]
    sums: list[list[float]]
    squares: list[list[float]]
    cross: list[list[list[float]]]
    cubes: list[list[float]] = Field(default_factory=list)
    fourths: list[list[float]] = Field(default_factory=list)
