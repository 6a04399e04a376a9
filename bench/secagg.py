"""Secure aggregation overhead: secure versus cleartext sums, 3, 10 and 20 nodes, same run.

For each consortium size a real local consortium is built (one store and one HTTP server
per node on loopback, signed requests; ``tests.support.consortium``), and ``summary`` and
``glm`` (binomial, 4 coefficients) are run through the coordinator's job runner with the
HTTP federation in both modes. Secure runs include the session setup (key fetch and
relay, round-1 shares) and, per sum, the unmasking round. Each cell is the median of
``FEDPSY_BENCH_REPEATS`` runs (default 3). Target: secure ≤ 2× cleartext at 10 nodes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.report import emit
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.jobs.runner import run_request
from coordinator.store import registry
from tests.support.consortium import LocalConsortium

NODES = [int(n) for n in os.environ.get("FEDPSY_BENCH_SECAGG_NODES", "3,10,20").split(",")]
PERSONS = int(os.environ.get("FEDPSY_BENCH_SECAGG_PERSONS", "300"))
REPEATS = int(os.environ.get("FEDPSY_BENCH_REPEATS", "3"))
REQUESTS: dict[str, dict[str, Any]] = {
    "summary": {"analysis": "summary", "variables": ["age", "madrs_total", "hamd17_total"]},
    "glm": {
        "analysis": "glm",
        "formula": "ketamine ~ age + sex + madrs_total",
        "family": "binomial",
    },
}


def _sites(
    count: int, persons: int, seed: int = 11
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(count):
        ids = [f"S{k:02d}-{i:05d}" for i in range(persons)]
        person = pd.DataFrame(
            {
                "person_id": ids,
                "sex": rng.choice(["F", "M"], persons),
                "birth_year": rng.integers(1950, 2005, persons),
            }
        )
        age = rng.uniform(18, 80, persons).round(1)
        madrs = np.clip(rng.normal(24 + k % 5 + 0.1 * age, 6), 0, 60).round()
        logit = -4 + 0.02 * age + 0.08 * madrs
        obs = pd.DataFrame(
            {
                "person_id": ids,
                "visit": "baseline",
                "age": age,
                "madrs_total": madrs,
                "hamd17_total": np.clip(0.6 * madrs + rng.normal(0, 3, persons), 0, 52).round(),
                "ketamine": (rng.random(persons) < 1 / (1 + np.exp(-logit))).astype(int),
            }
        )
        out[f"site{k:02d}"] = (person, obs)
    return out


async def _timed(c: LocalConsortium, request: dict[str, Any], secure: bool) -> float:
    nodes = registry.list_nodes(c.coordinator.engine)
    hashes = {n.site: dict(n.variable_hashes) for n in nodes}
    async with httpx.AsyncClient() as client:

        def federation_for(sites: list[str]) -> HttpFederation:
            return HttpFederation(
                [Endpoint(n.site, n.url, n.fingerprint) for n in nodes if n.site in sites],
                c.coordinator.key,
                "bench",
                str(request["analysis"]),
                client,
                secure=secure,
            )

        start = time.perf_counter()
        result = await run_request(request, hashes, federation_for, "bench")
        elapsed = time.perf_counter() - start
    if result.status != "ok" or result.privacy.secure_aggregation is not secure:
        raise RuntimeError(f"benchmark run failed: {result}")
    return elapsed


def run() -> None:
    rows: list[dict[str, Any]] = []
    for count in NODES:
        with tempfile.TemporaryDirectory() as name:
            consortium = LocalConsortium.build(Path(name), _sites(count, PERSONS))
            try:
                for analysis, request in REQUESTS.items():
                    times: dict[bool, list[float]] = {False: [], True: []}
                    asyncio.run(_timed(consortium, request, True))  # warm up both paths
                    for _ in range(REPEATS):
                        for secure in (False, True):
                            times[secure].append(asyncio.run(_timed(consortium, request, secure)))
                    clear = statistics.median(times[False])
                    secure_s = statistics.median(times[True])
                    rows.append(
                        {
                            "nodes": count,
                            "analysis": analysis,
                            "clear s": clear,
                            "secure s": secure_s,
                            "ratio": secure_s / clear,
                        }
                    )
            finally:
                consortium.close()
    emit(
        "secagg",
        "Secure aggregation vs cleartext sums (wall time, loopback HTTP)",
        ["nodes", "analysis", "clear s", "secure s", "ratio"],
        rows,
        [
            f"{PERSONS} persons per node; median of {REPEATS} runs; all nodes in one process",
            "ratio = secure ÷ cleartext wall time (target ≤ 2 at 10 nodes)",
        ],
    )
