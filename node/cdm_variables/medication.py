"""Current medication at each visit: ``antipsychotic_current``, ``clozapine_current``,
``antidepressant_current`` (binary) and ``cpz_eq_current`` (mg/day chlorpromazine
equivalents by the DDD method, Leucht et al. 2016, Schizophr Bull 42 Suppl 1:S90–S94).

An exposure is active on a visit's day when ``start_day ≤ day ≤ end_day`` (or
``start_day ≤ day`` when ongoing). ``cpz_eq_current`` sums ``cpz_eq_mg`` over the active
antipsychotics, clozapine included; it is missing when an active antipsychotic has no dose
(the sum is then unknown). The variables are computed for every visit with a known day once
the site has any drug exposure rows (0 when nothing is active); with no drug rows at all
they are missing. Drugs not in the DDD table count for no class.
"""

from __future__ import annotations

import logging

import pandas as pd

from node.cdm_variables.drugs import ANTIDEPRESSANT, ANTIPSYCHOTIC, CLOZAPINE
from node.cdm_variables.frames import as_float

logger = logging.getLogger(__name__)

MEDICATION_VARIABLES = (
    "antipsychotic_current",
    "clozapine_current",
    "antidepressant_current",
    "cpz_eq_current",
)


def current_medication(
    days: pd.DataFrame, drugs: pd.DataFrame, *, site_has_drug_rows: bool | None = None
) -> pd.DataFrame:
    """The current-medication variables of each visit with a known day.

    ``days`` is :func:`node.cdm_variables.frames.visit_days`; ``drugs`` the annotated exposure rows
    (:func:`node.cdm_variables.drugs.add_drug_info`). ``site_has_drug_rows`` says whether the site
    holds any drug exposure row at all (default: whether ``drugs`` has rows; pass it when
    ``drugs`` holds only some persons' rows). Returns ``person_id``, ``visit`` and
    :data:`MEDICATION_VARIABLES`; no rows when the site has no drug rows.
    """
    if site_has_drug_rows is None:
        site_has_drug_rows = not drugs.empty
    known = days.loc[days["day"].notna(), ["person_id", "visit", "day"]]
    if not site_has_drug_rows or known.empty:
        return pd.DataFrame(columns=["person_id", "visit", *MEDICATION_VARIABLES])
    exposures = pd.DataFrame(
        {
            "person_id": drugs["person_id"].to_numpy(),
            "start": as_float(drugs["start_day"]).to_numpy(),
            "end": as_float(drugs["end_day"]).to_numpy(),
            "antipsychotic": (drugs["drug_class"] == ANTIPSYCHOTIC).to_numpy(dtype=bool),
            "clozapine": (drugs["drug"] == CLOZAPINE).to_numpy(dtype=bool),
            "antidepressant": (drugs["drug_class"] == ANTIDEPRESSANT).to_numpy(dtype=bool),
            "cpz": drugs["cpz_eq_mg"].to_numpy(dtype="float64"),
        }
    )
    exposures = exposures.loc[exposures["antipsychotic"] | exposures["antidepressant"]]
    pairs = known.merge(exposures, on="person_id", how="inner")
    active = (pairs["start"] <= pairs["day"]) & (
        pairs["end"].isna() | (pairs["day"] <= pairs["end"])
    )
    pairs = pairs.loc[active]
    pairs = pairs.assign(
        cpz=pairs["cpz"].where(pairs["antipsychotic"], 0.0),
        cpz_unknown=pairs["antipsychotic"] & pairs["cpz"].isna(),
    )
    per_visit = pairs.groupby(["person_id", "visit"], sort=False).agg(
        antipsychotic_current=("antipsychotic", "max"),
        clozapine_current=("clozapine", "max"),
        antidepressant_current=("antidepressant", "max"),
        cpz_eq_current=("cpz", "sum"),
        cpz_unknown=("cpz_unknown", "max"),
    )
    per_visit["cpz_eq_current"] = per_visit["cpz_eq_current"].mask(per_visit["cpz_unknown"])
    out = known.loc[:, ["person_id", "visit"]].merge(
        per_visit.drop(columns="cpz_unknown").reset_index(),
        on=["person_id", "visit"],
        how="left",
        indicator=True,
    )
    nothing_active = (out["_merge"] == "left_only").to_numpy()
    for column in MEDICATION_VARIABLES:
        out[column] = out[column].astype("float64").mask(nothing_active, 0.0)
    return out.drop(columns="_merge")
