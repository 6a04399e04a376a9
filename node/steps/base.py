"""How a step handler gets its rows and what it returns.

A handler receives its step request and a :class:`FrameSource`, asks it for a frame of
exactly the variables it needs (cohort and visit already applied), and returns the result
together with the :class:`~schemas.steps.base.Disclosure` the privacy gate checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.cohort import Cohort
from schemas.steps.base import Disclosure, StepBase, StepResult


class FrameSource(Protocol):
    """The node's rows, as frames.

    ``frame`` returns one row per person at ``visit`` (person-level variables joined in)
    that satisfies ``cohort``, indexed by the person's internal integer ``row_id`` (never
    the person id), with one column per requested variable: float64 for numeric, integer
    and binary variables (NaN = missing), pandas ``Categorical`` with the dictionary's
    categories (first = reference) for categorical ones, and the pseudo-variable ``site``
    as a categorical with the one category of this node's site id. No rows are dropped
    for missing values: complete-case handling is the step's job. ``split_salt`` is the
    site's secret that makes training splits unpredictable (:mod:`schemas.models.split`).
    """

    @property
    def site(self) -> str: ...

    @property
    def split_salt(self) -> bytes:
        """This site's secret for training splits (empty: none)."""
        ...

    def frame(
        self, variables: Sequence[str], visit: str, cohort: Cohort | None
    ) -> pd.DataFrame: ...


Rows = npt.NDArray[np.int64]
Use = tuple[str, Rows]
"""A variable and the rows whose values of it a result sums over; ``""`` (:data:`COUNTS`)
for rows only counted (the rows read, the rows used)."""
COUNTS = ""


@dataclass(frozen=True)
class Intervals:
    """A histogram's edges and the values it counted, for the node's memory of released
    intervals (:mod:`node.intervals`)."""

    variable: str
    edges: tuple[float, ...]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Computed:
    """A step's result, what it discloses, and every (variable, rows) a number in the
    result is computed from (the differencing guard checks each)."""

    result: StepResult
    disclosure: Disclosure
    used: tuple[Use, ...] = field(default=())
    intervals: Intervals | None = None


Handler = Callable[[StepBase, FrameSource], Computed]
