"""Follow-up and events: relapse, rehospitalization and remission days, with censoring.

First-event times are exponential with the annual hazards of
:mod:`fedpsy.synth.assumptions` (higher in TRS and URS, lower on clozapine, higher in
TRD); an event after ``followup_days`` is censored (not written). Depression relapse is
only possible after a remission, which is the first follow-up visit with a QIDS-SR16
total <= 5; in F20/F25 remission is the Andreasen et al. 2005 criterion met at both
week 12 and week 26. A third of rehospitalized patients are rehospitalized again.
Most patients are followed in registries for 1–5 years; the rest up to their last visit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fedpsy.synth import assumptions as A
from fedpsy.synth.antipsychotics import ClozapineCourse
from fedpsy.synth.persons import Cohort
from fedpsy.synth.treatments import Treatments
from fedpsy.synth.visits import Schedule

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DAYS_PER_YEAR = 365.25
REGISTRY_SHARE = 0.75
SECOND_REHOSPITALIZATION = 0.35


def followup_days(rng: np.random.Generator, cohort: Cohort, schedule: Schedule) -> IntArray:
    """Days of follow-up from baseline: registry linkage (1–5 years) or to the last visit."""
    n = cohort.n
    last = schedule.last_day
    registry = np.maximum(last, rng.integers(365, 1826, size=n))
    short = last + rng.integers(0, 31, size=n)
    days = np.where(rng.random(n) < REGISTRY_SHARE, registry, short)
    return np.asarray(np.where(cohort.has("HC"), last, days), dtype=np.int64)


def _first_day(rng: np.random.Generator, annual_rate: FloatArray) -> FloatArray:
    """1 + an exponential day count for each rate (inf where the rate is 0)."""
    rate = annual_rate / DAYS_PER_YEAR
    with np.errstate(divide="ignore"):
        scale = np.where(rate > 0, 1.0 / np.maximum(rate, 1e-300), np.inf)
    return np.asarray(1.0 + np.floor(rng.exponential(1.0, rate.shape) * scale), dtype=float)


def _rates(cohort: Cohort, clozapine: ClozapineCourse) -> tuple[FloatArray, FloatArray]:
    psychosis = cohort.has("F20", "F25")
    bipolar = cohort.has("F31")
    depression = cohort.has("F32", "F33")
    ratio = np.where(cohort.urs, A.URS_HAZARD_RATIO, np.where(cohort.trs, A.TRS_HAZARD_RATIO, 1))
    on_clz = clozapine.during_followup
    rehosp = np.select(
        [psychosis, bipolar, depression],
        [
            A.REHOSP_RATE["psychosis"] * ratio * np.where(on_clz, A.CLOZAPINE_REHOSP_RATIO, 1.0),
            np.full(cohort.n, A.REHOSP_RATE["bipolar"]),
            A.REHOSP_RATE["depression"] * np.where(cohort.trd, A.TRD_REHOSP_RATIO, 1.0),
        ],
        0.0,
    )
    relapse = np.select(
        [psychosis, bipolar],
        [
            A.RELAPSE_RATE_PSYCHOSIS * ratio * np.where(on_clz, A.CLOZAPINE_RELAPSE_RATIO, 1.0),
            np.full(cohort.n, A.RELAPSE_RATE_BIPOLAR),
        ],
        0.0,
    )
    return np.asarray(rehosp, dtype=float), np.asarray(relapse, dtype=float)


def _remission_day(
    cohort: Cohort, schedule: Schedule, qids_total: FloatArray, andreasen: NDArray[np.bool_]
) -> FloatArray:
    visits = np.arange(schedule.present.shape[1])[None, :]
    mood_remit = (qids_total <= 5) & (visits >= 1) & cohort.has("F31", "F32", "F33")[:, None]
    first = np.argmax(mood_remit, axis=1)
    rows = np.arange(cohort.n)
    mood_day = np.where(mood_remit.any(axis=1), schedule.day[rows, first], np.nan)
    psy_remit = andreasen[:, 3] & andreasen[:, 4]
    return np.asarray(np.where(psy_remit, schedule.day[:, 4], mood_day), dtype=float)


def make_events(
    rng: np.random.Generator,
    cohort: Cohort,
    schedule: Schedule,
    followup: IntArray,
    clozapine: ClozapineCourse,
    treatments: Treatments,
    qids_total: FloatArray,
    andreasen: NDArray[np.bool_],
) -> pd.DataFrame:
    """event rows (person_id, kind, day), sorted by person, day and kind."""
    n = cohort.n
    rehosp_rate, relapse_rate = _rates(cohort, clozapine)
    remission = _remission_day(cohort, schedule, qids_total, andreasen)
    after_remission = np.zeros(n)
    for arm, rate in A.RELAPSE_AFTER_REMISSION.items():
        after_remission = np.where(treatments.response_arm == arm, rate, after_remission)
    mood_relapse = remission + _first_day(rng, after_remission)
    relapse = np.where(cohort.has("F32", "F33"), mood_relapse, _first_day(rng, relapse_rate))
    rehosp = _first_day(rng, rehosp_rate)
    again = np.where(
        rng.random(n) < SECOND_REHOSPITALIZATION, rehosp + _first_day(rng, rehosp_rate), np.inf
    )
    limit = followup.astype(float)
    person: list[IntArray] = []
    kind: list[NDArray[np.str_]] = []
    day: list[IntArray] = []
    for name, when in (
        ("remission", remission),
        ("relapse", relapse),
        ("rehospitalization", rehosp),
        ("rehospitalization", again),
    ):
        hit = np.flatnonzero(np.isfinite(when) & (when <= limit))
        person.append(hit)
        kind.append(np.full(hit.size, name))
        day.append(when[hit].astype(np.int64))
    p, k, d = np.concatenate(person), np.concatenate(kind), np.concatenate(day)
    order = np.lexsort((k, d, p))
    return pd.DataFrame(
        {"person_id": cohort.person_id[p[order]], "kind": k[order], "day": d[order]}
    )
