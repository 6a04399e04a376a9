"""The spline bases of formulas, from public knots and bounds only (:mod:`schemas.splines`).

formulaic calls these with a term's evaluated variable and the numbers written in the
formula; each returns its columns keyed ``1 … k``, which formulaic names ``term[1]`` …
(``lspline(x, [15, 25, 35])[1]``, as it names its own ``bs``). No value of a site's rows
enters a knot or a bound, so every site builds the same basis.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from formulaic.materializers import FactorValues
from scipy.interpolate import BSpline

from schemas.splines import b_spline, linear_spline

Vector = npt.NDArray[np.float64]


def _columns(columns: list[Vector]) -> FactorValues[dict[int, Vector]]:
    return FactorValues(
        {k: column for k, column in enumerate(columns, start=1)},
        kind="numerical",
        spans_intercept=False,
        format="{name}[{field}]",
        encoded=False,
    )


def lspline(x: object, knots: object) -> FactorValues[dict[int, Vector]]:
    """The linear spline basis of R's ``lspline(x, knots, marginal = FALSE)``: the columns
    ``min(x, k1)``, ``clip(x, k_{j−1}, k_j) − k_{j−1}`` and ``max(x, kK) − kK``, whose
    coefficients are the slopes within the segments (they sum to ``x``)."""
    k = linear_spline(list(np.asarray(knots, dtype=np.float64).reshape(-1)))
    v = np.asarray(x, dtype=np.float64)
    columns = [np.minimum(v, k[0])]
    columns.extend(np.clip(v, a, b) - a for a, b in itertools.pairwise(k))
    columns.append(np.maximum(v, k[-1]) - k[-1])
    return _columns(columns)


def bs(
    x: object,
    knots: object = None,
    lower_bound: object = None,
    upper_bound: object = None,
    degree: object = 3,
) -> FactorValues[dict[int, Vector]]:
    """The B-spline basis on ``[lower_bound, upper_bound]`` with interior ``knots``, without
    its first column (de Boor, *A Practical Guide to Splines*, 1978; evaluated by scipy).
    A value outside the bounds is NaN in every column: the node's probe of declared ranges
    refuses such a term, and a value it could not foresee counts as 0."""
    basis = b_spline(
        None if knots is None else [float(k) for k in np.asarray(knots).reshape(-1)],
        lower_bound,
        upper_bound,
        degree,
    )
    d = basis.degree
    t = np.concatenate([[basis.lower] * (d + 1), basis.knots, [basis.upper] * (d + 1)])
    v = np.asarray(x, dtype=np.float64)
    inside = (v >= basis.lower) & (v <= basis.upper)
    out = np.full((v.size, basis.columns + 1), np.nan)
    if inside.any():
        out[inside] = BSpline.design_matrix(v[inside], t, d).toarray()
    return _columns([out[:, j] for j in range(1, out.shape[1])])


__all__ = ["bs", "lspline"]
