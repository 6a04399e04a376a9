"""Public levels of a grouping variable and each row's level code.

A categorical variable's levels are its dictionary categories; a binary (0/1) variable's
are ``["0", "1"]``; any other variable needs its levels given in the request. Levels are
public (the same at every site), so per-level results line up when summed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.cohort import label
from schemas.errors import ErrorCode, FedpsyError

MISSING = -1  # the row's value is missing
OTHER = -2  # the row's value is not one of the levels asked for


def is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype)


def levels_of(column: pd.Series, variable: str, given: list[str] | None) -> list[str]:
    """The levels of ``column`` (named ``variable``): ``given`` or the public default."""
    if given is not None:
        if len(set(given)) != len(given):
            raise FedpsyError(
                f"levels of {variable!r} repeat a label", code=ErrorCode.REQUEST_INVALID
            )
        return list(given)
    if is_categorical(column):
        return [str(c) for c in column.cat.categories]
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    present = values[~np.isnan(values)]
    if np.all((present == 0.0) | (present == 1.0)):
        return ["0", "1"]
    raise FedpsyError(
        f"variable {variable!r} is neither categorical nor binary: give its levels in the request",
        code=ErrorCode.REQUEST_INVALID,
    )


def codes_of(column: pd.Series, levels: list[str]) -> npt.NDArray[np.int64]:
    """Per row: the index of its level, :data:`MISSING` or :data:`OTHER`."""
    position = {lv: i for i, lv in enumerate(levels)}
    if is_categorical(column):
        lookup = np.array(
            [position.get(str(c), OTHER) for c in column.cat.categories], dtype=np.int64
        )
        raw = column.cat.codes.to_numpy()
        out = np.full(len(column), MISSING, dtype=np.int64)
        present = raw >= 0
        out[present] = lookup[raw[present]]
        return out
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.full(len(values), MISSING, dtype=np.int64)
    present = ~np.isnan(values)
    distinct, inverse = np.unique(values[present], return_inverse=True)
    lookup = np.array([position.get(label(float(v)), OTHER) for v in distinct], dtype=np.int64)
    out[present] = lookup[inverse] if len(distinct) else OTHER
    return out


def numeric_values(frame: pd.DataFrame, variables: list[str]) -> npt.NDArray[np.float64]:
    """The columns ``variables`` as a float64 matrix (a categorical one is an error)."""
    for v in variables:
        if is_categorical(frame[v]):
            raise FedpsyError(
                f"variable {v!r} is categorical; this analysis needs a numeric variable",
                code=ErrorCode.REQUEST_INVALID,
            )
    if not variables:
        return np.zeros((len(frame), 0))
    return np.column_stack(
        [frame[v].to_numpy(dtype=np.float64, na_value=np.nan) for v in variables]
    )
