"""Persons of one site: pseudonymous ids, diagnosis, demographics and latent clinical course.

The latent groups are what the generator knows and the node must rediscover from the drug
history and the scales: for F20/F25 a treatment-resistance group (``PSY_GROUPS``), for
F32/F33 a depression group (``MOOD_GROUPS``), for every mood patient a treatment arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth import assumptions as A
from fedpsy.synth.sites import ARMS, DIAGNOSES, SiteProfile

PSY_GROUPS: tuple[str, ...] = (
    "none",
    "early",
    "one_adequate",
    "remitted",
    "inadequate",
    "clozapine_responder",
    "clozapine_intolerant",
    "urs_initiating",
    "urs_established",
)
MOOD_GROUPS: tuple[str, ...] = ("none", "first", "continuing", "near_miss", "mild", "trd")
NO_ARM = -1

_FEMALE = (0.35, 0.50, 0.55, 0.65, 0.68, 0.50)
_AGE = ((34.0, 11.0), (38.0, 12.0), (41.0, 13.0), (44.0, 14.0), (48.0, 13.0), (36.0, 12.0))
_EDUCATION = (12.0, 12.5, 14.0, 14.0, 13.5, 15.5)
_RTMS_WEIGHT = {"hf_rtms": 0.4, "itbs": 0.4, "lf_rtms": 0.1, "dtms": 0.1}

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Cohort:
    """One chunk of a site's persons, as parallel arrays (one entry per person)."""

    site: SiteProfile
    person_id: NDArray[np.str_]
    dx: IntArray  # index into DIAGNOSES
    female: BoolArray
    age0: FloatArray
    index_year: IntArray
    birth_year: IntArray
    education: IntArray
    psy_group: IntArray  # index into PSY_GROUPS
    psy_responder: BoolArray
    mood_group: IntArray  # index into MOOD_GROUPS
    arm: IntArray  # index into ARMS, NO_ARM when not a mood patient
    rtms_protocol: NDArray[np.str_]

    @property
    def n(self) -> int:
        return int(self.dx.shape[0])

    def has(self, *codes: str) -> BoolArray:
        """Mask of persons whose primary diagnosis is one of ``codes``."""
        return np.asarray(np.isin(self.dx, [DIAGNOSES.index(c) for c in codes]), dtype=bool)

    @property
    def trs(self) -> BoolArray:
        return np.asarray(self.psy_group >= PSY_GROUPS.index("clozapine_responder"), dtype=bool)

    @property
    def urs(self) -> BoolArray:
        return np.asarray(self.psy_group >= PSY_GROUPS.index("urs_initiating"), dtype=bool)

    @property
    def trd(self) -> BoolArray:
        return np.asarray(self.mood_group == MOOD_GROUPS.index("trd"), dtype=bool)

    def arm_is(self, name: str) -> BoolArray:
        return np.asarray(self.arm == ARMS.index(name), dtype=bool)


def _categorical(rng: np.random.Generator, probs: dict[str, float], n: int) -> IntArray:
    p = np.asarray(list(probs.values()), dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def _psy_groups(rng: np.random.Generator, psychosis: BoolArray) -> IntArray:
    n = psychosis.shape[0]
    u = rng.random(n)
    trs = u < A.TRS_SHARE
    urs = u < A.TRS_SHARE * A.URS_SHARE_OF_TRS
    non = [PSY_GROUPS.index(g) for g in A.NON_TRS_SUBGROUPS]
    trs_only = [PSY_GROUPS.index(g) for g in A.TRS_SUBGROUPS]
    urs_groups = [PSY_GROUPS.index(g) for g in A.URS_SUBGROUPS]
    group = np.asarray(non, dtype=np.int64)[_categorical(rng, A.NON_TRS_SUBGROUPS, n)]
    trs_probs = {k: v / (1 - A.URS_SHARE_OF_TRS) for k, v in A.TRS_SUBGROUPS.items()}
    group = np.where(trs, np.asarray(trs_only)[_categorical(rng, trs_probs, n)], group)
    group = np.where(urs, np.asarray(urs_groups)[_categorical(rng, A.URS_SUBGROUPS, n)], group)
    return np.where(psychosis, group, 0).astype(np.int64)


def _mood_groups(rng: np.random.Generator, depression: BoolArray) -> IntArray:
    n = depression.shape[0]
    non = np.asarray([MOOD_GROUPS.index(g) for g in A.NON_TRD_SUBGROUPS], dtype=np.int64)
    group = non[_categorical(rng, A.NON_TRD_SUBGROUPS, n)]
    group = np.where(rng.random(n) < A.TRD_SHARE, MOOD_GROUPS.index("trd"), group)
    return np.where(depression, group, 0).astype(np.int64)


def _arms(
    rng: np.random.Generator, site: SiteProfile, dx: IntArray, trd: BoolArray
) -> tuple[IntArray, NDArray[np.str_]]:
    n = dx.shape[0]
    weights = np.asarray(site.arm_weights)
    available = weights > 0
    trd_arm = rng.choice(len(ARMS), size=n, p=weights / weights.sum())
    # non-TRD depression: mostly a new antidepressant; some ECT or rTMS where offered
    other_w = np.asarray([0.88, 0.05, 0.0, 0.0, 0.07]) * available
    other_w[0] = 1.0 - other_w[1:].sum()
    other_arm = rng.choice(len(ARMS), size=n, p=other_w)
    bip_w = np.asarray([0.90, 0.05, 0.05, 0.0, 0.0]) * available
    bip_w[0] = 1.0 - bip_w[1:].sum()
    bip_arm = rng.choice(len(ARMS), size=n, p=bip_w)
    depression = np.isin(dx, [DIAGNOSES.index("F32"), DIAGNOSES.index("F33")])
    arm = np.where(trd, trd_arm, np.where(depression, other_arm, NO_ARM))
    arm = np.where(dx == DIAGNOSES.index("F31"), bip_arm, arm).astype(np.int64)
    protocols = site.rtms_protocols
    pw = np.asarray([_RTMS_WEIGHT[p] for p in protocols])
    chosen = np.asarray(protocols)[rng.choice(len(protocols), size=n, p=pw / pw.sum())]
    protocol = np.where(arm == ARMS.index("rtms"), chosen, "none")
    return arm, protocol.astype(np.str_)


def make_cohort(rng: np.random.Generator, site: SiteProfile, start: int, n: int) -> Cohort:
    """Persons ``start`` … ``start + n − 1`` of ``site`` (0-based within the site)."""
    mix = np.asarray(site.case_mix)
    dx = rng.choice(len(DIAGNOSES), size=n, p=mix / mix.sum()).astype(np.int64)
    psychosis = np.isin(dx, [0, 1])
    depression = np.isin(dx, [3, 4])
    psy_group = _psy_groups(rng, psychosis)
    mood_group = _mood_groups(rng, depression)
    trd = mood_group == MOOD_GROUPS.index("trd")
    arm, protocol = _arms(rng, site, dx, trd)
    female = rng.random(n) < np.asarray(_FEMALE)[dx]
    mean = np.asarray([a for a, _ in _AGE])[dx] + 3.0 * (psy_group >= 5) + 3.0 * (psy_group == 8)
    sd = np.asarray([s for _, s in _AGE])[dx]
    age0 = np.asarray(np.round(np.clip(rng.normal(mean, sd), 18.0, 80.0), 1), dtype=np.float64)
    index_year = rng.integers(2012, 2024, size=n)
    birth_year = index_year - np.floor(age0).astype(np.int64) - (rng.random(n) < 0.5)
    education = np.clip(np.round(rng.normal(np.asarray(_EDUCATION)[dx], 3.0)), 6, 24)
    width = max(6, len(str(site.n_persons)))
    ids = np.asarray([f"{site.prefix}-{i:0{width}d}" for i in range(start + 1, start + n + 1)])
    return Cohort(
        site=site,
        person_id=ids.astype(np.str_),
        dx=dx,
        female=female,
        age0=age0,
        index_year=index_year.astype(np.int64),
        birth_year=birth_year.astype(np.int64),
        education=education.astype(np.int64),
        psy_group=psy_group,
        psy_responder=rng.random(n) < A.NON_TRS_RESPONDER,
        mood_group=mood_group,
        arm=arm,
        rtms_protocol=protocol,
    )
