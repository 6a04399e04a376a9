"""Antipsychotic histories that make TRRIP treatment resistance derivable.

For F20/F25 (latent group from :mod:`fedpsy.synth.persons`):
- TRS: 2–4 adequate trials of different non-clozapine antipsychotics (>= 42 days, >= 600
  mg CPZ-eq, adherence >= 0.8) in sequence before baseline, sometimes after a near-miss
  trial, then clozapine: started around baseline with titration (responders, intolerant
  patients, part of the ultra-resistant) or established long before (ultra-resistant).
  One in ten has a recording flaw on one adequate trial (no adherence, or adherence < 0.8).
- non-TRS: at most one adequate trial plus near-misses (28–41 days, one dose step under
  600 CPZ-eq, poor or unrecorded adherence); a "remitted" subgroup has two adequate trials
  but no persisting positive symptoms at baseline. Most continue a current drug.
F31 patients take a maintenance antipsychotic; TRD augmentation is in
:mod:`fedpsy.synth.antidepressants`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth import drugs as D
from fedpsy.synth.persons import PSY_GROUPS, Cohort

K_SLOTS = 5
AP = D.DrugPool(D.ANTIPSYCHOTICS)
BIPOLAR_DRUGS = np.asarray(["quetiapine", "aripiprazole", "olanzapine", "lurasidone"])
BIPOLAR_DOSES = np.asarray([[300, 400, 600], [10, 15, 15], [10, 10, 15], [37, 74, 111]], float)


@dataclass(frozen=True)
class ClozapineCourse:
    """Per person: clozapine start day (NaN: never) and whether it is taken in follow-up."""

    start: NDArray[np.float64]
    during_followup: NDArray[np.bool_]


def _near(rng: np.random.Generator, n: int, allow_short: bool) -> D.IntArray:
    if allow_short:
        codes, p = [D.SHORT, D.LOW_DOSE, D.LOW_ADHERENCE, D.NO_ADHERENCE], [0.4, 0.3, 0.15, 0.15]
    else:
        codes, p = list(D.NOT_SHORT), [0.5, 0.25, 0.25]
    return np.asarray(codes, dtype=np.int64)[rng.choice(len(codes), size=n, p=p)]


def slot_qualities(rng: np.random.Generator, group: D.IntArray) -> tuple[D.IntArray, D.IntArray]:
    """Chronological trial qualities (n, K_SLOTS; −1 = no trial) and the number of trials."""
    n = group.shape[0]
    g = {name: group == PSY_GROUPS.index(name) for name in PSY_GROUPS}
    trs = group >= PSY_GROUPS.index("clozapine_responder")
    u = rng.random(n)
    extra = trs & (rng.random(n) < 0.3)
    adequate_n = np.asarray([2, 3, 4])[rng.choice(3, size=n, p=[0.55, 0.35, 0.10])]
    n_slots = np.select(
        [g["early"] | g["inadequate"], g["one_adequate"] | g["remitted"], trs],
        [1 + (u < 0.4), 2 + (u < 0.4), adequate_n + extra],
        0,
    ).astype(np.int64)
    last = n_slots - 1
    adequate_at = np.floor(rng.random(n) * np.maximum(n_slots, 1)).astype(np.int64)
    current_q = np.asarray([D.ADEQUATE, *D.NOT_SHORT])[
        rng.choice(4, size=n, p=[0.5, 0.25, 0.1, 0.15])
    ]
    q = np.full((n, K_SLOTS), -1, dtype=np.int64)
    for j in range(K_SLOTS):
        near_any = _near(rng, n, allow_short=True)
        near_now = _near(rng, n, allow_short=False)
        near_j = np.where(j == last, near_now, near_any)
        early = np.where(j == last, current_q, near_any)
        one = np.where(j == adequate_at, D.ADEQUATE, near_j)
        remitted = np.where((j == 0) & (n_slots == 3) & (u < 0.2), near_any, D.ADEQUATE)
        resistant = np.where((j == 0) & extra, near_any, D.ADEQUATE)
        value = np.select(
            [g["early"], g["one_adequate"], g["remitted"], g["inadequate"], trs],
            [early, one, remitted, near_j, resistant],
            -1,
        )
        q[:, j] = np.where(j < n_slots, value, -1)
    flawed = trs & (rng.random(n) < 0.10)
    at = extra + np.floor(rng.random(n) * adequate_n).astype(np.int64)
    flaw = np.where(rng.random(n) < 0.7, D.NO_ADHERENCE, D.LOW_ADHERENCE)
    rows = np.flatnonzero(flawed)
    q[rows, at[rows]] = flaw[rows]
    return q, n_slots


def _clozapine(
    rng: np.random.Generator, cohort: Cohort, rows: D.Rows
) -> tuple[ClozapineCourse, D.IntArray, D.IntArray]:
    """Clozapine rows; returns the course and each person's clozapine start and last-trial end."""
    n, group = cohort.n, cohort.psy_group
    idx = np.arange(n)
    is_ = {name: group == PSY_GROUPS.index(name) for name in PSY_GROUPS}
    initiating = is_["clozapine_responder"] | is_["urs_initiating"]
    c = rng.integers(0, 8, size=n)
    established_start = -rng.integers(120, 1501, size=n)
    start = np.where(is_["urs_established"], established_start, c)
    adherence = np.where(rng.random(n) < 0.05, np.nan, np.round(rng.uniform(0.8, 1.0, n), 2))
    titrating = initiating | is_["clozapine_intolerant"]
    t = np.flatnonzero(titrating)
    rows.add(
        idx[t],
        np.asarray("clozapine"),
        c[t],
        (c[t] + 6).astype(float),
        rng.choice([50.0, 100.0, 150.0], size=t.size),
        adherence[t],
    )
    i = np.flatnonzero(initiating)
    rows.add(
        idx[i],
        np.asarray("clozapine"),
        c[i] + 7,
        (c[i] + 20).astype(float),
        rng.choice([200.0, 250.0], size=i.size),
        adherence[i],
    )
    maint = np.where(
        is_["clozapine_responder"],
        rng.choice([300.0, 350, 400, 450], size=n),
        rng.choice([400.0, 450, 500, 600], size=n),
    )
    end = np.where(rng.random(n) < 0.55, np.nan, c + 21 + rng.integers(120, 701, size=n))
    rows.add(idx[i], np.asarray("clozapine"), c[i] + 21, end[i], maint[i], adherence[i])
    e = np.flatnonzero(is_["urs_established"])
    est_end = np.where(rng.random(n) < 0.7, np.nan, rng.integers(180, 701, size=n))
    rows.add(idx[e], np.asarray("clozapine"), start[e], est_end[e], maint[e], adherence[e])
    intol = np.flatnonzero(is_["clozapine_intolerant"])
    stopped = rng.random(n) < 0.5
    low_end = np.where(stopped, c + 7 + rng.integers(5, 51, size=n), np.nan)
    low_dose = np.where(stopped, 200.0, rng.choice([150.0, 200.0, 250.0], size=n))
    rows.add(
        idx[intol],
        np.asarray("clozapine"),
        c[intol] + 7,
        low_end[intol],
        low_dose[intol],
        adherence[intol],
    )
    urs = np.flatnonzero(cohort.urs & (rng.random(n) < 0.3))
    aug_start = start + rng.integers(60, 121, size=n)
    rows.add(
        idx[urs],
        np.asarray("aripiprazole"),
        aug_start[urs],
        np.full(urs.size, np.nan),
        rng.choice([10.0, 15.0], size=urs.size),
        adherence[urs],
    )
    last_end = np.where(
        is_["urs_established"], start - rng.integers(7, 61, size=n), c + rng.integers(0, 15, size=n)
    )
    takes = titrating | is_["urs_established"]
    course = ClozapineCourse(
        start=np.where(takes, start.astype(float), np.nan),
        during_followup=initiating
        | is_["urs_established"]
        | (is_["clozapine_intolerant"] & ~stopped),
    )
    return course, start.astype(np.int64), last_end.astype(np.int64)


def antipsychotic_history(
    rng: np.random.Generator, cohort: Cohort, rows: D.Rows
) -> ClozapineCourse:
    """Add every person's antipsychotic rows to ``rows``; return the clozapine course."""
    n = cohort.n
    course, _, clz_last_end = _clozapine(rng, cohort, rows)
    q, n_slots = slot_qualities(rng, cohort.psy_group)
    active = q >= 0
    trs = cohort.trs
    current = ~trs & (n_slots > 0) & (rng.random(n) < 0.85)
    last_end = np.where(trs, clz_last_end, np.where(current, -1, -rng.integers(14, 201, size=n)))
    duration = D.trial_durations(rng, q, 42, 80.0)
    start, end = D.place_backwards(rng, duration, active, last_end, gap=(20, 150))
    drug = AP.pick_distinct(rng, n, K_SLOTS)
    dose = np.where(q == D.LOW_DOSE, AP.dose(rng, drug, "near"), AP.dose(rng, drug, "adequate"))
    adherence = D.trial_adherence(rng, q)
    ongoing = active & current[:, None] & (np.arange(K_SLOTS)[None, :] == (n_slots - 1)[:, None])
    person = np.broadcast_to(np.arange(n)[:, None], q.shape)
    names = AP.names[drug]
    o = ongoing
    rows.add(person[o], names[o], start[o], np.full(int(o.sum()), np.nan), dose[o], adherence[o])
    f = active & ~ongoing
    rows.add_split(rng, person[f], names[f], start[f], end[f], dose[f], adherence[f])
    titrate = active & (q != D.LOW_DOSE) & (rng.random(q.shape) < 0.35)
    length = rng.integers(7, 15, size=q.shape)
    near = AP.dose(rng, drug, "near")
    t = titrate
    rows.add(
        person[t],
        names[t],
        (start - length)[t],
        (start - 1)[t].astype(float),
        near[t],
        adherence[t],
    )
    _bipolar(rng, cohort, rows)
    return course


def _bipolar(rng: np.random.Generator, cohort: Cohort, rows: D.Rows) -> None:
    n = cohort.n
    who = np.flatnonzero(cohort.has("F31") & (rng.random(n) < 0.8))
    k = rng.integers(0, len(BIPOLAR_DRUGS), size=n)
    dose = BIPOLAR_DOSES[k, rng.integers(0, 3, size=n)]
    start = -rng.integers(30, 1501, size=n)
    end = np.where(rng.random(n) < 0.85, np.nan, rng.integers(30, 401, size=n))
    adherence = np.where(rng.random(n) < 0.2, np.nan, np.round(rng.uniform(0.5, 1.0, n), 2))
    rows.add(who, BIPOLAR_DRUGS[k[who]], start[who], end[who], dose[who], adherence[who])
