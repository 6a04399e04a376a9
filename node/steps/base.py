"""How a step handler gets its rows and what it returns.

A handler receives its step request and a :class:`~node.data.source.FrameSource`, asks it
for a frame of exactly the variables it needs (cohort and visit already applied), and
returns the result together with the :class:`~schemas.steps.base.Disclosure` the privacy
gate checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from node.data.source import FrameSource
from schemas.steps.base import Disclosure, StepBase, StepResult

Rows = npt.NDArray[np.int64]
Bits = npt.NDArray[np.uint8]
Use = tuple[str, Rows]
"""A variable and the rows whose values of it a result sums over, or :data:`READ` /
:data:`USED` for rows a result counts: the rows it read (its cohort at its visit; their
number is ``n + missing``) and the rows it used (``n``). The two are kept apart: they
differ by the rows missing a value, a count the result releases anyway."""
READ = ""
USED = "#used"  # never a variable code


def to_bits(row_ids: Iterable[int]) -> Bits:
    """Rows as a packed bitset: bit ``i`` set when row id ``i`` is in it (the
    differencing guard's and the query memory's form of a set of rows)."""
    if isinstance(row_ids, np.ndarray):  # the steps' row ids: no element-wise iteration
        ids = row_ids.astype(np.int64, copy=False).ravel()
    else:
        ids = np.fromiter(row_ids, dtype=np.int64)
    if ids.size and int(ids.min()) < 0:
        raise ValueError("row ids are non-negative integers")
    flags = np.zeros(int(ids.max()) + 1 if ids.size else 0, dtype=bool)
    flags[ids] = True
    return np.packbits(flags)


@dataclass(frozen=True)
class Query:
    """Sums of ``variable`` over ``rows`` with the columns of ``weights`` as weights: what
    an answer reveals as linear combinations of one variable (:mod:`node.privacy.queries`)."""

    variable: str
    rows: Rows
    weights: npt.NDArray[np.float64]

    def packed_weights(self) -> bytes:
        """The weights as the query memory stores them (float32)."""
        return np.ascontiguousarray(self.weights, dtype=np.float32).tobytes()

    @cached_property
    def digest(self) -> str:
        """sha256 of the variable, the rows' bitset and the packed weights: equal answers
        have equal digests (taken once: a kept design's queries recur every round)."""
        packed = to_bits(self.rows).tobytes() + self.packed_weights()
        return hashlib.sha256(self.variable.encode() + packed).hexdigest()


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
