"""Evaluate a cohort (``schemas.cohort``) on a frame of the node's rows.

Semantics: categorical columns compare as strings (the request's value is turned into its
label: ``1`` and ``1.0`` both become ``"1"``); numeric columns compare as numbers. A missing
value satisfies only ``is_null``: every other operator — ``!=`` and ``not_in`` included —
is False on a missing value, as in SQL. ``<``, ``<=``, ``>``, ``>=`` on a categorical
variable, or a text value compared with a numeric variable, are ``request_invalid`` errors
naming the variable; a variable the frame does not hold is ``unknown_variable``.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.cohort import All, Any_, Cohort, Condition, Scalar, label
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def cohort_mask(frame: pd.DataFrame, cohort: Cohort | None) -> pd.Series:
    """Which rows of ``frame`` satisfy ``cohort`` (all rows when it is None)."""
    mask = np.ones(len(frame), dtype=bool) if cohort is None else _node(frame, cohort)
    return pd.Series(mask, index=frame.index, dtype=bool)


def _node(frame: pd.DataFrame, node: Condition | All | Any_) -> Mask:
    if isinstance(node, All):
        mask = np.ones(len(frame), dtype=bool)
        for member in node.all:
            mask &= _node(frame, member)
        return mask
    if isinstance(node, Any_):
        mask = np.zeros(len(frame), dtype=bool)
        for member in node.any:
            mask |= _node(frame, member)
        return mask
    return _condition(frame, node)


def _condition(frame: pd.DataFrame, cond: Condition) -> Mask:
    if cond.var not in frame.columns:
        raise FedpsyError(
            f"cohort condition on {cond.var!r}: no such variable", code=ErrorCode.UNKNOWN_VARIABLE
        )
    column = frame[cond.var]
    present = column.notna().to_numpy()
    if cond.op == "is_null":
        return ~present
    if cond.op == "not_null":
        return present
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        return present & _categorical(column, cond)
    return present & _numeric(column, cond)


def _categorical(column: pd.Series, cond: Condition) -> Mask:
    if cond.op in _ORDER:
        raise FedpsyError(
            f"cohort condition on {cond.var!r}: {cond.op} cannot compare a categorical "
            "variable; use ==, !=, in or not_in",
            code=ErrorCode.REQUEST_INVALID,
        )
    labels = column.astype(object).map(lambda v: None if pd.isna(v) else str(v))
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    wanted = {label(v) for v in values if v is not None}
    hit = labels.isin(wanted).to_numpy(dtype=bool)
    return ~hit if cond.op in ("!=", "not_in") else hit


def _number(cond: Condition, value: Scalar) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise FedpsyError(
                f"cohort condition on {cond.var!r}: the variable is numeric but the value is text",
                code=ErrorCode.REQUEST_INVALID,
            ) from None
    return float(value)


def _numeric(column: pd.Series, cond: Condition) -> Mask:
    x = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if cond.op in ("in", "not_in"):
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        wanted = np.array([_number(cond, v) for v in values if v is not None])
        hit = np.isin(x, wanted)
        return ~hit if cond.op == "not_in" else hit
    assert cond.value is not None and not isinstance(cond.value, list)
    v = _number(cond, cond.value)
    with np.errstate(invalid="ignore"):
        if cond.op == "==":
            return np.asarray(x == v, dtype=bool)
        if cond.op == "!=":
            return np.asarray(x != v, dtype=bool)
        return np.asarray(_ORDER[cond.op](x, v), dtype=bool)
