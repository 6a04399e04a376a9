"""1H-MRS: true metabolite levels per person, scanner calibration and the mrs_measure rows.

True levels (water-referenced, i.u.) have a person factor shared across regions (r ~ 0.36),
group effects in SD units (TRS: dACC Glu +0.5, Gln +0.3; mPFC Glu +0.25, Gln +0.15;
depression: dACC/mPFC Glu and Gln −0.2, GABA −0.3) and age effects (NAA −0.02 SD and
Glu −0.01 SD per year over 40). A scanner turns a true level into a measured one by its
own scale and shift (:class:`fedpsy.synth.sites.Scanner`) plus 4 % measurement noise.
Glx is written as the sum of the written Glu and Gln. Sources are in the assumptions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fedpsy.synth.persons import Cohort
from fedpsy.synth.sites import Scanner
from fedpsy.synth.visits import Schedule
from schemas.cdm import METABOLITES, REGIONS

FloatArray = NDArray[np.float64]

MEASURED: tuple[str, ...] = ("Glu", "Gln", "NAA", "GABA")
MEAN = np.asarray([[11.0, 3.5, 10.5, 1.9], [10.8, 3.4, 10.2, 1.8], [9.5, 2.8, 11.2, 1.6]])
SD = np.asarray([1.1, 0.7, 0.9, 0.3])
TRS_EFFECT = np.asarray([[0.5, 0.3, 0.0, 0.0], [0.25, 0.15, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
DEPRESSION_EFFECT = np.asarray([[-0.2, -0.2, 0.0, -0.3], [-0.2, -0.2, 0.0, -0.3], [0, 0, 0, -0.3]])
# CRLB (%) = 5 + excess × lognormal; excess at 3 T, ×0.6 at 7 T, ×0.9 in OCC; at most 20
CRLB_EXCESS_3T = {"Glu": 2.5, "Gln": 9.0, "Glx": 1.8, "NAA": 0.8, "GABA": 6.0}
CRLB_RANGE = (5.0, 20.0)
RESCAN_SHARE = 0.25
REGION_FAILURE = 0.05
HC_SCAN_SHARE = 0.9


def true_levels(
    rng: np.random.Generator,
    trs: NDArray[np.bool_],
    depression: NDArray[np.bool_],
    age: FloatArray,
) -> FloatArray:
    """True levels (n, region, measured metabolite) before any scanner effect."""
    n = trs.shape[0]
    common = rng.normal(size=(n, 1, len(MEASURED)))
    specific = rng.normal(size=(n, len(REGIONS), len(MEASURED)))
    z = 0.6 * common + 0.8 * specific
    z = z + trs[:, None, None] * TRS_EFFECT[None] + depression[:, None, None] * DEPRESSION_EFFECT
    over40 = np.maximum(age - 40.0, 0.0)[:, None]
    z[:, :, 2] -= 0.02 * over40
    z[:, :, 0] -= 0.01 * over40
    return np.asarray(np.maximum(MEAN[None] + z * SD[None, None, :], 0.05), dtype=float)


def measure(rng: np.random.Generator, true: FloatArray, scanner: Scanner) -> FloatArray:
    """What ``scanner`` reports for ``true`` levels (same shape), rounded to 0.001."""
    scale = np.asarray(scanner.scale)[None, None, :]
    shift = (np.asarray(scanner.shift_sd) * SD)[None, None, :]
    noisy = true * rng.normal(1.0, 0.04, true.shape)
    return np.asarray(np.round(np.maximum(scale * noisy + shift, 0.05), 3), dtype=float)


def _crlb(rng: np.random.Generator, m: int, field: float, region: str) -> FloatArray:
    excess = np.asarray([CRLB_EXCESS_3T[x] for x in METABOLITES])
    excess = excess * (0.6 if field >= 7.0 else 1.0) * (0.9 if region == "OCC" else 1.0)
    value = CRLB_RANGE[0] + excess[None, :] * rng.lognormal(0.0, 0.4, (m, len(METABOLITES)))
    return np.asarray(np.round(np.clip(value, *CRLB_RANGE), 1), dtype=float)


def mrs_rows(rng: np.random.Generator, cohort: Cohort, schedule: Schedule) -> pd.DataFrame:
    """mrs_measure rows: baseline scans for part of the site, some repeated at week 26."""
    n, site = cohort.n, cohort.site
    share = np.where(cohort.has("HC"), HC_SCAN_SHARE, site.mrs_share)
    scanned = rng.random(n) < share
    rescanned = scanned & schedule.present[:, 4] & (rng.random(n) < RESCAN_SHARE)
    shares = np.asarray([s.share for s in site.scanners])
    scanner_of = rng.choice(len(site.scanners), size=n, p=shares / shares.sum())
    depression = cohort.has("F32", "F33")
    true = true_levels(rng, cohort.trs, depression, cohort.age0)
    drift = rng.normal(1.0, 0.03, true.shape)  # true change over six months
    frames: list[pd.DataFrame] = []
    for visit, who, level in (("baseline", scanned, true), ("week26", rescanned, true * drift)):
        for k, scanner in enumerate(site.scanners):
            idx = np.flatnonzero(who & (scanner_of == k))
            if idx.size:
                frames.append(_session_rows(rng, cohort, idx, visit, level[idx], scanner))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    person_order = np.searchsorted(cohort.person_id, out["person_id"].to_numpy())
    visit_order = (out["visit"] == "week26").to_numpy().astype(np.int64)
    region_order = out["region"].map({r: i for i, r in enumerate(REGIONS)}).to_numpy()
    metabolite_order = out["metabolite"].map({m: i for i, m in enumerate(METABOLITES)}).to_numpy()
    order = np.lexsort((metabolite_order, region_order, visit_order, person_order))
    return out.iloc[order].reset_index(drop=True)


def _session_rows(
    rng: np.random.Generator,
    cohort: Cohort,
    idx: NDArray[np.int64],
    visit: str,
    true: FloatArray,
    scanner: Scanner,
) -> pd.DataFrame:
    measured = measure(rng, true, scanner)
    m = idx.size
    frames = []
    for r, region in enumerate(REGIONS):
        ok = rng.random(m) >= REGION_FAILURE
        glu, gln, naa, gaba = (measured[:, r, j] for j in range(4))
        values = np.stack([glu, gln, np.round(glu + gln, 3), naa, gaba], axis=1)[ok]
        crlb = _crlb(rng, m, scanner.field_strength_t, region)[ok]
        k = int(ok.sum())
        te = np.asarray([scanner.te_ms] * 4 + [scanner.gaba_te_ms])
        frames.append(
            pd.DataFrame(
                {
                    "person_id": np.repeat(cohort.person_id[idx[ok]], 5),
                    "visit": visit,
                    "region": region,
                    "metabolite": np.tile(np.asarray(METABOLITES), k),
                    "value": values.reshape(-1),
                    "unit": "i.u.",
                    "reference": "water",
                    "crlb_pct": crlb.reshape(-1),
                    "scanner_id": scanner.scanner_id,
                    "field_strength_t": int(scanner.field_strength_t),
                    "te_ms": np.tile(te, k).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
