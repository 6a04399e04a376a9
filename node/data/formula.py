"""Design matrices from a formula and a site's frame, the same columns at every site.

The frame comes from a :class:`~node.data.source.FrameSource`: categorical variables are
pandas ``Categorical`` with their dictionary categories (the first is the reference level),
binary and numeric variables float64. formulaic encodes a categorical from its declared
categories, not from the values present, so a site lacking a level still gets that level's
column (all zeros) and every site builds the same columns with formulaic's names
(``Intercept``, ``age``, ``sex[T.M]``). Binary variables stay plain numeric terms.

Rows missing any variable the formula names are dropped (complete cases) and counted in
``missing``. A transform never drops a row: the node refuses, before reading data, a term
that is not finite somewhere in its variables' declared ranges (:mod:`node.data.domain`), and a
value the probe could not foresee counts as 0. The coordinator may send back a column
list (``columns``), e.g. without a level absent from every site; the design keeps exactly
those columns in that order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
from formulaic import model_matrix

from node.data.splines import bs, lspline
from node.data.watch import note_rows
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import parse_formula

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float64]

_CONTEXT = {
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "lspline": lspline,
    "bs": bs,
}


@dataclass(frozen=True)
class Design:
    """A complete-case design: ``x`` (rows × columns), outcome ``y``, the row ids of its
    rows and of all rows of the frame it was built from (``total`` = ``n`` + ``missing``
    of them), the variables it was built from, and the rows dropped for a missing value
    (``missing``)."""

    x: Matrix
    y: Matrix
    columns: list[str]
    total: int
    missing: int
    rows: npt.NDArray[np.int64]
    read: npt.NDArray[np.int64]
    variables: tuple[str, ...] = ()

    def subset(self, positions: npt.NDArray[np.int64]) -> Design:
        """The design of the rows at ``positions`` (e.g. a training split's)."""
        return replace(self, x=self.x[positions], y=self.y[positions], rows=self.rows[positions])

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _recategorize(frame: pd.DataFrame, categories: Mapping[str, Sequence[str]]) -> None:
    for variable, levels in categories.items():
        if variable not in frame.columns:
            continue
        frame[variable] = pd.Categorical(
            frame[variable].astype(object), categories=[str(c) for c in levels]
        )


def build_design(
    formula: str,
    frame: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    strict: bool = False,
) -> Design:
    """The complete-case design of ``formula`` on ``frame``.

    ``categories`` replaces the levels of the named categorical variables (the coordinator
    sends every site id as the levels of ``site``); ``columns`` selects and orders the
    design columns. The outcome must be one numeric column. With ``strict`` (the probe of
    :mod:`node.data.domain`) a non-finite value is an error naming its term; otherwise it
    counts as 0.
    """
    parts = parse_formula(formula)
    variables = parts.variables
    data = frame.loc[:, variables].copy()
    if categories:
        _recategorize(data, categories)
    for name in variables:
        column = data[name]
        if not (
            isinstance(column.dtype, pd.CategoricalDtype)
            or pd.api.types.is_numeric_dtype(column.dtype)
        ):
            # formulaic would take the levels from the values present: different per site
            raise FedpsyError(
                f"variable {name!r} is text without dictionary categories; formulas need "
                "numeric, binary or categorical variables",
                code=ErrorCode.REQUEST_INVALID,
            )
    for name in parts.outcome:
        if isinstance(data[name].dtype, pd.CategoricalDtype):
            raise FedpsyError(
                f"formula {formula!r}: the outcome {name!r} is categorical; "
                "models need a numeric or binary outcome",
                code=ErrorCode.REQUEST_INVALID,
            )
    total = len(data)
    complete = data[data.notna().all(axis=1).to_numpy()]
    with np.errstate(all="ignore"):
        # na_action="ignore": a transform's non-finite values are handled below
        matrices = model_matrix(formula, complete, context=_CONTEXT, na_action="ignore")
    lhs = matrices.lhs
    rhs = matrices.rhs
    if lhs.shape[1] != 1:
        raise FedpsyError(
            f"formula {formula!r}: the outcome must be one numeric column, got {lhs.shape[1]}",
            code=ErrorCode.REQUEST_INVALID,
        )
    built = [str(c) for c in rhs.columns]
    if columns is not None:
        unknown = [c for c in columns if c not in built]
        if unknown:
            raise FedpsyError(
                f"formula {formula!r} has no design columns {unknown}; it has {built}",
                code=ErrorCode.REQUEST_INVALID,
            )
        rhs = rhs.loc[:, list(columns)]
        built = list(columns)
    x = np.asarray(rhs.to_numpy(dtype=np.float64), dtype=np.float64).reshape(
        len(complete), len(built)
    )
    y = np.asarray(lhs.to_numpy(dtype=np.float64), dtype=np.float64).reshape(len(complete))
    if strict:
        _check_finite(formula, [*built, *map(str, lhs.columns)], np.column_stack([x, y]))
    # never drop a row for a transform: what the probe could not foresee counts as 0
    x, y = (
        np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0),
        np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0),
    )
    rows = np.asarray(complete.index, dtype=np.int64)
    missing = total - int(x.shape[0])
    note_rows(int(x.shape[0]))
    logger.debug(
        "design %s: %d rows, %d missing, %d columns", formula, x.shape[0], missing, len(built)
    )
    return Design(
        x=np.ascontiguousarray(x),
        y=np.ascontiguousarray(y),
        columns=built,
        total=total,
        missing=missing,
        rows=rows,
        read=np.asarray(data.index, dtype=np.int64),
        variables=tuple(variables),
    )


def _check_finite(formula: str, names: list[str], values: Matrix) -> None:
    bad = [
        name for name, column in zip(names, values.T, strict=True) if not np.isfinite(column).all()
    ]
    if any(name.startswith("bs(") for name in bad):
        terms = dict.fromkeys(re.sub(r"\[\d+\]$", "", name) for name in bad)
        raise FedpsyError(
            f"formula {formula!r}: {', '.join(map(repr, terms))} is not defined for some values "
            "in the declared ranges of its variables (a B-spline is defined between its "
            "bounds only); set lower_bound and upper_bound to cover the declared min and max",
            code=ErrorCode.REQUEST_INVALID,
        )
    if bad:
        raise FedpsyError(
            f"formula {formula!r}: {', '.join(map(repr, bad))} is not finite for some values in "
            "the declared ranges of its variables (e.g. log of 0, a division by 0); change "
            "the transform (log1p, a shift) or declare a narrower min/max in the dictionary",
            code=ErrorCode.REQUEST_INVALID,
        )


__all__ = ["Design", "build_design"]
