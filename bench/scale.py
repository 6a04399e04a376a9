"""Cost growth with the size of a site: 10,000 → 100,000 → 1,000,000 persons.

For each size:

- ``ingest``: ``fedpsy node ingest NODE_DIR FOLDER`` as a site runs it, in its own
  process timed from start to exit (start-up, validation of every cell, inserts, derived
  variables, the columnar layer's rebuild, commit) into a fresh SQLite store, with its CPU
  time and peak RSS (:func:`bench.ingest.ingest_cli`). The folder is the person table and
  the baseline visit's observations of a ``fedpsy synth`` site (age, education, MADRS,
  HAM-D17, CGI-S, ketamine, BPRS and the 30 PANSS items; about 20.7 values per person,
  20.6 million at a million persons, and 3.3 derived values per person: the PANSS totals),
  generated chunk by chunk (:func:`bench.ingest.baseline_site`; not timed). A whole
  synthetic site, every visit and table, took 46 s to ingest at 20,000 persons: at a
  million persons that would be some 40 minutes of this machine.
- the analyses: one site written in bulk (:mod:`bench.bulk`: the store tables, then its
  columnar layer as after an ingest) is served as a ``fedpsy node serve`` process and
  asked over real HTTP, through a coordinator, for each operation of :data:`OPERATIONS`:
  ``summary`` of three variables, binomial ``glm`` (``trs ~ age + sex + panss_total``),
  ``kaplan_meier`` of ``time_to_relapse``/``relapse`` by sex on a five-point grid, and
  ``kmeans`` (k = 3) of age and PANSS total from one seeding (``n_init`` 1). Each
  operation gets a node process of its own, so its peak resident memory (``VmHWM``) is
  its own. Its first run is reported apart (``first``: it maps the layer, builds the
  job's design and has the privacy gate check answers it has not seen before, as a
  researcher's first request does); the median of the repeats after it is the steady
  cost. With one
  site the coordinator asks in the clear (secure aggregation needs two sites; the
  federated-vs-pooled table of :mod:`bench.coordinator` has it).

Each row gives the wall time, the CPU time of the process doing the work (the ingest
process; the node process for an analysis), that process's peak RSS, the growth of the
wall time against the previous size and, for the iterative analyses, the rounds the
coordinator ran (a k-means run's Lloyd iterations vary with the data). The rows
``store (bulk)`` and ``columnar layer (bulk)`` give the seconds of writing the analyses'
site in bulk and building its layer, in the bench process.

Another operation is one more entry of :data:`OPERATIONS` (a name and a function of the
served site returning its wall and node CPU seconds and its rounds).
``FEDPSY_BENCH_SCALE`` (comma-separated, default ``10000,100000,1000000``) and
``FEDPSY_BENCH_REPEAT`` (default 3; once at a million persons) scale the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bulk import bulk_site
from bench.consortium import ServedNodes, Site, trust
from bench.ingest import baseline_site, derived_values, ingest_cli, loaded_values
from bench.report import emit
from coordinator.service import Coordinator

SIZES = [int(p) for p in os.environ.get("FEDPSY_BENCH_SCALE", "10000,100000,1000000").split(",")]
REPEAT = int(os.environ.get("FEDPSY_BENCH_REPEAT", "3"))
REQUESTS: dict[str, dict[str, Any]] = {
    "summary": {"analysis": "summary", "variables": ["age", "panss_total", "madrs_total"]},
    "glm": {"analysis": "glm", "formula": "trs ~ age + sex + panss_total", "family": "binomial"},
    "kaplan_meier": {
        "analysis": "kaplan_meier",
        "time": "time_to_relapse",
        "event": "relapse",
        "group": "sex",
        "grid": [90, 180, 365, 730, 1095],
    },
    "kmeans": {
        "analysis": "kmeans",
        "variables": ["age", "panss_total"],
        "k": 3,
        "n_init": 1,
        "seed": 1,
    },
}
ROUNDS = {"glm": "iterations", "kmeans": "iterations", "kaplan_meier": "coarsened"}
"""The result field that counts an iterative analysis's rounds."""

Measured = tuple[float, float, int | None]
"""Wall seconds, node CPU seconds, rounds (None: not iterative)."""


def _analysis(name: str) -> Callable[[ServedNodes, Coordinator], Measured]:
    def run(served: ServedNodes, coordinator: Coordinator) -> Measured:
        cpu = served.cpu_seconds()
        start = time.perf_counter()
        answer = asyncio.run(coordinator.run(dict(REQUESTS[name])))
        seconds = time.perf_counter() - start
        if answer["status"] != "ok":
            raise RuntimeError(f"{name} did not succeed: {answer.get('reason')}")
        field = ROUNDS.get(name)
        rounds = None if field is None else int(answer["result"][field])
        return seconds, served.cpu_seconds() - cpu, rounds

    return run


OPERATIONS: list[tuple[str, Callable[[ServedNodes, Coordinator], Measured]]] = [
    (name, _analysis(name)) for name in REQUESTS
]
"""What is measured over HTTP at each size, in order."""


def _ingest(root: Path, persons: int) -> dict[str, Any]:
    """``fedpsy node ingest`` of a baseline site of ``persons`` persons, timed."""
    folder = baseline_site(root, persons)
    node_dir = root / f"ingest{persons}"
    run = ingest_cli(node_dir, folder)
    shutil.rmtree(node_dir)
    shutil.rmtree(folder)
    return {
        "operation": "ingest",
        "persons": persons,
        "wall s": run.seconds,
        "CPU s": run.cpu_seconds,
        "peak RSS MB": run.peak_mb,
        "values": loaded_values(run.stdout),
        "derived": derived_values(run.stdout),
    }


def _served(
    site: Site, coordinator: Coordinator, persons: int, name: str, operation: Any
) -> dict[str, Any]:
    """One operation on a node process of its own: median of the repeats."""
    repeat = 1 if persons >= 1_000_000 else REPEAT
    with ServedNodes([site]) as served:
        coordinator.add_node(site.name, served.urls[site.name])
        first = operation(served, coordinator)  # maps the layer, builds caches, gate memory
        runs = [operation(served, coordinator) for _ in range(repeat)]
        peak = served.peak_rss_mb()[site.name]
    return {
        "operation": name,
        "persons": persons,
        "wall s": statistics.median(r[0] for r in runs),
        "CPU s": statistics.median(r[1] for r in runs),
        "first wall s": first[0],
        "first CPU s": first[1],
        "peak RSS MB": peak,
        "rounds": runs[0][2],
    }


def _measure(root: Path, persons: int) -> list[dict[str, Any]]:
    rows = [_ingest(root, persons)]
    site, stored, built = bulk_site(root / f"p{persons}", "scale", persons)
    rows += [
        {"operation": "store (bulk)", "persons": persons, "wall s": stored},
        {"operation": "columnar layer (bulk)", "persons": persons, "wall s": built},
    ]
    coordinator = Coordinator.create(root / f"coordinator{persons}")
    trust([site], [coordinator.dir.public_key])
    for name, operation in OPERATIONS:
        rows.append(_served(site, coordinator, persons, name, operation))
    shutil.rmtree(site.root)
    return rows


def run() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        for persons in SIZES:
            rows += _measure(Path(name), persons)
    previous: dict[str, float] = {}
    for row in rows:
        last = previous.get(row["operation"])
        row["growth"] = row["wall s"] / last if last else None
        previous[row["operation"]] = row["wall s"]
    order = list(dict.fromkeys(r["operation"] for r in rows))
    rows.sort(key=lambda r: order.index(r["operation"]))  # stable: sizes stay in order
    emit(
        "scale",
        f"Cost growth with persons per site (median of {REPEAT}; one run at 1,000,000)",
        [
            "operation",
            "persons",
            "wall s",
            "CPU s",
            "first wall s",
            "first CPU s",
            "peak RSS MB",
            "growth",
            "rounds",
            "values",
        ],
        rows,
        [
            "ingest: fedpsy node ingest in its own process (person table + baseline "
            "observations; values = observation values loaded); CPU s and peak RSS: that "
            "process's",
            "summary, glm, kaplan_meier, kmeans: one node process per operation over real "
            "HTTP through a coordinator; CPU s: the node process's CPU time for the "
            "operation (median of the repeats); first: the operation's first run on the "
            "node process (mapping the layer, building the job's design, the privacy gate "
            "checking answers it has not seen before); peak RSS: the node process's VmHWM",
            "store (bulk), columnar layer (bulk): writing the analyses' site in bulk and "
            "building its layer; growth: wall time ÷ the previous size's; rounds: glm and "
            "kmeans iterations, kaplan_meier coarsened rounds",
        ],
    )
