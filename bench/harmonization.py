"""ComBat and k-means: federated time versus the pooled reference, same run.

ComBat: 3 sites × 20,000 persons × 30 variables with site offsets and an age covariate,
distributed ComBat (in-process federation: every step through its wire models) versus
neuroCombat on the pooled rows. k-means (k = 4) on the same sites: federated Lloyd from
federated seeding versus scikit-learn ``KMeans(n_init=1, algorithm="lloyd")`` on the
pooled rows. The in-process federation measures the algorithms without network time.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from bench.report import emit
from tests.support.federation import run_request, split_sites

PERSONS = int(os.environ.get("FEDPSY_BENCH_COMBAT_PERSONS", "20000"))
VARIABLES = int(os.environ.get("FEDPSY_BENCH_COMBAT_VARIABLES", "30"))


def _data(seed: int = 5) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    n = 3 * PERSONS
    site = np.repeat(["amsterdam", "berlin", "copenhagen"], PERSONS)
    age = rng.uniform(18, 70, n)
    codes = [f"v{j:02d}" for j in range(VARIABLES)]
    shift = {"amsterdam": 0.0, "berlin": 0.8, "copenhagen": -0.5}
    scale = {"amsterdam": 1.0, "berlin": 1.3, "copenhagen": 0.8}
    frame = {"age": age, "batch": site}
    for j, code in enumerate(codes):
        base = 10 + 0.02 * age + rng.normal(0, 1, n) + 0.1 * j
        frame[code] = np.array([shift[s] for s in site]) + base * np.array([scale[s] for s in site])
    return pd.DataFrame(frame), codes


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run() -> None:
    from neuroCombat import neuroCombat
    from sklearn.cluster import KMeans

    data, codes = _data()
    sources = split_sites(
        data.drop(columns="batch"), [1, 1, 1], 1, names=["amsterdam", "berlin", "copenhagen"]
    )
    pooled = pd.concat(
        [s.frame([*codes, "age", "site"], "baseline", None) for s in sources.values()],
        ignore_index=True,
    )
    rows: list[dict[str, Any]] = []
    fed_s, _ = _timed(
        lambda: run_request(
            sources,
            {
                "analysis": "combat",
                "variables": codes,
                "batch": "site",
                "covariates": ["age"],
                "store": False,
            },
        )
    )
    ref_s, _ = _timed(
        lambda: neuroCombat(
            dat=pooled[codes].to_numpy().T,
            covars=pooled[["age", "site"]].astype({"site": str}).reset_index(drop=True),
            batch_col="site",
            continuous_cols=["age"],
        )
    )
    rows.append(
        {
            "analysis": f"combat ({VARIABLES} variables)",
            "persons": 3 * PERSONS,
            "federated s": fed_s,
            "pooled s": ref_s,
            "ratio": fed_s / ref_s,
        }
    )
    few = codes[:4]
    fed_s, _ = _timed(
        lambda: run_request(sources, {"analysis": "kmeans", "variables": few, "k": 4, "seed": 3})
    )
    ref_s, _ = _timed(
        lambda: KMeans(4, n_init=1, algorithm="lloyd", random_state=3).fit(pooled[few].to_numpy())
    )
    rows.append(
        {
            "analysis": "kmeans (k=4, 4 variables)",
            "persons": 3 * PERSONS,
            "federated s": fed_s,
            "pooled s": ref_s,
            "ratio": fed_s / ref_s,
        }
    )
    emit(
        "harmonization",
        "ComBat and k-means: federated vs pooled, same run",
        ["analysis", "persons", "federated s", "pooled s", "ratio"],
        rows,
        [
            "federated: in-process federation (wire models, no network); pooled: neuroCombat / "
            "scikit-learn KMeans on the stacked rows",
            "k-means: federated seeding (weighted k-means++ over sites' candidates, restarts) "
            "and Lloyd vs one k-means++ start and Lloyd on the pooled rows",
        ],
    )
