"""Person-level phenotypes: treatment-resistant (trs), ultra-resistant (urs) and
treatment-resistant depression (trd).

- ``trs`` (TRRIP, Howes et al. 2017, Am J Psychiatry 174:216–229), for primary diagnosis F20
  or F25 only (others: missing): 1 when the person has two adequate antipsychotic trials of
  different drugs that do not overlap in time (see :mod:`node.cdm_variables.trials`) AND persisting
  symptoms at baseline — at least one PANSS positive item (P1…P7) ≥ 4 (moderate); 0 when that
  is not met; missing when the baseline visit has no PANSS positive item at all.
- ``urs`` (clozapine-resistant): missing where trs is missing, 0 where trs is 0; where trs is
  1: 1 when there is an adequate clozapine trial AND persisting symptoms (same item rule) at
  the person's latest visit (by day) with PANSS positive items; else 0.
- ``trd``, for primary diagnosis F32 or F33 only (others: missing): 1 when the person has two
  adequate antidepressant trials of different drugs that do not overlap in time AND a
  baseline ``qids_total`` ≥ 11 (at least moderate, Rush et al. 2003); 0 otherwise; missing
  when the baseline ``qids_total`` is missing.

No order in time between the trials and the visits is required.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from node.cdm_variables.frames import BASELINE
from node.cdm_variables.scales import PANSS_POSITIVE_ITEMS
from node.cdm_variables.trials import TrialKind, persons_with_two_separate_trials

logger = logging.getLogger(__name__)

TRS_DIAGNOSES = ("F20", "F25")
TRD_DIAGNOSES = ("F32", "F33")
PERSISTING_ITEM_SCORE = 4.0
"""A PANSS positive item at or above this (4 = moderate) means persisting symptoms."""
TRD_MIN_QIDS_TOTAL = 11.0
PHENOTYPES = ("trs", "urs", "trd")


def persisting_symptoms(panss_items: pd.DataFrame) -> pd.Series:
    """Per row: 1.0 if a PANSS positive item is ≥ 4, 0.0 if the present ones are all lower,
    NaN if no positive item is present."""
    values = panss_items.loc[:, list(PANSS_POSITIVE_ITEMS)].to_numpy(dtype="float64")
    present = ~np.isnan(values)
    high = np.where(present, values, -np.inf).max(axis=1, initial=-np.inf)
    flag = (high >= PERSISTING_ITEM_SCORE).astype("float64")
    return pd.Series(np.where(present.any(axis=1), flag, np.nan), index=panss_items.index)


def symptom_status(panss_items: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """Persisting symptoms at baseline and at the latest visit with PANSS positive items.

    Returns a frame indexed by person_id with columns ``baseline`` and ``latest`` (1/0/NaN).
    ``days`` is :func:`node.cdm_variables.frames.visit_days`; visits whose day is unknown cannot be
    ordered and are not candidates for "latest" (baseline counts as day 0).
    """
    rated = panss_items.loc[:, ["person_id", "visit"]].copy()
    rated["persist"] = persisting_symptoms(panss_items)
    rated = rated.loc[rated["persist"].notna()]
    baseline_rows = rated.loc[rated["visit"] == BASELINE]
    baseline = pd.Series(
        baseline_rows["persist"].to_numpy(), index=pd.Index(baseline_rows["person_id"])
    )
    dated = rated.merge(days, on=["person_id", "visit"], how="left")
    dated.loc[dated["visit"] == BASELINE, "day"] = dated["day"].fillna(0.0)
    dated = dated.loc[dated["day"].notna()].sort_values(["person_id", "day", "visit"])
    last = dated.drop_duplicates("person_id", keep="last")
    latest = pd.Series(last["persist"].to_numpy(), index=pd.Index(last["person_id"]))
    out = pd.DataFrame({"baseline": baseline, "latest": latest})
    out.index.name = "person_id"
    return out


def phenotypes(
    persons: pd.DataFrame,
    symptoms: pd.DataFrame,
    baseline_qids: pd.Series,
    trials: Mapping[TrialKind, pd.DataFrame],
) -> pd.DataFrame:
    """``trs``, ``urs`` and ``trd`` (1.0/0.0/NaN) for every person of ``persons``.

    ``symptoms`` is :func:`symptom_status`; ``baseline_qids`` the baseline ``qids_total`` by
    person_id; ``trials`` maps each trial kind to its adequate trials
    (:func:`node.cdm_variables.trials.adequate_trials`).
    """
    ids = pd.Index(persons["person_id"].drop_duplicates(), name="person_id")
    diagnosis = pd.Series(persons["primary_diagnosis"].to_numpy(), index=persons["person_id"])
    diagnosis = diagnosis[~diagnosis.index.duplicated()].reindex(ids)
    symptoms = symptoms.reindex(ids)

    two_ap = ids.isin(persons_with_two_separate_trials(trials["antipsychotic"]))
    baseline_persist = symptoms["baseline"].to_numpy(dtype="float64")
    trs = np.where(two_ap & (baseline_persist == 1.0), 1.0, 0.0)
    trs = np.where(np.isnan(baseline_persist), np.nan, trs)
    trs = np.where(diagnosis.isin(TRS_DIAGNOSES).to_numpy(), trs, np.nan)

    clozapine = ids.isin(pd.Index(trials["clozapine"]["person_id"].unique()))
    latest_persist = symptoms["latest"].to_numpy(dtype="float64") == 1.0
    urs = np.where(trs == 1.0, (clozapine & latest_persist).astype("float64"), trs)

    two_ad = ids.isin(persons_with_two_separate_trials(trials["antidepressant"]))
    qids = baseline_qids[~baseline_qids.index.duplicated()].reindex(ids).to_numpy("float64")
    trd = np.where(two_ad & (qids >= TRD_MIN_QIDS_TOTAL), 1.0, 0.0)
    trd = np.where(np.isnan(qids), np.nan, trd)
    trd = np.where(diagnosis.isin(TRD_DIAGNOSES).to_numpy(), trd, np.nan)

    return pd.DataFrame({"person_id": ids.to_numpy(), "trs": trs, "urs": urs, "trd": trd})
