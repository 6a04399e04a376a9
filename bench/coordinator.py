"""Federated analyses end to end versus the pooled fit, and coordinator fan-out scaling.

**Federated vs pooled.** Three ``fedpsy synth`` sites of 50,000 persons on average (sizes
vary 0.6–1.4×) are loaded into node stores and served as separate ``fedpsy node serve``
processes on loopback; a coordinator signs and fans out every step over real HTTP. The
wall time of ``summary`` (three variables) and of ``glm`` (binomial
``trs ~ age + sex + panss_total``, Newton/IRLS from the intercept-only start, with its
rounds to convergence) is set against the pooled reference on the same rows held in one
process: numpy's mean and variance, and statsmodels' GLM fit (design built with
formulaic, as the nodes build it). The federated coefficients are checked against
statsmodels' (largest relative difference).

**Fan-out.** 20 small sites (200 persons on average), each its own process; the latency
of ``summary`` (age and years of education) through a coordinator that has 1, 5, 10 or
20 of them registered (target: 20 nodes ≤ 2 × one node). On a machine with fewer cores
than nodes the node processes share the CPUs, so the 20-node figure includes that
contention, not only the fan-out: the table shows the node processes' CPU time per job
and that time divided by the CPU count, the least latency the machine allows.

``FEDPSY_BENCH_SITE_PERSONS`` (default 50000), ``FEDPSY_BENCH_FANOUT`` (default
``1,5,10,20``), ``FEDPSY_BENCH_FANOUT_PERSONS`` (default 200) and ``FEDPSY_BENCH_REPEAT``
(default 5; at most 2 for the large sites) scale the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from formulaic import model_matrix

from bench.consortium import ServedNodes, Site, build_sites, trust
from bench.report import emit
from coordinator.service import Coordinator
from node.data.frame_store import StoreFrameSource
from node.site import NodeSite

SITE_PERSONS = int(os.environ.get("FEDPSY_BENCH_SITE_PERSONS", "50000"))
FANOUT = [int(k) for k in os.environ.get("FEDPSY_BENCH_FANOUT", "1,5,10,20").split(",")]
FANOUT_PERSONS = int(os.environ.get("FEDPSY_BENCH_FANOUT_PERSONS", "200"))
REPEAT = int(os.environ.get("FEDPSY_BENCH_REPEAT", "5"))
VARIABLES = ["age", "panss_total", "madrs_total"]
FORMULA = "trs ~ age + sex + panss_total"
SUMMARY = {"analysis": "summary", "variables": VARIABLES}
GLM = {"analysis": "glm", "formula": FORMULA, "family": "binomial"}
FANOUT_SUMMARY = {"analysis": "summary", "variables": ["age", "education_years"]}
"""Variables every person has, so that no small site refuses a sparse one's counts."""


def _timed(coordinator: Coordinator, request: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    result = asyncio.run(coordinator.run(dict(request)))
    seconds = time.perf_counter() - start
    if result["status"] != "ok":
        raise RuntimeError(f"{request['analysis']} did not succeed: {result.get('reason')}")
    return seconds, result


def _coordinator(root: Path, name: str, sites: list[Site], urls: dict[str, str]) -> Coordinator:
    coordinator = Coordinator.open(root / name)
    for site in sites:
        coordinator.add_node(site.name, urls[site.name])
    return coordinator


def _pooled_rows(sites: list[Site]) -> pd.DataFrame:
    """Every site's baseline rows of the analysed variables, as the nodes read them."""
    frames = []
    for site in sites:
        node = NodeSite.open(site.root)
        try:
            source = StoreFrameSource(node.engine, site.name, node.dictionary)
            frames.append(source.frame([*VARIABLES, "trs", "sex"], "baseline", None))
        finally:
            node.close()
    return pd.concat(frames, ignore_index=True)


def _pooled_summary(rows: pd.DataFrame) -> float:
    start = time.perf_counter()
    for code in VARIABLES:
        x = rows[code].to_numpy(dtype=float)
        x = x[~np.isnan(x)]
        x.mean(), x.var(ddof=1)
    return time.perf_counter() - start


def _pooled_glm(rows: pd.DataFrame) -> tuple[float, dict[str, float], int]:
    """Seconds to build the design and fit; coefficients by term; IRLS iterations."""
    complete = rows[["trs", "age", "sex", "panss_total"]].dropna()
    complete = complete.assign(sex=complete["sex"].astype(str))
    start = time.perf_counter()
    y, x = model_matrix(FORMULA, complete)
    fit = sm.GLM(
        np.asarray(y, dtype=float).ravel(),
        np.asarray(x, dtype=float),
        family=sm.families.Binomial(),
    ).fit()
    seconds = time.perf_counter() - start
    return seconds, dict(zip(x.columns, fit.params, strict=True)), int(fit.fit_history["iteration"])


def _federated_vs_pooled(root: Path) -> list[dict[str, Any]]:
    sites = build_sites(root / "large", 3, SITE_PERSONS)
    trust(sites, [Coordinator.create(root / "coord-large").dir.public_key])
    repeat = max(1, min(REPEAT, 2))  # a GLM over 150,000 persons takes a minute
    rows = _pooled_rows(sites)
    with ServedNodes(sites) as served:
        coordinator = _coordinator(root, "coord-large", sites, served.urls)
        _timed(coordinator, SUMMARY)  # warm up connections and the nodes' caches
        summary = [_timed(coordinator, SUMMARY)[0] for _ in range(repeat)]
        glm_runs = [_timed(coordinator, GLM) for _ in range(repeat)]
    persons = sum(s.persons for s in sites)
    pooled_summary = statistics.median(_pooled_summary(rows) for _ in range(repeat))
    pooled = [_pooled_glm(rows) for _ in range(repeat)]
    pooled_glm = statistics.median(p[0] for p in pooled)
    fed = glm_runs[-1][1]["result"]
    estimates = {c["term"]: c["estimate"] for c in fed["coefficients"]}
    worst = max(abs(estimates[t] - b) / max(abs(b), 1e-12) for t, b in pooled[-1][1].items())
    fed_summary, fed_glm = statistics.median(summary), statistics.median(g[0] for g in glm_runs)
    return [
        {
            "analysis": "summary",
            "nodes": len(sites),
            "persons": persons,
            "federated s": fed_summary,
            "pooled s": pooled_summary,
            "ratio": fed_summary / pooled_summary,
        },
        {
            "analysis": "glm",
            "nodes": len(sites),
            "persons": persons,
            "rows": fed["n"],
            "rounds": fed["iterations"],
            "sm iter": pooled[-1][2],
            "federated s": fed_glm,
            "pooled s": pooled_glm,
            "ratio": fed_glm / pooled_glm,
            "rel diff": worst,
        },
    ]


def _fanout(root: Path) -> list[dict[str, Any]]:
    sites = build_sites(root / "small", max(FANOUT), FANOUT_PERSONS, seed=5)
    trust(sites, [Coordinator.create(root / f"coord-{k}").dir.public_key for k in FANOUT])
    out = []
    with ServedNodes(sites) as served:
        for k in FANOUT:
            coordinator = _coordinator(root, f"coord-{k}", sites[:k], served.urls)
            names = [s.name for s in sites[:k]]
            _timed(coordinator, FANOUT_SUMMARY)
            cpu, own = served.cpu_seconds(names), time.process_time()
            latency = statistics.median(
                _timed(coordinator, FANOUT_SUMMARY)[0] for _ in range(REPEAT)
            )
            node_cpu = (served.cpu_seconds(names) - cpu) / REPEAT
            coordinator_cpu = (time.process_time() - own) / REPEAT
            out.append(
                {
                    "nodes": k,
                    "persons": sum(s.persons for s in sites[:k]),
                    "summary s": latency,
                    "node CPU s": node_cpu,
                    "coordinator CPU s": coordinator_cpu,
                    "CPU floor s": (node_cpu + coordinator_cpu) / (os.cpu_count() or 1),
                }
            )
    base = out[0]["summary s"]
    for row in out:
        row["vs first"] = row["summary s"] / base
    return out


def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        pooled = _federated_vs_pooled(root)
        fanout = _fanout(root)
    emit(
        "coordinator",
        "Federated summary and GLM over real HTTP vs the pooled fit (median wall time)",
        [
            "analysis",
            "nodes",
            "persons",
            "rows",
            "rounds",
            "sm iter",
            "federated s",
            "pooled s",
            "ratio",
            "rel diff",
        ],
        pooled,
        [
            "federated: coordinator.run over signed HTTP to one node process per site, "
            "every step through each node's gate and audit",
            "pooled: numpy (summary) / formulaic + statsmodels GLM (glm) on the same rows in "
            "one process; rounds: federated Newton/IRLS rounds to convergence, sm iter: "
            "statsmodels' IRLS iterations; rel diff: largest relative difference of the "
            "coefficients",
        ],
    )
    emit(
        "coordinator_fanout",
        "Coordinator fan-out: summary latency by number of nodes",
        [
            "nodes",
            "persons",
            "summary s",
            "vs first",
            "node CPU s",
            "CPU floor s",
            "coordinator CPU s",
        ],
        fanout,
        [
            "target: 20 nodes ≤ 2 × one node",
            "node CPU s: CPU time all node processes spent per job; coordinator CPU s: the "
            "coordinator process's; CPU floor s: both spread over this machine's "
            f"{os.cpu_count()} CPUs, the least latency possible while they share them",
        ],
    )
