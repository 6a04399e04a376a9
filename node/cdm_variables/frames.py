"""Shared shapes for the derivations: input checks, wide pivots, long output rows.

Every derivation reads the CDM tables as pandas frames and returns values keyed by
``(person_id, visit)``; :func:`long_rows` turns those into the observation-shaped LONG rows
``(person_id, visit, variable, value_num, value_text)`` the store writes, dropping missing
values (missing = absent). Person-level values use the visit label
:data:`node.store.tables.PERSON_LEVEL`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from node.store.tables import PERSON_LEVEL
from schemas import cdm
from schemas.errors import BadInput

logger = logging.getLogger(__name__)

BASELINE = "baseline"
"""Visit label of the index visit (day 0 by definition of the CDM)."""

OUTPUT_COLUMNS = cdm.LONG_COLUMNS
"""Columns of the LONG frame every derivation returns (the store's observation rows)."""

FRAME_TABLES: Mapping[str, cdm.CdmTable] = {
    "persons": cdm.PERSON,
    "visits": cdm.VISIT,
    "observations": cdm.OBSERVATIONS,
    "drugs": cdm.DRUG_EXPOSURE,
    "mrs": cdm.MRS_MEASURE,
    "events": cdm.EVENT,
}
"""The CDM table each input frame of :func:`node.cdm_variables.derive_all` is read from."""

INPUT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    frame: table.store_columns for frame, table in FRAME_TABLES.items()
}
"""The CDM columns each input frame must have: its table's store columns (observations as
LONG rows)."""


def require_columns(frame: pd.DataFrame, table: str) -> None:
    """Raise :class:`BadInput` naming the columns ``frame`` lacks for CDM table ``table``."""
    missing = [c for c in INPUT_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise BadInput(
            f"the {table} frame lacks the column(s) {', '.join(missing)}; "
            f"give it the CDM columns {', '.join(INPUT_COLUMNS[table])}"
        )


def as_float(values: pd.Series) -> pd.Series:
    """``values`` as float64 (None, empty and non-numeric become NaN)."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def wide(long: pd.DataFrame, variables: Sequence[str], *, value: str = "value_num") -> pd.DataFrame:
    """Pivot LONG rows to one row per ``(person_id, visit)`` with one column per variable.

    Only rows whose ``variable`` is in ``variables`` are used; a key with none of them gets
    no row. A cell with no value is NaN. Built with integer codes and one numpy scatter,
    so it scales to tens of millions of rows.
    """
    rows = long.loc[long["variable"].isin(variables)]
    columns = ["person_id", "visit", *variables]
    if rows.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64" if c in variables else "str") for c in columns}
        )
    person_codes, person_ids = pd.factorize(rows["person_id"])
    visit_codes, visit_labels = pd.factorize(rows["visit"])
    key = person_codes.astype(np.int64) * len(visit_labels) + visit_codes
    row_codes, keys = pd.factorize(key)
    variable_codes, variable_names = pd.factorize(rows["variable"])
    position = {name: i for i, name in enumerate(variables)}
    column_codes = np.array([position[n] for n in variable_names], dtype=np.intp)[variable_codes]
    matrix = np.full((len(keys), len(variables)), np.nan)
    matrix[row_codes, column_codes] = as_float(rows[value]).to_numpy()
    key_values = np.asarray(keys, dtype=np.int64)
    out = pd.DataFrame(matrix, columns=list(variables))
    out.insert(0, "visit", np.asarray(visit_labels)[key_values % len(visit_labels)])
    out.insert(0, "person_id", np.asarray(person_ids)[key_values // len(visit_labels)])
    return out


def visit_days(visits: pd.DataFrame) -> pd.DataFrame:
    """``(person_id, visit, day)`` of every visit; the baseline visit is day 0 when unset.

    Other visits with an unknown day keep NaN.
    """
    out = pd.DataFrame(
        {
            "person_id": visits["person_id"].to_numpy(),
            "visit": visits["label"].to_numpy(),
            "day": as_float(visits["day"]).to_numpy(),
        }
    )
    unset_baseline = (out["visit"] == BASELINE) & out["day"].isna()
    out.loc[unset_baseline, "day"] = 0.0
    return out


def last_visit_day(days: pd.DataFrame) -> pd.Series:
    """The latest known visit day of each person (index person_id), from :func:`visit_days`."""
    known = days.loc[days["day"].notna()]
    return known.groupby("person_id", sort=False)["day"].max()


def long_rows(
    frame: pd.DataFrame,
    numeric: Sequence[str] = (),
    text: Sequence[str] = (),
    *,
    visit: str | None = None,
) -> pd.DataFrame:
    """LONG rows for the ``numeric`` and ``text`` columns of ``frame``, missing values dropped.

    ``frame`` has ``person_id`` and (unless ``visit`` gives one label for all rows) ``visit``.
    """
    person = frame["person_id"].to_numpy()
    visits = np.full(len(frame), visit, dtype=object) if visit else frame["visit"].to_numpy()
    parts = []
    for column in [*numeric, *text]:
        values = frame[column]
        keep = values.notna().to_numpy()
        is_text = column in text
        parts.append(
            pd.DataFrame(
                {
                    "person_id": person[keep],
                    "visit": visits[keep],
                    "variable": column,
                    "value_num": np.nan if is_text else as_float(values[keep]).to_numpy(),
                    "value_text": values[keep].astype(str).to_numpy(dtype=object)
                    if is_text
                    else None,
                }
            )
        )
    return concat_long(parts)


def concat_long(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate LONG frames into one with the output dtypes (value_text object/None)."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_long()
    out = pd.concat(parts, ignore_index=True)
    text = out["value_text"].astype(object)
    out["value_text"] = text.where(text.notna(), None)
    out["value_num"] = out["value_num"].astype("float64")
    return out.loc[:, list(OUTPUT_COLUMNS)]


def empty_long() -> pd.DataFrame:
    """A LONG frame with no rows and the output dtypes."""
    return pd.DataFrame(
        {
            "person_id": pd.Series(dtype="str"),
            "visit": pd.Series(dtype="str"),
            "variable": pd.Series(dtype="str"),
            "value_num": pd.Series(dtype="float64"),
            "value_text": pd.Series(dtype=object),
        }
    )


__all__ = [
    "BASELINE",
    "FRAME_TABLES",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "PERSON_LEVEL",
    "as_float",
    "concat_long",
    "empty_long",
    "last_visit_day",
    "long_rows",
    "require_columns",
    "visit_days",
    "wide",
]
