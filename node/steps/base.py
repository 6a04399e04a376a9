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

    def domain(self, variables: Sequence[str]) -> pd.DataFrame | None:
        """A probe frame over the variables' declared ranges (:mod:`node.data.domain`), or
        None for a source without a dictionary."""
        ...


Rows = npt.NDArray[np.int64]
Use = tuple[str, Rows]
"""A variable and the rows whose values of it a result sums over, or :data:`READ` /
:data:`USED` for rows a result counts: the rows it read (its cohort at its visit; their
number is ``n + missing``) and the rows it used (``n``). The two are kept apart: they
differ by the rows missing a value, a count the result releases anyway."""
READ = ""
USED = "#used"  # never a variable code


@dataclass(frozen=True)
class Query:
    """Sums of ``variable`` over ``rows`` with the columns of ``weights`` as weights: what
    an answer reveals as linear combinations of one variable (:mod:`node.privacy.queries`)."""

    variable: str
    rows: Rows
    weights: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Intervals:
    """A histogram's edges and the values it counted, for the node's memory of released
    intervals (:mod:`node.privacy.intervals`)."""

    variable: str
    edges: tuple[float, ...]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Computed:
    """A step's result, what it discloses, every (variable, rows) a number in the result
    is computed from (the differencing guard checks each), and the weighted sums it
    releases (``queries``) or histogram counts (``intervals``) for the memories of
    :mod:`node.privacy.queries` and :mod:`node.privacy.intervals`."""

    result: StepResult
    disclosure: Disclosure
    used: tuple[Use, ...] = field(default=())
    intervals: Intervals | None = None
    queries: tuple[Query, ...] = field(default=())


Handler = Callable[[StepBase, FrameSource], Computed]
