"""Transforms are judged on the dictionary's declared ranges, never on a site's rows.

A formula term that is not finite for some value (``log(x)`` at 0, ``sqrt(T - x)`` above
``T``, ``1/(age - 41)`` at 41) would drop exactly the rows holding such values, and
whether a step dropped rows — or was refused for dropping 1 to ``min_cell − 1`` of them —
would tell whether anyone in the cohort has such a value: a binary search on ``T`` finds a
person's value. So before reading any row the node evaluates the formula on a probe frame
spanning each variable's declared range (both ends, a fine grid, every whole number of an
integer range, every category, every pair of two variables' key points) and refuses
(``request_invalid``, a fault of the request that does not depend on the data) a term
that is not finite anywhere on it. A variable without a declared range is probed over
``±10⁶`` through zero, so ``log(x)`` needs a declared ``min`` above zero. Values the probe
could not foresee (a spike at a number between its grid points) are set to 0 in the design
(:func:`node.data.formula.build_design`): no row is ever dropped because of a transform.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.dictionary import Dictionary
from schemas.dictionary.model import Variable

logger = logging.getLogger(__name__)

GRID = 2001  # points spread over a declared range
WHOLE = 20000  # the whole numbers of a range up to this wide are probed one by one
CORNERS = 8  # variables whose range ends are combined in every way
KEY_POINTS = 121  # points per variable in the probe of pairs
PAIRED = 6  # numeric variables whose key points are probed pairwise
UNBOUNDED = 1e6


def _points(variable: Variable) -> npt.NDArray[np.float64]:
    low = float(variable.min) if variable.min is not None else -UNBOUNDED
    high = float(variable.max) if variable.max is not None else UNBOUNDED
    if variable.type == "binary":
        return np.array([0.0, 1.0])
    parts = [np.linspace(low, high, GRID), np.array([low, high])]
    if low < 0.0 < high:
        parts.append(np.array([0.0]))
    if high - low <= WHOLE:
        parts.append(np.arange(np.ceil(low), np.floor(high) + 1.0))
    if variable.min is None or variable.max is None:  # every order of magnitude, both signs
        powers = 10.0 ** np.arange(-6, 7)
        parts.extend([powers, -powers])
    return np.unique(np.concatenate(parts))


def _key_points(variable: Variable) -> npt.NDArray[np.float64]:
    """At most :data:`KEY_POINTS` points of the range: its whole numbers when there are
    that few, else an even spread; with both ends, and 0 inside the range."""
    points = _points(variable)
    whole = points[points == np.round(points)]
    if 0 < len(whole) <= KEY_POINTS:
        return np.unique(np.concatenate([whole, points[[0, -1]]]))
    return np.unique(points[np.linspace(0, len(points) - 1, KEY_POINTS).astype(int)])


def _pairs(numeric: list[Variable]) -> list[dict[str, float]]:
    """Every pair of numeric variables' key points together (a term such as
    ``sqrt(T − madrs + 1000·(age − 41)²)`` fails only where both take chosen values)."""
    rows: list[dict[str, float]] = []
    for a, b in itertools.combinations(numeric[:PAIRED], 2):
        for u, v in itertools.product(_key_points(a), _key_points(b)):
            rows.append({a.code: float(u), b.code: float(v)})
    return rows


def probe_frame(variables: Sequence[Variable]) -> pd.DataFrame:
    """Rows covering every variable's declared range: each variable's points, cycled
    against the others', every combination of the range ends of the first
    :data:`CORNERS` numeric variables, and every pair of numeric variables' key points."""
    columns: dict[str, list[object]] = {}
    numeric = [v for v in variables if v.type != "categorical"]
    points = {v.code: _points(v) for v in numeric}
    length = max(
        [len(p) for p in points.values()] + [len(v.categories or ()) for v in variables] + [1]
    )
    corners = list(itertools.product(*([p[0], p[-1]] for p in list(points.values())[:CORNERS])))
    rng = np.random.default_rng(0)
    for v in variables:
        if v.type == "categorical":
            cats = list(v.categories or ("",))
            columns[v.code] = [cats[i % len(cats)] for i in range(length + len(corners))]
            continue
        values = points[v.code]
        cycled = np.resize(rng.permutation(values), length)
        cycled[: len(values)] = values
        corner = [
            c[list(points).index(v.code)] if list(points).index(v.code) < CORNERS else values[0]
            for c in corners
        ]
        columns[v.code] = [*cycled.tolist(), *corner]
    frame = pd.DataFrame(columns)
    paired = pd.DataFrame(_pairs(numeric))
    if len(paired):
        for v in variables:  # the other variables at their first point
            if v.code not in paired.columns:
                paired[v.code] = frame[v.code].iloc[0]
        frame = pd.concat([frame, paired[frame.columns]], ignore_index=True)
    for v in variables:
        if v.type == "categorical":
            frame[v.code] = pd.Categorical(frame[v.code], categories=list(v.categories or ("",)))
    return frame


def site_probe(dictionary: Dictionary, site: str, variables: Sequence[str]) -> pd.DataFrame:
    """The probe frame of ``variables`` of ``dictionary``; the pseudo-variable ``site``
    takes the one category of this node's site id."""
    codes = [c for c in dict.fromkeys(variables) if c != "site"]
    probe = probe_frame([dictionary.get(c) for c in codes])
    if "site" in variables:
        probe["site"] = pd.Categorical([site] * len(probe), categories=[site])
    return probe


__all__ = ["probe_frame", "site_probe"]
