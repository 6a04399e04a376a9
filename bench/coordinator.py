"""Federated analyses end to end versus pooled baselines, and coordinator fan-out scaling.

**Federated vs pooled.** Two sites of ``FEDPSY_BENCH_PERSONS / 4`` persons each and three
of ``FEDPSY_BENCH_PERSONS / 2`` (default 100,000: 2 × 25,000 and 3 × 50,000) are written
in bulk (:mod:`bench.bulk`; their columnar layers built as after an ingest) and served as
separate ``fedpsy node serve`` processes on loopback; a coordinator signs and fans out
every step over real HTTP, with secure aggregation. Side by side in the same run:

* ``summary`` of three variables against a bare SQL aggregate — ``count``, ``avg`` and
  the average of squares per variable — over the same values in an in-memory SQLite long
  table (target ≤ 5×);
* binomial ``glm`` (``trs ~ age + sex + panss_total``, Newton/IRLS from the
  intercept-only start, with its rounds to convergence) against statsmodels' GLM fit on
  the pooled rows, its design built with formulaic as the nodes build it (target ≤ 10×);
  the federated coefficients are checked against statsmodels' (largest relative
  difference).

Next to each wall time: the CPU time the node processes spent on the analysis (all
sites together, read from ``/proc``) and the coordinator's; what the wall time holds
beyond them is waiting — for the stores' commits, the HTTP round trips, and the CPUs
when the machine is shared.

**Fan-out.** 20 small sites (200 persons on average), each its own process; the latency
of ``summary`` (age and years of education) through a coordinator that has 1, 5, 10 or
20 of them registered (target: 20 nodes ≤ 2 × one node). On a machine with fewer cores
than nodes the node processes share the CPUs, so the 20-node figure includes that
contention, not only the fan-out: the table shows the node processes' CPU time per job
and that time divided by the CPU count, the least latency the machine allows.

``FEDPSY_BENCH_PERSONS`` (default 100000), ``FEDPSY_BENCH_FANOUT`` (default
``1,5,10,20``), ``FEDPSY_BENCH_FANOUT_PERSONS`` (default 200) and ``FEDPSY_BENCH_REPEAT``
(default 5) scale the run.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from formulaic import model_matrix

from bench.bulk import bulk_site
from bench.consortium import ServedNodes, Site, build_sites, trust
from bench.report import emit
from coordinator.service import Coordinator
from node.data.frame_store import StoreFrameSource
from node.site import NodeSite

PERSONS = int(os.environ.get("FEDPSY_BENCH_PERSONS", "100000"))
CONSORTIA = [(2, PERSONS // 4), (3, PERSONS // 2)]
"""(sites, persons per site) of the federated-vs-pooled runs."""
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


def _sql_summary(rows: pd.DataFrame) -> tuple[float, dict[str, tuple[int, float]]]:
    """Seconds of a bare SQL aggregate — count, mean and mean of squares per variable —
    over the values of ``rows`` in an in-memory SQLite long table; the counts and means."""
    long = rows[VARIABLES].reset_index(drop=True).melt(var_name="variable", ignore_index=False)
    long = long.dropna().reset_index(names="person")
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE obs (person INTEGER, variable TEXT, value REAL)")
        db.executemany(
            "INSERT INTO obs VALUES (?, ?, ?)",
            long[["person", "variable", "value"]].itertuples(index=False, name=None),
        )
        start = time.perf_counter()
        found = db.execute(
            "SELECT variable, COUNT(value), AVG(value), AVG(value * value) FROM obs "
            "GROUP BY variable"
        ).fetchall()
        seconds = time.perf_counter() - start
    return seconds, {str(v): (int(n), float(m)) for v, n, m, _ in found}


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


def _timed_cpu(
    served: ServedNodes, coordinator: Coordinator, request: dict[str, Any]
) -> tuple[float, float, float, dict[str, Any]]:
    """Wall seconds, the node processes' and the coordinator's CPU seconds and the result
    of one analysis."""
    cpu, own = served.cpu_seconds(), time.process_time()
    seconds, result = _timed(coordinator, request)
    return seconds, served.cpu_seconds() - cpu, time.process_time() - own, result


def _federated_vs_pooled(root: Path, nodes: int, persons: int) -> list[dict[str, Any]]:
    sites = [bulk_site(root / f"c{nodes}", f"site{i}", persons, seed=i)[0] for i in range(nodes)]
    name = f"coord-{nodes}"
    trust(sites, [Coordinator.create(root / name).dir.public_key])
    rows = _pooled_rows(sites)
    with ServedNodes(sites) as served:
        coordinator = _coordinator(root, name, sites, served.urls)
        _timed(coordinator, SUMMARY)  # warm up connections and the nodes' caches
        summary = [_timed_cpu(served, coordinator, SUMMARY) for _ in range(REPEAT)]
        glm_runs = [_timed_cpu(served, coordinator, GLM) for _ in range(REPEAT)]
    sql = [_sql_summary(rows) for _ in range(REPEAT)]
    pooled = [_pooled_glm(rows) for _ in range(REPEAT)]
    means = {v: s["mean"] for v, s in summary[-1][3]["result"]["variables"].items()}
    summary_diff = max(abs(means[v] - m) / abs(m) for v, (_, m) in sql[-1][1].items())
    fed = glm_runs[-1][3]["result"]
    estimates = {c["term"]: c["estimate"] for c in fed["coefficients"]}
    worst = max(abs(estimates[t] - b) / max(abs(b), 1e-12) for t, b in pooled[-1][1].items())
    fed_summary = statistics.median(r[0] for r in summary)
    fed_glm = statistics.median(g[0] for g in glm_runs)
    sql_s, pooled_glm = (
        statistics.median(r[0] for r in sql),
        statistics.median(p[0] for p in pooled),
    )
    common = {"nodes": len(sites), "persons": sum(s.persons for s in sites)}
    return [
        {
            "analysis": "summary",
            **common,
            "federated s": fed_summary,
            "node CPU s": statistics.median(r[1] for r in summary),
            "coordinator CPU s": statistics.median(r[2] for r in summary),
            "baseline": "SQL aggregate",
            "baseline s": sql_s,
            "ratio": fed_summary / sql_s,
            "target": 5,
            "rel diff": summary_diff,
        },
        {
            "analysis": "glm",
            **common,
            "rows": fed["n"],
            "rounds": fed["iterations"],
            "federated s": fed_glm,
            "node CPU s": statistics.median(g[1] for g in glm_runs),
            "coordinator CPU s": statistics.median(g[2] for g in glm_runs),
            "baseline": "statsmodels",
            "baseline s": pooled_glm,
            "ratio": fed_glm / pooled_glm,
            "target": 10,
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
        pooled = [r for n, p in CONSORTIA for r in _federated_vs_pooled(root, n, p)]
        fanout = _fanout(root)
    emit(
        "coordinator",
        f"Federated summary and GLM over real HTTP vs pooled baselines (median of {REPEAT})",
        [
            "analysis",
            "nodes",
            "persons",
            "rows",
            "rounds",
            "federated s",
            "node CPU s",
            "coordinator CPU s",
            "baseline",
            "baseline s",
            "ratio",
            "target",
            "rel diff",
        ],
        pooled,
        [
            "federated: coordinator.run over signed HTTP to one node process per site, "
            "secure aggregation, every step through each node's gate and audit; node CPU s: "
            "CPU time of all node processes for the analysis; coordinator CPU s: the "
            "coordinator's (this process's)",
            "baselines on the same rows: a SQL count/avg/avg of squares per variable over an "
            "in-memory SQLite long table (summary); formulaic design + statsmodels GLM "
            "(glm); rounds: federated Newton/IRLS rounds; rel diff: largest relative "
            "difference of the means (summary) or coefficients (glm)",
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
