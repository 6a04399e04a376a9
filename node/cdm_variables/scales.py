"""Scale scores from items, and response/remission against the baseline visit.

- PANSS (Kay, Fiszbein & Opler 1987, Schizophr Bull 13:261–276): positive = P1…P7,
  negative = N1…N7, general = G1…G16, total = all 30 items; each missing if any of its
  items is missing.
- QIDS-SR16 (Rush et al. 2003, Biol Psychiatry 54:573–583): max(items 1–4) + item 5 +
  max(items 6–9) + items 10–14 + max(items 15, 16), range 0–27; missing if any item is
  missing.
- ``panss_response``: ≥ 20 % reduction of the PANSS total from baseline, with the 30-point
  floor subtracted (Leucht et al. 2009, Br J Psychiatry 194:381–384):
  (baseline − visit) / (baseline − 30) ≥ 0.2; missing at a baseline total of 30 (nothing
  to reduce).
- ``qids_response``: ≥ 50 % reduction of ``qids_total`` from baseline; missing at a baseline
  of 0. ``qids_remission``: ``qids_total`` ≤ 5 (Rush et al. 2006, STAR*D).

Response flags are given for the visits after baseline (not for baseline itself), and only
when both totals are known; remission is given for every visit with a total.

A site that has only totals may load them (:data:`GIVEN_TOTALS`; they are kept under
:func:`given_code`). Where a score's items are complete the total derived from them wins;
where they are not, the given total is the score, and responses, remission and ``trd`` follow
from it. A given total that disagrees with complete items is reported
(:func:`scale_scores`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from node.cdm_variables.frames import BASELINE

logger = logging.getLogger(__name__)

PANSS_POSITIVE_ITEMS = tuple(f"panss_p{i}" for i in range(1, 8))
PANSS_NEGATIVE_ITEMS = tuple(f"panss_n{i}" for i in range(1, 8))
PANSS_GENERAL_ITEMS = tuple(f"panss_g{i}" for i in range(1, 17))
PANSS_ITEMS = PANSS_POSITIVE_ITEMS + PANSS_NEGATIVE_ITEMS + PANSS_GENERAL_ITEMS
PANSS_FLOOR = 30.0
"""Lowest possible PANSS total (30 items rated 1), subtracted for response (Leucht 2009)."""
PANSS_RESPONSE_REDUCTION = 0.2

QIDS_ITEMS = tuple(f"qids_{i:02d}" for i in range(1, 17))
QIDS_DOMAINS: tuple[tuple[int, ...], ...] = (
    (1, 2, 3, 4),  # sleep: the worst of the four sleep items
    (5,),
    (6, 7, 8, 9),  # appetite/weight: the worst of the four
    (10,),
    (11,),
    (12,),
    (13,),
    (14,),
    (15, 16),  # psychomotor: the worse of slowed / restless
)
"""The nine DSM-IV symptom domains of the QIDS-SR16 (Rush et al. 2003), by item number."""
QIDS_RESPONSE_REDUCTION = 0.5
QIDS_REMISSION_MAX = 5.0

PANSS_SCORES = ("panss_positive", "panss_negative", "panss_general", "panss_total")
QIDS_SCORES = ("qids_total", "qids_remission")
RESPONSE_SCORES = ("panss_response", "qids_response")

GIVEN_TOTALS: Mapping[str, tuple[str, ...]] = {
    "panss_positive": PANSS_POSITIVE_ITEMS,
    "panss_negative": PANSS_NEGATIVE_ITEMS,
    "panss_general": PANSS_GENERAL_ITEMS,
    "panss_total": PANSS_ITEMS,
    "qids_total": QIDS_ITEMS,
}
"""The derived scores a flat file may give (a site with totals but no items), each with
the items it is otherwise derived from."""
GIVEN_SUFFIX = ".given"
CONFLICT_COLUMNS = ("person_id", "visit", "variable", "given", "derived")
"""Columns of the frame of given totals that disagree with their items."""


def given_code(code: str) -> str:
    """The observation variable a given total of ``code`` is stored under: never a
    dictionary code (those have no dot), so no request reads it and re-deriving keeps it."""
    return f"{code}{GIVEN_SUFFIX}"


GIVEN_CODES = tuple(given_code(code) for code in GIVEN_TOTALS)


def panss_scores(items: pd.DataFrame) -> pd.DataFrame:
    """PANSS subscale and total scores of each row of a wide item frame.

    ``items`` has ``person_id``, ``visit`` and the columns :data:`PANSS_ITEMS`; returns
    ``person_id``, ``visit`` and :data:`PANSS_SCORES` (NaN where an item is missing).
    """
    out = items.loc[:, ["person_id", "visit"]].copy()
    groups = {
        "panss_positive": PANSS_POSITIVE_ITEMS,
        "panss_negative": PANSS_NEGATIVE_ITEMS,
        "panss_general": PANSS_GENERAL_ITEMS,
        "panss_total": PANSS_ITEMS,
    }
    for score, codes in groups.items():
        out[score] = items.loc[:, list(codes)].to_numpy(dtype="float64").sum(axis=1)
    return out


def qids_scores(items: pd.DataFrame) -> pd.DataFrame:
    """``qids_total`` and ``qids_remission`` of each row of a wide QIDS item frame."""
    out = items.loc[:, ["person_id", "visit"]].copy()
    total = np.zeros(len(items))
    for domain in QIDS_DOMAINS:
        codes = [QIDS_ITEMS[i - 1] for i in domain]
        total = total + items.loc[:, codes].to_numpy(dtype="float64").max(axis=1)
    out["qids_total"] = total
    out["qids_remission"] = qids_remission(out["qids_total"])
    return out


def qids_remission(total: pd.Series) -> pd.Series:
    """1.0 where the QIDS-SR16 ``total`` is at most 5, 0.0 above, NaN where it is missing."""
    remission = (total <= QIDS_REMISSION_MAX).astype("float64")
    return remission.where(total.notna(), np.nan)


def scale_scores(items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`panss_scores` and :func:`qids_scores` with the given totals filled in.

    ``items`` is one wide frame with ``person_id``, ``visit``, :data:`PANSS_ITEMS`,
    :data:`QIDS_ITEMS` and :data:`GIVEN_CODES`. A score derived from complete items is
    kept; where it is missing (an item is), the given total is used. Returns the PANSS
    scores, the QIDS scores and the given totals that differ from complete items
    (:data:`CONFLICT_COLUMNS`).
    """
    panss = panss_scores(items.loc[:, ["person_id", "visit", *PANSS_ITEMS]])
    qids = qids_scores(items.loc[:, ["person_id", "visit", *QIDS_ITEMS]])
    conflicts = []
    for scores, codes in ((panss, PANSS_SCORES), (qids, ("qids_total",))):
        for code in codes:
            given = items[given_code(code)]
            derived = scores[code]
            differ = (derived.notna() & given.notna() & (derived != given)).to_numpy()
            conflicts.append(
                pd.DataFrame(
                    {
                        "person_id": scores["person_id"].to_numpy()[differ],
                        "visit": scores["visit"].to_numpy()[differ],
                        "variable": code,
                        "given": given.to_numpy()[differ],
                        "derived": derived.to_numpy()[differ],
                    },
                    columns=list(CONFLICT_COLUMNS),
                )
            )
            scores[code] = derived.where(derived.notna(), given)
    qids["qids_remission"] = qids_remission(qids["qids_total"])
    return panss, qids, pd.concat(conflicts, ignore_index=True)


def baseline_values(scores: pd.DataFrame, column: str) -> pd.Series:
    """``column`` at the baseline visit, indexed by person_id (missing ones left out)."""
    base = scores.loc[(scores["visit"] == BASELINE) & scores[column].notna()]
    return pd.Series(base[column].to_numpy(), index=pd.Index(base["person_id"], name="person_id"))


def response(scores: pd.DataFrame, column: str, reduction: float, floor: float = 0.0) -> pd.Series:
    """1.0 where ``column`` fell from baseline by ≥ ``reduction`` of (baseline − floor).

    0.0 where it fell less (or rose); NaN at baseline, where either value is missing, or
    where baseline − floor ≤ 0. The comparison ``(b − v) ≥ reduction·(b − floor)`` is done
    with integer-exact arithmetic for the thresholds used here (0.2 and 0.5 of integer
    totals), so exactly 20 % / 50 % counts as a response.
    """
    base = scores["person_id"].map(baseline_values(scores, column)).astype("float64")
    current = scores[column].astype("float64")
    room = base - floor
    # multiply out the fraction (1/reduction is 5 or 2) so the test is exact
    scale = 1.0 / reduction
    met = ((base - current) * scale >= room - 1e-9).astype("float64")
    defined = (scores["visit"] != BASELINE) & base.notna() & current.notna() & (room > 0)
    return met.where(defined, np.nan)


def response_scores(panss: pd.DataFrame, qids: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """``panss_response`` (aligned with ``panss``) and ``qids_response`` (with ``qids``)."""
    panss_response = response(panss, "panss_total", PANSS_RESPONSE_REDUCTION, PANSS_FLOOR)
    qids_response = response(qids, "qids_total", QIDS_RESPONSE_REDUCTION)
    return panss_response, qids_response
