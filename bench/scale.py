"""Cost growth with the size of a site: 10,000 → 100,000 → 1,000,000 persons.

For each size one site is written in bulk (:mod:`bench.bulk`: the store tables, then its
columnar layer as after an ingest), served as a ``fedpsy node serve`` process and asked
over real HTTP, through a coordinator, for each operation of :data:`OPERATIONS`:
``summary`` of three variables and binomial ``glm`` (``trs ~ age + sex + panss_total``).
With one site the coordinator asks in the clear (secure aggregation needs two sites; the
federated-vs-pooled table of :mod:`bench.coordinator` has it). Each row gives the wall
time, the node process's CPU time for the operation and its peak resident memory so far
(``VmHWM``), and the growth of the wall time against the previous size. The rows
``store`` and ``columnar layer`` give the seconds writing the store in bulk and building
the layer (in the bench process, as ``fedpsy node ingest`` builds it).

Another operation is one more entry of :data:`OPERATIONS` (a name and a function of the
served site returning its wall and node CPU seconds), so an ``ingest`` row fits in.
``FEDPSY_BENCH_SCALE`` (comma-separated, default ``10000,100000,1000000``) and
``FEDPSY_BENCH_REPEAT`` (default 3; once at a million persons) scale the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bulk import bulk_site
from bench.consortium import ServedNodes, trust
from bench.report import emit
from coordinator.service import Coordinator

SIZES = [int(p) for p in os.environ.get("FEDPSY_BENCH_SCALE", "10000,100000,1000000").split(",")]
REPEAT = int(os.environ.get("FEDPSY_BENCH_REPEAT", "3"))
REQUESTS = {
    "summary": {"analysis": "summary", "variables": ["age", "panss_total", "madrs_total"]},
    "glm": {"analysis": "glm", "formula": "trs ~ age + sex + panss_total", "family": "binomial"},
}


def _analysis(name: str) -> Callable[[ServedNodes, Coordinator], tuple[float, float]]:
    def run(served: ServedNodes, coordinator: Coordinator) -> tuple[float, float]:
        cpu = served.cpu_seconds()
        start = time.perf_counter()
        result = asyncio.run(coordinator.run(dict(REQUESTS[name])))
        seconds = time.perf_counter() - start
        if result["status"] != "ok":
            raise RuntimeError(f"{name} did not succeed: {result.get('reason')}")
        return seconds, served.cpu_seconds() - cpu

    return run


OPERATIONS: list[tuple[str, Callable[[ServedNodes, Coordinator], tuple[float, float]]]] = [
    ("summary", _analysis("summary")),
    ("glm", _analysis("glm")),
]
"""What is measured at each size, in order."""


def _measure(root: Path, persons: int) -> list[dict[str, Any]]:
    site, stored, built = bulk_site(root / f"p{persons}", "scale", persons)
    coordinator = Coordinator.create(root / f"coordinator{persons}")
    trust([site], [coordinator.dir.public_key])
    rows: list[dict[str, Any]] = [
        {"operation": "store", "persons": persons, "wall s": stored},
        {"operation": "columnar layer", "persons": persons, "wall s": built},
    ]
    repeat = 1 if persons >= 1_000_000 else REPEAT
    with ServedNodes([site]) as served:
        coordinator.add_node(site.name, served.urls[site.name])
        for name, operation in OPERATIONS:
            operation(served, coordinator)  # the first read maps the layer's file
            runs = [operation(served, coordinator) for _ in range(repeat)]
            rows.append(
                {
                    "operation": name,
                    "persons": persons,
                    "wall s": statistics.median(r[0] for r in runs),
                    "node CPU s": statistics.median(r[1] for r in runs),
                    "node peak RSS MB": served.peak_rss_mb()[site.name],
                }
            )
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
    emit(
        "scale",
        f"Cost growth with persons per site (median of {REPEAT}; one run at 1,000,000)",
        ["operation", "persons", "wall s", "node CPU s", "node peak RSS MB", "growth"],
        rows,
        [
            "summary, glm: one node process over real HTTP through a coordinator; node CPU s: "
            "the node process's CPU time for the operation; peak RSS: the node process's "
            "VmHWM after the operation",
            "store: writing the store tables in bulk; columnar layer: building the layer "
            "from the store; growth: wall time ÷ the previous size's",
        ],
    )
