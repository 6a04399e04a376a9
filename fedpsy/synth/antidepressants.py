"""Antidepressant histories that make treatment-resistant depression derivable.

For F32/F33 (latent group from :mod:`fedpsy.synth.persons`):
- TRD: 2–4 adequate trials (>= 28 days, >= 1 DDD, adherence >= 0.8) of different
  antidepressants in sequence before baseline, sometimes after a near-miss; one in twelve
  has an unrecorded adherence on one trial. Patients starting pharmacotherapy switch to a
  new antidepressant on day 0; device and ketamine arms continue the last one. A quarter
  take an antipsychotic augmentation (aripiprazole, quetiapine) below 600 mg CPZ-eq.
- non-TRD: a first antidepressant started on day 0 (after at most one near-miss), a
  continued single drug (dose raised on day 0 or augmented), near-misses then a new drug,
  or two adequate trials with only mild symptoms left at baseline (``mild``).
Every new drug after baseline is one the person has not had, and non-TRD patients never
reach two adequate trials of different drugs, even counting the follow-up.
F31 and F20/F25 patients take a maintenance antidepressant now and then.
"""

from __future__ import annotations

import numpy as np

from fedpsy.synth import drugs as D
from fedpsy.synth.persons import MOOD_GROUPS, Cohort

K_SLOTS = 5
AD = D.DrugPool(D.ANTIDEPRESSANTS)
AUGMENT_DRUGS = np.asarray(["aripiprazole", "quetiapine"])
AUGMENT_DOSES = np.asarray([[2.0, 5.0, 10.0], [150.0, 150.0, 300.0]])
MAINTENANCE_DRUGS = np.asarray(["sertraline", "escitalopram", "bupropion"])
MAINTENANCE_DOSES = np.asarray([[50.0, 100.0], [10.0, 20.0], [150.0, 300.0]])


def _near(rng: np.random.Generator, n: int) -> D.IntArray:
    codes = np.asarray([D.SHORT, D.LOW_DOSE, D.LOW_ADHERENCE, D.NO_ADHERENCE])
    return codes[rng.choice(4, size=n, p=[0.4, 0.3, 0.15, 0.15])].astype(np.int64)


def slot_qualities(rng: np.random.Generator, group: D.IntArray) -> tuple[D.IntArray, D.IntArray]:
    """Chronological trial qualities before baseline (n, K_SLOTS; −1 = none) and counts."""
    n = group.shape[0]
    g = {name: group == MOOD_GROUPS.index(name) for name in MOOD_GROUPS}
    u = rng.random(n)
    extra = (g["trd"] & (rng.random(n) < 0.3)) | (g["first"] & (u < 0.3))
    adequate_n = np.asarray([2, 3, 4])[rng.choice(3, size=n, p=[0.5, 0.35, 0.15])]
    n_slots = np.select(
        [g["first"], g["continuing"], g["near_miss"], g["mild"], g["trd"]],
        [
            extra.astype(np.int64),
            np.ones(n, np.int64),
            1 + (u < 0.5),
            np.full(n, 2),
            adequate_n + extra,
        ],
        0,
    ).astype(np.int64)
    q = np.full((n, K_SLOTS), -1, dtype=np.int64)
    for j in range(K_SLOTS):
        near = _near(rng, n)
        value = np.select(
            [g["first"] | g["near_miss"], g["continuing"] | g["mild"], g["trd"]],
            [near, np.full(n, D.ADEQUATE), np.where((j == 0) & extra, near, D.ADEQUATE)],
            -1,
        )
        q[:, j] = np.where(j < n_slots, value, -1)
    flawed = np.flatnonzero(g["trd"] & (rng.random(n) < 0.08))
    at = extra + np.floor(rng.random(n) * adequate_n).astype(np.int64)
    q[flawed, at[flawed]] = D.NO_ADHERENCE
    return q, n_slots


def antidepressant_history(rng: np.random.Generator, cohort: Cohort, rows: D.Rows) -> None:
    """Add every person's antidepressant (and augmentation) rows to ``rows``."""
    n = cohort.n
    g = {name: cohort.mood_group == MOOD_GROUPS.index(name) for name in MOOD_GROUPS}
    pharmacotherapy = cohort.arm_is("pharmacotherapy")
    q, n_slots = slot_qualities(rng, cohort.mood_group)
    active = q >= 0
    # continuing: 60 % raise the dose from day 0 (a new abutting row), 40 % add augmentation
    raise_dose = g["continuing"] & (rng.random(n) < 0.6)
    ongoing_last = (g["continuing"] & ~raise_dose) | g["mild"] | (g["trd"] & ~pharmacotherapy)
    last_end = np.select(
        [g["first"] | g["near_miss"], g["trd"] & pharmacotherapy, ongoing_last | raise_dose],
        [-rng.integers(7, 121, size=n), -rng.integers(1, 15, size=n), np.full(n, -1)],
        -1,
    )
    duration = D.trial_durations(rng, q, 28, 60.0)
    start, end = D.place_backwards(rng, duration, active, last_end, gap=(7, 90))
    drug = AD.pick_distinct(rng, n, K_SLOTS + 1)
    slot_drug = drug[:, :K_SLOTS]
    dose = np.where(
        q == D.LOW_DOSE, AD.dose(rng, slot_drug, "near"), AD.dose(rng, slot_drug, "adequate")
    )
    adherence = D.trial_adherence(rng, q)
    is_last = np.arange(K_SLOTS)[None, :] == (n_slots - 1)[:, None]
    ongoing = active & is_last & ongoing_last[:, None]
    person = np.broadcast_to(np.arange(n)[:, None], q.shape)
    names = AD.names[slot_drug]
    o = ongoing
    rows.add(person[o], names[o], start[o], np.full(int(o.sum()), np.nan), dose[o], adherence[o])
    f = active & ~ongoing
    rows.add_split(rng, person[f], names[f], start[f], end[f], dose[f], adherence[f])

    rows_idx = np.arange(n)
    last_slot = np.maximum(n_slots - 1, 0)
    last_drug = slot_drug[rows_idx, last_slot]
    good = np.round(rng.uniform(0.8, 1.0, n), 2)
    r = np.flatnonzero(raise_dose)
    raised = np.maximum(AD.dose(rng, last_drug, "adequate"), dose[rows_idx, last_slot])
    rows.add(
        r,
        AD.names[last_drug[r]],
        np.zeros(r.size, np.int64),
        np.full(r.size, np.nan),
        raised[r],
        good[r],
    )
    new_drug = drug[:, K_SLOTS]
    starts_new = g["first"] | g["near_miss"] | (g["trd"] & pharmacotherapy)
    s = np.flatnonzero(starts_new)
    new_dose = AD.dose(rng, new_drug, "adequate")
    new_adherence = np.where(rng.random(n) < 0.1, np.nan, good)
    rows.add(
        s,
        AD.names[new_drug[s]],
        np.zeros(s.size, np.int64),
        np.full(s.size, np.nan),
        new_dose[s],
        new_adherence[s],
    )
    augment = (g["trd"] & (rng.random(n) < 0.25)) | (g["continuing"] & ~raise_dose)
    a = np.flatnonzero(augment)
    k = rng.integers(0, 2, size=n)
    aug_dose = AUGMENT_DOSES[k, rng.integers(0, 3, size=n)]
    aug_start = np.where(g["continuing"], 0, -rng.integers(14, 201, size=n))
    rows.add(a, AUGMENT_DRUGS[k[a]], aug_start[a], np.full(a.size, np.nan), aug_dose[a], good[a])
    _maintenance(rng, cohort, rows)


def _maintenance(rng: np.random.Generator, cohort: Cohort, rows: D.Rows) -> None:
    n = cohort.n
    share = np.where(cohort.has("F31"), 0.35, np.where(cohort.has("F20", "F25"), 0.2, 0.0))
    who = np.flatnonzero(rng.random(n) < share)
    k = rng.integers(0, len(MAINTENANCE_DRUGS), size=n)
    dose = MAINTENANCE_DOSES[k, rng.integers(0, 2, size=n)]
    start = -rng.integers(30, 701, size=n)
    adherence = np.where(rng.random(n) < 0.2, np.nan, np.round(rng.uniform(0.5, 1.0, n), 2))
    rows.add(
        who,
        MAINTENANCE_DRUGS[k[who]],
        start[who],
        np.full(who.size, np.nan),
        dose[who],
        adherence[who],
    )
