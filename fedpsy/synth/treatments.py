"""Treatment observation variables per visit: ECT sessions, ketamine, esketamine, rTMS.

As the dictionary defines them, values are cumulative "up to this visit": session counts
since baseline, ketamine/esketamine 1 from the first dose (day 0) on, the rTMS protocol
of the course at every visit. ECT runs three sessions a week after the baseline
assessment for a course of 6–20 sessions (UK ECT Review Group 2003), a fifth continue
with one session a fortnight; IV ketamine is six infusions over two weeks from day 0
(Murrough et al. 2013); esketamine twice weekly for four weeks, then maintained (Popova
et al. 2019; Daly et al. 2019); rTMS runs five sessions a week for 20–30 sessions
(Blumberger et al. 2018), deep TMS 20 (Levkovitz et al. 2015).
Mood patients (F31/F32/F33) have every treatment variable; F20/F25 only ECT (a few TRS
patients receive ECT augmentation of clozapine, Petrides et al. 2015, Am J Psychiatry
172:52–58); healthy controls none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth.persons import NO_ARM, Cohort
from fedpsy.synth.sites import ARMS
from fedpsy.synth.visits import Schedule

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Treatments:
    """Per person and visit (n, 5): NaN / "" where not recorded."""

    ect_sessions: FloatArray
    ketamine: FloatArray
    esketamine: FloatArray
    rtms_protocol: NDArray[np.str_]
    rtms_sessions: FloatArray
    response_arm: NDArray[np.str_]  # per person: key of assumptions.ARM_RESPONSE, "" if none


def _ect(rng: np.random.Generator, n: int, day: NDArray[np.int64]) -> FloatArray:
    total = np.clip(np.round(rng.normal(10.0, 3.0, n)), 6, 20)
    course_days = np.ceil(total * 7.0 / 3.0)
    acute = np.minimum(total[:, None], np.floor(day * 3.0 / 7.0))
    continuing = rng.random(n) < 0.2
    extra = np.floor(np.maximum(day - course_days[:, None], 0) / 14.0) * continuing[:, None]
    return np.asarray(acute + extra, dtype=float)


def make_treatments(rng: np.random.Generator, cohort: Cohort, schedule: Schedule) -> Treatments:
    """Draw courses for each person's arm and express them at the attended visits."""
    n = cohort.n
    day = schedule.day
    present = schedule.present
    mood = cohort.arm != NO_ARM

    ect_arm = cohort.arm_is("ect")
    ect_psychosis = cohort.trs & (rng.random(n) < 0.05)
    sessions = _ect(rng, n, day)
    ect = np.where((ect_arm | ect_psychosis)[:, None], sessions, 0.0)
    ect = np.where((mood | cohort.has("F20", "F25"))[:, None] & present, ect, np.nan)

    # "received up to this visit": 1 from the first dose (day 0) on
    ketamine = np.where(cohort.arm_is("ketamine")[:, None], 1.0, np.zeros(day.shape))
    esketamine = np.where(cohort.arm_is("esketamine")[:, None], 1.0, np.zeros(day.shape))

    rtms = cohort.arm_is("rtms")
    total = np.where(cohort.rtms_protocol == "dtms", 20, rng.integers(20, 31, size=n))
    rtms_sessions = np.minimum(total[:, None], np.floor(day * 5.0 / 7.0))
    rtms_sessions = np.where(rtms[:, None], rtms_sessions, 0.0)

    recorded = mood[:, None] & present
    trd = cohort.trd
    arm_name = np.asarray([*ARMS, ""])[cohort.arm]  # NO_ARM (-1) picks ""
    arm_name = np.where(
        (arm_name == "pharmacotherapy") & trd, "pharmacotherapy_trd", arm_name
    ).astype(np.str_)
    return Treatments(
        ect_sessions=ect,
        ketamine=np.where(recorded, ketamine, np.nan),
        esketamine=np.where(recorded, esketamine, np.nan),
        rtms_protocol=np.where(recorded, cohort.rtms_protocol[:, None], "").astype(np.str_),
        rtms_sessions=np.where(recorded, rtms_sessions, np.nan),
        response_arm=arm_name,
    )
