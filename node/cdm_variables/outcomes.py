"""Person-level outcomes from the event table: relapse and rehospitalization.

For each kind: ``<kind>`` is 1 when the person has an event of that kind on or after the
index date (day ≥ 0), and ``time_to_<kind>`` is the day of the first such event. Without
such an event, ``<kind>`` is 0 and ``time_to_<kind>`` is ``followup_days`` (right-censored
at the end of follow-up); without an event and without ``followup_days`` both are missing.
Events before the index date (negative days) are history, not outcomes, and are ignored.
This is the (time, event) pair survival analyses (Kaplan–Meier, Cox) use.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from node.cdm_variables.frames import as_float

logger = logging.getLogger(__name__)

EVENT_KINDS = ("relapse", "rehospitalization")
OUTCOME_VARIABLES = tuple(v for k in EVENT_KINDS for v in (k, f"time_to_{k}"))


def event_outcomes(
    person_ids: pd.Index, events: pd.DataFrame, followup_days: pd.Series
) -> pd.DataFrame:
    """``person_id`` and :data:`OUTCOME_VARIABLES` (float, NaN = missing) for ``person_ids``.

    ``followup_days`` is indexed by person_id.
    """
    ids = pd.Index(person_ids.unique(), name="person_id")
    followup = followup_days[~followup_days.index.duplicated()].reindex(ids)
    followup_values = followup.to_numpy(dtype="float64")
    out = pd.DataFrame({"person_id": ids.to_numpy()})
    kinds = events["kind"].astype("str").str.strip().str.lower()
    day = as_float(events["day"])
    for kind in EVENT_KINDS:
        mine = (kinds == kind) & (day >= 0)
        first = day[mine].groupby(events["person_id"][mine], sort=False).min()
        first_day = first.reindex(ids).to_numpy(dtype="float64")
        had_event = ~np.isnan(first_day)
        out[kind] = np.where(had_event, 1.0, np.where(np.isnan(followup_values), np.nan, 0.0))
        out[f"time_to_{kind}"] = np.where(had_event, first_day, followup_values)
    return out
