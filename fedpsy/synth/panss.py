"""PANSS items, CGI-S and BPRS totals for F20/F25 (and CGI-S for healthy controls).

Each person has a baseline severity per PANSS domain (mean item score) by latent group
and a fraction of the excess over 1 that treatment removes, reached along a time course
(non-TRS responders by week 12, clozapine responders by week 12–26, TRS/URS hardly at
all). Items add a fixed item offset, a stable person-item effect and visit noise, rounded
to 1–7. The TRRIP symptom criterion is made explicit: TRS patients have a positive item
>= 4 at baseline, ultra-resistant and clozapine-intolerant patients at every visit, and
clozapine responders none from week 12; "remitted" non-TRS patients have none.
CGI-S and BPRS follow from the PANSS total by published linking (see assumptions).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth.persons import PSY_GROUPS, Cohort
from fedpsy.synth.visits import N_VISITS, Schedule

FloatArray = NDArray[np.float64]

ITEMS: tuple[str, ...] = (
    *(f"panss_p{i}" for i in range(1, 8)),
    *(f"panss_n{i}" for i in range(1, 8)),
    *(f"panss_g{i}" for i in range(1, 17)),
)
POSITIVE = slice(0, 7)
OFFSETS = np.concatenate(
    [
        [0.6, 0.2, 0.5, -0.1, -0.6, 0.3, -0.7],
        [0.2, 0.3, 0.0, 0.3, -0.1, 0.1, -0.4],
        [-0.3, 0.4, -0.2, 0.1, -0.8, 0.3, 0.0, -0.6, 0.6, -1.0, 0.2, 0.7, 0.3, -0.5, 0.1, 0.2],
    ]
)
DOMAIN = np.asarray([0] * 7 + [1] * 7 + [2] * 16)
ANDREASEN = [
    ITEMS.index(c)
    for c in (
        "panss_p1",
        "panss_p2",
        "panss_p3",
        "panss_n1",
        "panss_n4",
        "panss_n6",
        "panss_g5",
        "panss_g9",
    )
]

# group -> (baseline domain means pos/neg/gen, final improvement pos/neg/gen)
_NON_TRS = ((3.0, 2.7, 2.3), (0.10, 0.05, 0.08))
_RESPONDER = ((3.0, 2.7, 2.3), (0.55, 0.25, 0.45))
_REMITTED = ((1.9, 2.5, 2.0), (0.10, 0.10, 0.10))
_CLZ_RESPONDER = ((3.5, 3.1, 2.6), (0.65, 0.20, 0.40))
_PERSISTING = ((3.5, 3.1, 2.6), (0.05, 0.02, 0.05))
_TIME_COURSE = {"fast": (0.0, 0.35, 0.75, 1.0, 1.05), "clozapine": (0.0, 0.15, 0.5, 0.9, 1.0)}
CGI_PANSS = ([30.0, 44.0, 58.0, 75.0, 95.0, 116.0, 140.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])


def _profiles(cohort: Cohort) -> tuple[FloatArray, FloatArray, FloatArray]:
    g = cohort.psy_group
    name = np.asarray(PSY_GROUPS)[g]
    responder = np.isin(name, ["early", "one_adequate", "inadequate"]) & cohort.psy_responder
    profile = np.select(
        [responder, name == "remitted", name == "clozapine_responder", cohort.trs],
        [1, 2, 3, 4],
        0,
    )
    table = [_NON_TRS, _RESPONDER, _REMITTED, _CLZ_RESPONDER, _PERSISTING]
    base = np.asarray([t[0] for t in table])[profile]
    improve = np.asarray([t[1] for t in table])[profile]
    course = np.where(
        (profile == 3)[:, None],
        np.asarray(_TIME_COURSE["clozapine"]),
        np.asarray(_TIME_COURSE["fast"]),
    )
    return base, improve, course


def _force_positive(items: FloatArray, rows: NDArray[np.bool_], rng: np.random.Generator) -> None:
    """Make at least one positive item >= 4 where ``rows`` (n, visits) is set."""
    pos = items[:, :, POSITIVE]
    short = rows & (pos.max(axis=2) < 4)
    which = np.where(rng.random(short.shape) < 0.5, 0, 2)  # delusions or hallucinations
    lift = 4 + (rng.random(short.shape) < 0.4)
    i, v = np.nonzero(short)
    items[i, v, which[i, v]] = lift[i, v]


def make_panss(
    rng: np.random.Generator, cohort: Cohort, schedule: Schedule
) -> tuple[dict[str, FloatArray], NDArray[np.bool_]]:
    """Item, CGI-S and BPRS matrices (n, visits; NaN where not rated) and where the
    Andreasen et al. 2005 severity criterion (eight items <= 3) is met."""
    n = cohort.n
    base, improve, course = _profiles(cohort)
    domain_base = rng.normal(base, [0.7, 0.7, 0.45])
    final = np.clip(rng.normal(improve, 0.12), -0.1, 0.95)
    person_item = rng.normal(0.0, 0.45, (n, 1, len(ITEMS)))
    level = domain_base[:, None, DOMAIN] + OFFSETS[None, None, :] + person_item - 1.0
    shrink = 1.0 - final[:, None, DOMAIN] * course[:, :, None]
    raw = 1.0 + np.maximum(level, 0.0) * shrink + rng.normal(0.0, 0.45, (n, N_VISITS, len(ITEMS)))
    items = np.clip(np.round(raw), 1.0, 7.0)

    name = np.asarray(PSY_GROUPS)[cohort.psy_group]
    visit = np.arange(N_VISITS)[None, :]
    persisting = np.isin(name, ["urs_initiating", "urs_established", "clozapine_intolerant"])
    _force_positive(items, (cohort.trs[:, None] & (visit == 0)) | persisting[:, None], rng)
    responded = (name == "clozapine_responder")[:, None] & (
        (visit >= 3) | ((visit == 2) & (rng.random((n, 1)) < 0.5))
    )
    remitted = (name == "remitted")[:, None] & (visit >= 0)
    calm = (responded | remitted)[:, :, None] & (np.arange(len(ITEMS)) < 7)[None, None, :]
    items = np.where(calm, np.minimum(items, 3.0), items)

    total = items.sum(axis=2)
    rated = cohort.has("F20", "F25")[:, None] & schedule.present
    skipped = rng.random((n, N_VISITS)) < np.where(visit == 0, 0.01, 0.02)
    item_missing = rng.random(items.shape) < 0.004
    out_items = np.where((rated & ~skipped)[:, :, None] & ~item_missing, items, np.nan)
    result = {code: out_items[:, :, k] for k, code in enumerate(ITEMS)}

    cgi = np.interp(total, *CGI_PANSS) + rng.normal(0.0, 0.4, total.shape)
    cgi = np.clip(np.round(cgi), 1.0, 7.0)
    control = cohort.has("HC")[:, None] & schedule.present
    cgi_missing = rng.random((n, N_VISITS)) < 0.02
    result["cgi_s"] = np.where(rated & ~cgi_missing, cgi, np.where(control, 1.0, np.nan))
    bprs = np.clip(np.round(0.6 * total - 4.0 + rng.normal(0.0, 3.0, total.shape)), 18.0, 126.0)
    result["bprs_total"] = np.where(rated & ~skipped & cohort.site.rates_bprs, bprs, np.nan)
    andreasen = (items[:, :, ANDREASEN] <= 3).all(axis=2) & rated & ~skipped
    return result, andreasen
