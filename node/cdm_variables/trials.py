"""Adequate medication trials from drug exposure rows (TRRIP criteria).

Rules (Howes et al. 2017, "Treatment-Resistant Schizophrenia: Treatment Response and
Resistance in Psychosis (TRRIP) Working Group consensus guidelines", Am J Psychiatry
174:216–229; for depression the usual "two adequate antidepressant trials" definition):

- a row's duration is ``end_day − start_day + 1`` (both days inclusive); a row with an empty
  ``end_day`` is ongoing up to the person's latest visit day (rows of a person with no
  known visit day, or starting after it, cannot make a trial);
- a row qualifies when its dose meets the kind's minimum and its adherence is ≥ 0.8; a
  missing adherence or dose does not qualify (adherence must be established);
- qualifying rows of the same drug that overlap or abut (next start ≤ previous end + 1)
  merge into one trial spanning them; the trial is adequate when it lasts the kind's
  minimum number of days.

=================  ==========================================  ===========
kind               drugs and dose                              min. days
=================  ==========================================  ===========
antipsychotic      antipsychotics except clozapine, ≥ 600 mg    42 (6 weeks)
                   chlorpromazine equivalents a day
clozapine          clozapine ≥ 300 mg a day                     84 (12 weeks)
antidepressant     antidepressants, ≥ 1 DDD a day               28 (4 weeks)
=================  ==========================================  ===========
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from node.cdm_variables.drugs import ANTIDEPRESSANT, ANTIPSYCHOTIC, CLOZAPINE
from node.cdm_variables.frames import as_float

logger = logging.getLogger(__name__)

TrialKind = Literal["antipsychotic", "clozapine", "antidepressant"]
TRIAL_KINDS: tuple[TrialKind, ...] = ("antipsychotic", "clozapine", "antidepressant")

MIN_ADHERENCE = 0.8
"""Adherence (fraction of prescribed doses taken) a trial needs (TRRIP: ≥ 80 %)."""

THRESHOLD_RTOL = 1e-9
"""Relative tolerance on dose and adherence thresholds, so that e.g. exactly 600 mg CPZ-eq in
floating point is not lost to rounding."""

TRIAL_COLUMNS = ("person_id", "drug", "start_day", "end_day", "days")


@dataclass(frozen=True)
class TrialRule:
    """What makes a trial of one kind adequate."""

    kind: TrialKind
    min_days: int
    dose_column: str  # column of the annotated drug rows compared to min_dose
    min_dose: float  # in the unit of dose_column; "ddd" means multiples of the DDD


TRIAL_RULES: dict[TrialKind, TrialRule] = {
    "antipsychotic": TrialRule("antipsychotic", 42, "cpz_eq_mg", 600.0),
    "clozapine": TrialRule("clozapine", 84, "daily_dose_mg", 300.0),
    "antidepressant": TrialRule("antidepressant", 28, "ddd", 1.0),
}


def exposure_spans(drugs: pd.DataFrame, last_day: pd.Series) -> pd.DataFrame:
    """Drug rows (from :func:`node.cdm_variables.drugs.add_drug_info`) with their effective end.

    Adds float columns ``start`` and ``end`` (``end_day``, or the person's latest visit day in
    ``last_day`` when ongoing). Rows without a usable span (no end known, end before start)
    are dropped.
    """
    out = drugs.copy()
    out["start"] = as_float(out["start_day"])
    end = as_float(out["end_day"])
    ongoing_end = out["person_id"].map(last_day).astype("float64")
    out["end"] = end.fillna(ongoing_end)
    usable = out["start"].notna() & out["end"].notna() & (out["end"] >= out["start"])
    return out.loc[usable]


def qualifying_rows(spans: pd.DataFrame, kind: TrialKind) -> pd.Series:
    """Boolean mask of the rows of ``spans`` that meet the drug, dose and adherence rule."""
    rule = TRIAL_RULES[kind]
    if kind == "antipsychotic":
        drug_ok = (spans["drug_class"] == ANTIPSYCHOTIC) & (spans["drug"] != CLOZAPINE)
    elif kind == "clozapine":
        drug_ok = spans["drug"] == CLOZAPINE
    else:
        drug_ok = spans["drug_class"] == ANTIDEPRESSANT
    if rule.dose_column == "ddd":
        dose = as_float(spans["daily_dose_mg"]) / spans["ddd_mg"]
    else:
        dose = as_float(spans[rule.dose_column])
    dose_ok = dose >= rule.min_dose * (1.0 - THRESHOLD_RTOL)
    adherence_ok = as_float(spans["adherence"]) >= MIN_ADHERENCE * (1.0 - THRESHOLD_RTOL)
    mask: pd.Series = (drug_ok & dose_ok & adherence_ok).fillna(False).astype(bool)
    return mask


def merge_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Merge rows of the same person and drug that overlap or abut into one span each.

    ``rows`` has ``person_id``, ``drug``, ``start``, ``end``; returns :data:`TRIAL_COLUMNS`
    (``days`` = end − start + 1).
    """
    if rows.empty:
        return empty_trials()
    ordered = rows.loc[:, ["person_id", "drug", "start", "end"]].sort_values(
        ["person_id", "drug", "start"], kind="stable"
    )
    keys = [ordered["person_id"], ordered["drug"]]
    previous_end = ordered.groupby(keys, sort=False)["end"].cummax()
    previous_end = previous_end.groupby(keys, sort=False).shift()
    new_block = previous_end.isna() | (ordered["start"] > previous_end + 1)
    block = np.cumsum(new_block.to_numpy())
    merged = ordered.groupby(block, sort=False).agg(
        person_id=("person_id", "first"),
        drug=("drug", "first"),
        start_day=("start", "min"),
        end_day=("end", "max"),
    )
    merged["days"] = merged["end_day"] - merged["start_day"] + 1
    return merged.reset_index(drop=True).loc[:, list(TRIAL_COLUMNS)]


def adequate_trials(spans: pd.DataFrame, kind: TrialKind) -> pd.DataFrame:
    """The adequate trials of ``kind`` among :func:`exposure_spans` rows.

    Returns :data:`TRIAL_COLUMNS`, one row per merged trial long enough for the kind.
    """
    merged = merge_rows(spans.loc[qualifying_rows(spans, kind)])
    return merged.loc[merged["days"] >= TRIAL_RULES[kind].min_days].reset_index(drop=True)


def persons_with_two_separate_trials(trials: pd.DataFrame) -> pd.Index:
    """Persons with two trials of *different* drugs that do not overlap in time.

    Trials of different drugs that overlap (even by a day) were given together: they are one
    combination trial, not two. Abutting trials (one ends the day before the other starts)
    do not overlap.
    """
    if trials.empty:
        return pd.Index([], dtype="str", name="person_id")
    drugs_per_person = trials.groupby("person_id", sort=False)["drug"].nunique()
    several = drugs_per_person.index[drugs_per_person >= 2]
    candidates = trials.loc[trials["person_id"].isin(several)]
    pairs = candidates.merge(candidates, on="person_id", suffixes=("_a", "_b"))
    separate = (pairs["drug_a"] != pairs["drug_b"]) & (pairs["end_day_a"] < pairs["start_day_b"])
    persons: pd.Index = pd.Index(pairs.loc[separate, "person_id"].unique(), name="person_id")
    return persons


def empty_trials() -> pd.DataFrame:
    """A trials frame with no rows."""
    return pd.DataFrame(
        {
            "person_id": pd.Series(dtype="str"),
            "drug": pd.Series(dtype="str"),
            "start_day": pd.Series(dtype="float64"),
            "end_day": pd.Series(dtype="float64"),
            "days": pd.Series(dtype="float64"),
        }
    )
