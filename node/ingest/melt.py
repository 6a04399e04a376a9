"""Turning one validated chunk of a flat file into the store's LONG observation rows.

Columnar: each variable's present cells are picked with a mask and its rows are built
from numpy arrays (plain Python strings, not pandas' Arrow strings, which the database
drivers would convert back one cell at a time). A person-level variable is stored once
per person under :data:`~node.store.tables.PERSON_LEVEL`; a file may repeat it on each
of a person's rows, but only with the same value (checked against the first value the
file gave, across chunks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from node.cdm_variables.scales import GIVEN_TOTALS, given_code
from node.ingest.problems import Problem, Problems
from node.store.tables import PERSON_LEVEL
from schemas.cdm import LONG_COLUMNS

PersonValues = dict[str, dict[str, object]]
"""Person-level variable -> person -> the first value the file gave."""


def _person_level(
    file: str,
    code: str,
    pids: np.ndarray,
    vals: np.ndarray,
    rows: np.ndarray,
    first: dict[str, object],
    problems: Problems,
) -> np.ndarray:
    """Which of a person-level variable's cells to store (the first of each person not
    stored by an earlier chunk); a problem for each cell that differs from the first."""
    listed = pids.tolist()
    unseen = np.array([p not in first for p in listed], dtype=bool)
    new = unseen & ~pd.Series(pids, dtype=object).duplicated().to_numpy()
    first.update(zip(pids[new].tolist(), vals[new].tolist(), strict=True))
    reference = np.array([first[p] for p in listed], dtype=object)
    differs = np.flatnonzero(reference != vals)
    for i in differs:
        problems.add(
            Problem(
                file,
                int(rows[i]),
                code,
                str(vals[i]),
                f"person-level variable given twice with different values for person {pids[i]}",
            )
        )
    return new


def to_long(
    file: str,
    pids: np.ndarray,
    visits: np.ndarray,
    parsed: dict[str, pd.Series],
    variables: list[str],
    person_level: set[str],
    person_values: PersonValues,
    first_row: int,
    problems: Problems,
) -> pd.DataFrame:
    """LONG rows (:data:`~schemas.cdm.LONG_COLUMNS`, object columns) of one chunk, one
    variable after another (the store's key order), missing cells left out."""
    columns: dict[str, list[np.ndarray]] = {c: [] for c in LONG_COLUMNS}
    for code in variables:
        col = parsed[code]
        present = np.flatnonzero(col.notna().to_numpy())
        if not len(present):
            continue
        is_text = not pd.api.types.is_numeric_dtype(col)
        vals = col.to_numpy(dtype=object if is_text else np.float64)[present]
        ids = pids[present]
        if code in person_level:
            keep = _person_level(
                file,
                code,
                ids,
                vals,
                first_row + present,
                person_values.setdefault(code, {}),
                problems,
            )
            ids, vals = ids[keep], vals[keep]
            labels = np.full(len(ids), PERSON_LEVEL, dtype=object)
        else:
            labels = visits[present]
        stored_as = given_code(code) if code in GIVEN_TOTALS else code
        columns["person_id"].append(ids)
        columns["visit"].append(labels)
        columns["variable"].append(np.full(len(ids), stored_as, dtype=object))
        none = np.full(len(ids), None, dtype=object)
        columns["value_num"].append(none if is_text else vals)
        columns["value_text"].append(vals if is_text else none)
    if not columns["person_id"]:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    return pd.DataFrame(
        {c: pd.Series(np.concatenate(parts), dtype=object) for c, parts in columns.items()}
    )
