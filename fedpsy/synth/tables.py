"""One chunk of a site: persons, visits, drug histories, scales, MRS and events as the six
ingest tables (text columns ready for :class:`fedpsy.synth.writer.SiteWriter`).

The flat observation file holds only observation-source variables of the dictionary:
items (not totals that the node derives), clinician totals (HAM-D17, MADRS, BPRS, CGI-S),
treatments, age at every visit, and the person-level ``education_years`` and
``followup_days`` on the baseline row.

Planted data-entry errors: at the second site every :data:`IMPLAUSIBLE_EVERY`-th person's
baseline age is keyed as 91–99 years, inside the dictionary's range (12–110) but outside
its plausibility bounds (18–90), for the data-quality report to find.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fedpsy.synth import assumptions as A
from fedpsy.synth import panss as P
from fedpsy.synth import qids as Q
from fedpsy.synth.antidepressants import antidepressant_history
from fedpsy.synth.antipsychotics import antipsychotic_history
from fedpsy.synth.drugs import Rows
from fedpsy.synth.events import followup_days, make_events
from fedpsy.synth.mrs import mrs_rows
from fedpsy.synth.persons import MOOD_GROUPS, PSY_GROUPS, Cohort, make_cohort
from fedpsy.synth.sites import DIAGNOSES, SiteProfile
from fedpsy.synth.treatments import make_treatments
from fedpsy.synth.visits import Schedule, make_schedule
from fedpsy.synth.writer import TextColumn, as_text
from schemas.cdm import OBSERVATIONS

FloatArray = NDArray[np.float64]
IMPLAUSIBLE_SITE = 1
IMPLAUSIBLE_EVERY = 25

OBSERVATION_COLUMNS: tuple[str, ...] = (
    *OBSERVATIONS.names,
    "age",
    "education_years",
    *P.ITEMS,
    "cgi_s",
    "bprs_total",
    *Q.ITEMS,
    "hamd17_total",
    "madrs_total",
    "ect_sessions",
    "ketamine",
    "esketamine",
    "rtms_protocol",
    "rtms_sessions",
    "followup_days",
)


@dataclass
class Chunk:
    """The text tables of one chunk and what the README reports about it."""

    tables: dict[str, dict[str, TextColumn]]
    counts: Counter[str]


def _frame_text(frame: pd.DataFrame) -> dict[str, TextColumn]:
    return {str(c): as_text(frame[c].to_numpy()) for c in frame.columns}


def _observations(
    cohort: Cohort, schedule: Schedule, matrices: dict[str, NDArray[np.generic]]
) -> dict[str, TextColumn]:
    present = schedule.present
    out: dict[str, TextColumn] = {}
    for code in OBSERVATION_COLUMNS:
        out[code] = as_text(np.asarray(matrices[code])[present])
    return out


def _counts(cohort: Cohort, mrs: pd.DataFrame) -> Counter[str]:
    counts: Counter[str] = Counter()
    counts["persons"] = cohort.n
    for k, dx in enumerate(DIAGNOSES):
        counts[f"dx:{dx}"] = int((cohort.dx == k).sum())
    for k, group in enumerate(PSY_GROUPS[1:], start=1):
        counts[f"psy:{group}"] = int((cohort.psy_group == k).sum())
    for k, group in enumerate(MOOD_GROUPS[1:], start=1):
        counts[f"mood:{group}"] = int((cohort.mood_group == k).sum())
    if len(mrs):
        sessions = mrs.drop_duplicates(["person_id", "visit", "scanner_id"])
        for scanner, m in sessions["scanner_id"].value_counts().sort_index().items():
            counts[f"scans:{scanner}"] = int(m)
    return counts


def _keyed_ages(site: SiteProfile, start: int, age: FloatArray) -> FloatArray:
    """``age`` (persons × visits) with the planted implausible baseline ages."""
    if site.index != IMPLAUSIBLE_SITE:
        return age
    number = np.arange(start, start + age.shape[0])
    wrong = number % IMPLAUSIBLE_EVERY == IMPLAUSIBLE_EVERY // 2
    out = age.copy()
    out[wrong, 0] = 91.0 + number[wrong] % 9
    return out


def make_chunk(rng: np.random.Generator, site: SiteProfile, start: int, n: int) -> Chunk:
    """Generate persons ``start`` … ``start + n − 1`` of ``site``."""
    cohort = make_cohort(rng, site, start, n)
    schedule = make_schedule(rng, cohort)
    rows = Rows()
    clozapine = antipsychotic_history(rng, cohort, rows)
    antidepressant_history(rng, cohort, rows)
    treatments = make_treatments(rng, cohort, schedule)
    panss, andreasen = P.make_panss(rng, cohort, schedule)
    qids = Q.make_qids(rng, cohort, schedule, treatments)
    followup = followup_days(rng, cohort, schedule)
    qids_total = Q.rush_total(np.stack([qids[c] for c in Q.ITEMS], axis=2))
    events = make_events(
        rng, cohort, schedule, followup, clozapine, treatments, qids_total, andreasen
    )
    mrs = mrs_rows(rng, cohort, schedule)

    shape = schedule.present.shape
    first = np.zeros(shape, dtype=bool)
    first[:, 0] = True
    nan = np.full(shape, np.nan)
    matrices: dict[str, NDArray[np.generic]] = {
        "person_id": np.broadcast_to(cohort.person_id[:, None], shape),
        "visit": np.broadcast_to(np.asarray(A.VISITS)[None, :], shape),
        "age": _keyed_ages(site, start, np.round(cohort.age0[:, None] + schedule.day / 365.25, 1)),
        "education_years": np.where(first, cohort.education[:, None], nan),
        "followup_days": np.where(first, followup[:, None], nan),
        "ect_sessions": treatments.ect_sessions,
        "ketamine": treatments.ketamine,
        "esketamine": treatments.esketamine,
        "rtms_protocol": treatments.rtms_protocol,
        "rtms_sessions": treatments.rtms_sessions,
        **{k: v for k, v in panss.items() if k != "cgi_s"},
        **{k: v for k, v in qids.items() if k != "cgi_s"},
        "cgi_s": np.where(np.isnan(panss["cgi_s"]), qids["cgi_s"], panss["cgi_s"]),
    }
    present = schedule.present
    visit_rows = np.nonzero(present)
    tables = {
        "person": {
            "person_id": as_text(cohort.person_id),
            "sex": as_text(np.where(cohort.female, "F", "M")),
            "birth_year": as_text(cohort.birth_year),
            "primary_diagnosis": as_text(np.asarray(DIAGNOSES)[cohort.dx]),
        },
        "visit": {
            "person_id": as_text(cohort.person_id[visit_rows[0]]),
            "visit": as_text(np.asarray(A.VISITS)[visit_rows[1]]),
            "day": as_text(schedule.day[present]),
        },
        "observations": _observations(cohort, schedule, matrices),
        "drug_exposure": _frame_text(rows.frame(cohort.person_id)),
        "event": _frame_text(events),
    }
    if len(mrs):
        tables["mrs_measure"] = _frame_text(mrs)
    return Chunk(tables=tables, counts=_counts(cohort, mrs))
