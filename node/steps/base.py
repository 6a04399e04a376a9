"""How a step handler gets its rows and what it returns.

A handler receives its step request and a :class:`~node.data.source.FrameSource`, asks it
for a frame of exactly the variables it needs (cohort and visit already applied), and
returns the result together with the :class:`~schemas.steps.base.Disclosure` the privacy
gate checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from node.data.source import FrameSource
from schemas.steps.base import Disclosure, StepBase, StepResult

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
