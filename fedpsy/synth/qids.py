"""QIDS-SR16 items, HAM-D17, MADRS and CGI-S for mood patients and healthy controls.

A target QIDS-SR16 total per visit comes from the baseline severity and the arm's
response (fraction of the baseline removed, :data:`fedpsy.synth.assumptions.ARM_RESPONSE`).
The sixteen items are then drawn so that the Rush et al. 2003 scoring — max(1–4) + 5 +
max(6–9) + 10 + 11 + 12 + 13 + 14 + max(15, 16) — gives exactly that total: the total is
first split over the nine scored domains (0–3 each), then each "max" domain is spread
over its items (one item carries the domain score, the others are lower). HAM-D17 and
MADRS follow the same latent severity by the linking in the assumptions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth import assumptions as A
from fedpsy.synth.persons import MOOD_GROUPS, Cohort
from fedpsy.synth.treatments import Treatments
from fedpsy.synth.visits import N_VISITS, Schedule

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ITEMS: tuple[str, ...] = tuple(f"qids_{i:02d}" for i in range(1, 17))
DOMAIN_WEIGHTS = np.asarray([1.2, 1.4, 0.8, 1.2, 1.0, 0.6, 1.3, 1.3, 0.8])
SINGLE_ITEM_DOMAINS = {1: 4, 3: 9, 4: 10, 5: 11, 6: 12, 7: 13}  # domain -> item index (0-based)
CGI_HAMD = ([0.0, 7.0, 13.0, 18.0, 23.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])


def rush_total(items: FloatArray) -> FloatArray:
    """QIDS-SR16 total by Rush 2003 scoring over the last axis (16 items); NaN if any missing."""
    sleep = items[..., 0:4].max(axis=-1)
    weight = items[..., 5:9].max(axis=-1)
    psychomotor = items[..., 14:16].max(axis=-1)
    singles = items[..., [4, 9, 10, 11, 12, 13]].sum(axis=-1)
    return np.asarray(sleep + weight + psychomotor + singles, dtype=float)


def split_domains(rng: np.random.Generator, total: IntArray) -> IntArray:
    """Nine domain scores (0–3) per entry of ``total`` (0–27) that sum to it exactly."""
    m = total.shape[0]
    weights = DOMAIN_WEIGHTS[None, :] * rng.gamma(4.0, 0.25, (m, 9))
    share = weights / weights.sum(axis=1, keepdims=True)
    domains = np.minimum(np.floor(total[:, None] * share), 3).astype(np.int64)
    rest = total - domains.sum(axis=1)
    while (rest > 0).any():
        keys = np.log(weights) + rng.gumbel(size=(m, 9))
        keys = np.where(domains < 3, keys, -np.inf)
        pick = np.argmax(keys, axis=1)
        add = rest > 0
        rows = np.flatnonzero(add)
        domains[rows, pick[rows]] += 1
        rest = rest - add
    return np.asarray(domains, dtype=np.int64)


def _spread(rng: np.random.Generator, score: IntArray, items: int, probs: list[float]) -> IntArray:
    """Spread a "max" domain score over ``items`` items: one carries it, others are lower."""
    m = score.shape[0]
    lead = rng.choice(np.arange(items), size=m, p=probs)
    lower = np.floor(rng.random((m, items)) * (score[:, None] + 1)).astype(np.int64)
    lower = np.minimum(lower, score[:, None])
    out = np.where(np.arange(items)[None, :] == lead[:, None], score[:, None], lower)
    return out.astype(np.int64)


def items_for(rng: np.random.Generator, total: IntArray) -> IntArray:
    """(m, 16) QIDS-SR16 items whose Rush total equals ``total``."""
    m = total.shape[0]
    domains = split_domains(rng, total)
    items = np.zeros((m, 16), dtype=np.int64)
    sleep = _spread(rng, domains[:, 0], 4, [0.35, 0.35, 0.2, 0.1])
    sleep[:, 3] = np.where(rng.random(m) < 0.7, np.minimum(sleep[:, 3], 0), sleep[:, 3])
    sleep[:, 3] = np.where(sleep.max(axis=1) < domains[:, 0], domains[:, 0], sleep[:, 3])
    items[:, 0:4] = sleep
    appetite = _spread(rng, domains[:, 2], 2, [0.5, 0.5])  # the two items of one direction
    gaining = rng.random(m) < 0.3
    items[:, 5] = np.where(gaining, 0, appetite[:, 0])  # decreased appetite
    items[:, 6] = np.where(gaining, appetite[:, 0], 0)  # increased appetite
    items[:, 7] = np.where(gaining, 0, appetite[:, 1])  # decreased weight
    items[:, 8] = np.where(gaining, appetite[:, 1], 0)  # increased weight
    items[:, 14:16] = _spread(rng, domains[:, 8], 2, [0.6, 0.4])
    for domain, item in SINGLE_ITEM_DOMAINS.items():
        items[:, item] = domains[:, domain]
    return items


def _baseline(rng: np.random.Generator, cohort: Cohort) -> FloatArray:
    n = cohort.n
    group = np.asarray(MOOD_GROUPS)[cohort.mood_group]
    depression = np.select(
        [group == "trd", group == "mild"],
        [np.clip(rng.normal(19.0, 3.0, n), 12, 27), np.clip(rng.normal(8.0, 1.5, n), 3, 10)],
        np.clip(rng.normal(15.0, 4.0, n), 6, 26),
    )
    bipolar = np.clip(rng.normal(14.0, 5.0, n), 3, 26)
    control = np.clip(np.abs(rng.normal(2.0, 1.5, n)), 0, 6)
    return np.asarray(
        np.where(cohort.has("F31"), bipolar, np.where(cohort.has("HC"), control, depression)),
        dtype=float,
    )


def make_qids(
    rng: np.random.Generator, cohort: Cohort, schedule: Schedule, treatments: Treatments
) -> dict[str, FloatArray]:
    """QIDS items, HAM-D17, MADRS and CGI-S (n, visits) for F31/F32/F33 and controls."""
    n = cohort.n
    baseline = _baseline(rng, cohort)
    fraction = np.zeros(n)
    course = np.zeros((n, N_VISITS))
    for arm, (share, good, poor, timing) in A.ARM_RESPONSE.items():
        who = treatments.response_arm == arm
        responder = rng.random(n) < share
        draw = np.where(responder, rng.normal(good, 0.1, n), rng.normal(poor, 0.12, n))
        fraction = np.where(who, np.clip(draw, -0.2, 0.98), fraction)
        course = np.where(who[:, None], np.asarray((0.0, *timing))[None, :], course)
    latent = baseline[:, None] * (1.0 - fraction[:, None] * course)
    noise = rng.normal(0.0, 1.5, (n, N_VISITS))
    noise[:, 0] = 0.0
    target = np.clip(np.round(latent + noise), 0, 27).astype(np.int64)

    rated = cohort.has("F31", "F32", "F33", "HC")[:, None] & schedule.present
    skipped = rng.random((n, N_VISITS)) < np.where(np.arange(N_VISITS) == 0, 0.01, 0.02)
    keep = rated & ~skipped
    rows, visits = np.nonzero(keep)
    items = np.full((n, N_VISITS, 16), np.nan)
    items[rows, visits] = items_for(rng, target[rows, visits])
    items[rng.random(items.shape) < 0.004] = np.nan
    result = {code: items[:, :, k] for k, code in enumerate(ITEMS)}

    hamd_latent = 1.25 * target + rng.normal(0.0, 2.5, target.shape)
    hamd = np.clip(np.round(hamd_latent), 0, 52)
    madrs = np.clip(np.round(1.3 * hamd_latent + rng.normal(0.0, 3.0, target.shape)), 0, 60)
    patient = rated & ~cohort.has("HC")[:, None]
    site = cohort.site
    result["hamd17_total"] = np.where(patient & site.rates_hamd & ~skipped, hamd, np.nan)
    result["madrs_total"] = np.where(patient & site.rates_madrs & ~skipped, madrs, np.nan)
    cgi = np.clip(
        np.round(np.interp(hamd_latent, *CGI_HAMD) + rng.normal(0, 0.4, hamd.shape)), 1, 7
    )
    result["cgi_s"] = np.where(patient & (rng.random(hamd.shape) > 0.02), cgi, np.nan)
    return result
