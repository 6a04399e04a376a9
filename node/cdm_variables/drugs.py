"""Drug classes, defined daily doses and chlorpromazine equivalents (the shipped DDD table).

The table ``node/cdm_variables/data/ddd.csv`` lists each drug (INN, lower case) with its class
(antipsychotic | antidepressant), WHO ATC code and oral defined daily dose (DDD) in mg,
from the WHO Collaborating Centre for Drug Statistics Methodology ATC/DDD Index.
Chlorpromazine equivalents follow the DDD method of Leucht, Samara, Heres & Davis (2016),
"Dose equivalents for antipsychotic drugs: the DDD method", Schizophr Bull 42 Suppl
1:S90–S94::

    cpz_eq_mg = daily_dose_mg / ddd_mg(drug) × 300      (chlorpromazine's DDD is 300 mg)

Only antipsychotics (clozapine included) have a chlorpromazine equivalent.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from importlib import resources

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ANTIPSYCHOTIC = "antipsychotic"
ANTIDEPRESSANT = "antidepressant"
CLOZAPINE = "clozapine"
CHLORPROMAZINE_DDD_MG = 300.0
"""Oral DDD of chlorpromazine, the reference of the DDD method (Leucht et al. 2016)."""


@functools.cache
def _table() -> pd.DataFrame:
    with resources.files("node.cdm_variables.data").joinpath("ddd.csv").open("r") as handle:
        table = pd.read_csv(
            handle, dtype={"drug": "str", "class": "str", "atc": "str", "ddd_mg": "float64"}
        )
    return table


def load_ddd_table() -> pd.DataFrame:
    """The shipped DDD table: columns ``drug``, ``class``, ``atc``, ``ddd_mg`` (a copy).

    Source: WHO Collaborating Centre for Drug Statistics Methodology, ATC/DDD Index (oral
    DDDs); used for chlorpromazine equivalents by the DDD method of Leucht et al. (2016),
    Schizophr Bull 42 Suppl 1:S90–S94.
    """
    return _table().copy()


@functools.cache
def _lookup() -> dict[str, tuple[str, float]]:
    table = _table()
    return {
        str(d): (str(c), float(m))
        for d, c, m in zip(table["drug"], table["class"], table["ddd_mg"], strict=True)
    }


def normalize_drug(name: str) -> str:
    """The table key of a drug name: stripped and lower-cased INN."""
    return name.strip().lower()


def drug_class(drug: str) -> str | None:
    """``antipsychotic`` or ``antidepressant`` for a drug of the table, else None."""
    entry = _lookup().get(normalize_drug(drug))
    return entry[0] if entry else None


def ddd_mg(drug: str) -> float | None:
    """The oral DDD (mg) of a drug of the table, else None."""
    entry = _lookup().get(normalize_drug(drug))
    return entry[1] if entry else None


def cpz_equivalent(drug: str, daily_dose_mg: float | None) -> float | None:
    """Chlorpromazine-equivalent dose (mg/day) of ``daily_dose_mg`` of ``drug``.

    None when the drug is not an antipsychotic of the table or the dose is missing.
    """
    entry = _lookup().get(normalize_drug(drug))
    if entry is None or entry[0] != ANTIPSYCHOTIC:
        return None
    if daily_dose_mg is None or math.isnan(daily_dose_mg):
        return None
    return float(daily_dose_mg) * CHLORPROMAZINE_DDD_MG / entry[1]


def add_drug_info(drugs: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``drugs`` with ``drug`` normalized and ``drug_class``, ``ddd_mg``, ``cpz_eq_mg``.

    Drugs not in the table get a missing class and DDD; non-antipsychotics and missing
    doses get a missing ``cpz_eq_mg``.
    """
    out = drugs.copy()
    names = out["drug"].astype("str").str.strip().str.lower()
    table = _table().set_index("drug")
    out["drug"] = names
    out["drug_class"] = names.map(table["class"])
    out["ddd_mg"] = names.map(table["ddd_mg"]).astype("float64")
    dose = pd.to_numeric(out["daily_dose_mg"], errors="coerce").astype("float64")
    cpz = dose * CHLORPROMAZINE_DDD_MG / out["ddd_mg"]
    out["cpz_eq_mg"] = cpz.where(out["drug_class"] == ANTIPSYCHOTIC, np.nan)
    return out


def add_cpz(drugs: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``drugs`` with the column ``cpz_eq_mg`` (vectorized :func:`cpz_equivalent`).

    The other columns are returned unchanged.
    """
    out = drugs.copy()
    out["cpz_eq_mg"] = add_drug_info(drugs)["cpz_eq_mg"].to_numpy()
    return out


def unknown_drugs(names: Iterable[str]) -> list[str]:
    """The distinct names (as given, sorted) that are not drugs of the table."""
    known = _lookup()
    unknown = {
        name for name in names if isinstance(name, str) and normalize_drug(name) not in known
    }
    return sorted(unknown)
