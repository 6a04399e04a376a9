"""Node step latency with the privacy gate on versus off, in the same run.

A ``fedpsy synth`` site of 50,000 persons (with its follow-up and event table) is loaded
into a node store (SQLite). For each of these steps, at the baseline visit and without a
cohort, as a researcher would ask them:

* ``count``;
* ``moments`` of age, PANSS and MADRS totals (per-variable counts, sums, squares, products);
* ``histogram`` of age with edges 0, 20, …, 120 (on the public grid of ``schemas.grid``);
* ``crosstab`` of sex × primary_diagnosis;
* ``column_moments`` and ``glm_score`` of binomial ``trs ~ age + sex + panss_total`` (the
  first round of a GLM; the score at β = 0 in the basis the coordinator would send);
* ``survival_counts`` of ``time_to_relapse`` / ``relapse`` as a Kaplan–Meier request: a
  30-day axis, the horizon a ``survival_extent`` round gives (as the coordinator sets it:
  63 points, covering all follow-up) and ``intervals`` at ½, 1, 2, 3, 4 years and the
  horizon;
* ``kmeans_sums`` of age and PANSS total with k = 3 centers,

each repetition times, interleaved:

* **gate on** — what a signed task costs at the node: signature verification
  (``NodeService.authenticate``: trusted key, body digest, timestamp, nonce) and
  ``NodeService.submit`` (task parsing, policy, the step, the disclosure rules on the rows
  it used — cells, dropped rows, dominance, leverage, exits — the differencing guard, the
  histogram interval memory, the release and the audit entries), with its CPU time next
  to its wall time (the rest is waiting, mostly for the store's commits);
* **gate off** — ``run_step`` on the node's frame source (its columnar layer,
  :mod:`node.data.frame_columnar`): reading the frame and computing, nothing else;
* **store** — ``run_step`` on a ``StoreFrameSource``: the same rows read from the store's
  observation table and pivoted per request, as before the columnar layer;
* **in memory** — ``run_step`` on a ``DataFrameSource`` holding the same rows: the
  computation alone.

The ratio is gate on ÷ gate off (target < 1.2, an overhead under 20 %). With the default
policy every step above is answered at 50,000 persons. Only the survival intervals had to
be chosen: six-monthly ones up to the horizon are refused (``cell_too_small``), since
synthetic follow-up ends at five years and the last interval, days 1,801–1,890, holds a
single relapse — a Kaplan–Meier request reads the tail at coarser times, as here (the
coordinator would merge the interval). A refused step stops the bench with the gate's
reason. ``FEDPSY_BENCH_STEP_PERSONS``
(comma-separated, default ``50000``; e.g. ``10000,50000``) and ``FEDPSY_BENCH_REPEAT``
(default 3) scale the run.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.consortium import build_sites, trust
from bench.report import emit
from coordinator.service import Coordinator
from node.data.frame_memory import DataFrameSource
from node.data.frame_store import StoreFrameSource
from node.data.source import FrameSource
from node.service import NodeService
from node.site import NodeSite
from node.steps.registry import run_step
from schemas.signing import sign_headers
from schemas.steps.registry import parse_step

PERSONS = [int(p) for p in os.environ.get("FEDPSY_BENCH_STEP_PERSONS", "50000").split(",")]
REPEAT = int(os.environ.get("FEDPSY_BENCH_REPEAT", "3"))
FORMULA = "trs ~ age + sex + panss_total"
RESOLUTION = 30.0  # days: a relapse curve read monthly
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("count", {"step": "count"}),
    (
        "summary",
        {
            "step": "moments",
            "variables": ["age", "panss_total", "madrs_total"],
            "complete_cases": False,
            "products": True,
        },
    ),
    ("histogram", {"step": "histogram", "variable": "age", "edges": [0, 20, 40, 60, 80, 100, 120]}),
    ("crosstab", {"step": "crosstab", "row": "sex", "column": "primary_diagnosis"}),
    ("glm", {"step": "column_moments", "formula": FORMULA}),
]
KMEANS = {
    "step": "kmeans_sums",
    "variables": ["age", "panss_total"],
    "centers": [[25.0, 70.0], [40.0, 80.0], [55.0, 90.0]],
}
CODES = ["age", "panss_total", "madrs_total", "trs", "sex", "primary_diagnosis"]
CODES += ["time_to_relapse", "relapse"]


def _glm_step(service: NodeService) -> dict[str, Any]:
    """A glm_score step at β = 0 in the basis the coordinator would send (round one)."""
    first = run_step(parse_step({"step": "column_moments", "formula": FORMULA}), service.frames)
    r = first.result.model_dump()
    n = r["n"]
    center = [
        0.0 if c == "Intercept" else s / n for c, s in zip(r["columns"], r["sums"], strict=True)
    ]
    scale = [
        1.0 if c == "Intercept" else max((q / n - m * m) ** 0.5, 1e-12)
        for c, q, m in zip(r["columns"], r["squares"], center, strict=True)
    ]
    return {
        "step": "glm_score",
        "formula": FORMULA,
        "family": "binomial",
        "columns": r["columns"],
        "center": center,
        "scale": scale,
        "beta": [0.0] * len(r["columns"]),
    }


def _survival_step(service: NodeService) -> dict[str, Any]:
    """A Kaplan–Meier survival_counts step: the horizon a survival_extent round gives
    (``2^(j+1) − 1`` for the highest power of two reached); ½, 1, 2, 3, 4 years, horizon."""
    extent = {"step": "survival_extent", "time": "time_to_relapse", "resolution": RESOLUTION}
    reaches = run_step(parse_step(extent), service.frames).result.model_dump()["reaches"]
    horizon = 2 ** (max(j for j, c in enumerate(reaches) if c) + 1) - 1
    return {
        **extent,
        "step": "survival_counts",
        "event": "relapse",
        "horizon": horizon,
        "intervals": [*(k for k in (6, 12, 24, 36, 48) if k < horizon), horizon],
    }


def _in_memory(service: NodeService) -> DataFrameSource:
    """The rows the steps read, held in memory."""
    dictionary = service.node.dictionary
    frame = service.frames.frame(CODES, "baseline", None).reset_index()
    frame["person_id"] = frame["row_id"].astype(str)
    categories = {
        c: list(dictionary.get(c).categories or [])
        for c in CODES
        if dictionary.get(c).type == "categorical"
    }
    return DataFrameSource(service.site, frame.drop(columns=["row_id"]), categories)


def _seconds(call: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``call`` (CPU of this process: the node runs in it)."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def _ungated(step: dict[str, Any], source: FrameSource) -> Callable[[], object]:
    return lambda: run_step(parse_step(step), source)


def _gated(
    service: NodeService, coordinator: Coordinator, analysis: str, step: dict[str, Any]
) -> Callable[[], object]:
    def call() -> object:
        body = json.dumps(
            {"task_id": uuid.uuid4().hex, "job_id": "bench", "analysis": analysis, "step": step}
        ).encode()
        headers = sign_headers(coordinator.key, "POST", "/v1/tasks", body)
        key = service.authenticate(headers, "POST", "/v1/tasks", body)
        outcome = service.submit(body, key)
        if outcome.status != "answered":
            raise RuntimeError(f"{step['step']} was not answered: {outcome.reason}")
        return outcome

    return call


def _measure(root: Path, persons: int) -> list[dict[str, Any]]:
    site = build_sites(root / f"p{persons}", 1, persons, outcomes=True)[0]
    coordinator = Coordinator.create(root / f"coordinator{persons}")
    trust([site], [coordinator.dir.public_key])
    node = NodeSite.open(site.root)
    try:
        service = NodeService(node)
        memory = _in_memory(service)
        store = StoreFrameSource(node.engine, site.name, node.dictionary, service.policy.min_cell)
        steps = [
            *STEPS,
            ("glm", _glm_step(service)),
            ("kaplan_meier", _survival_step(service)),
            ("kmeans", KMEANS),
        ]
        rows = []
        for analysis, step in steps:
            calls = {
                "on": _gated(service, coordinator, analysis, step),
                "off": _ungated(step, service.frames),
                "store": _ungated(step, store),
                "memory": _ungated(step, memory),
            }
            for call in calls.values():  # warm up caches and the guard's first entry
                call()
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in calls}
            for _ in range(REPEAT):  # interleaved, so drift hits all alike
                for kind, call in calls.items():
                    runs[kind].append(_seconds(call))
            on, off, old, mem = (
                statistics.median(r[0] for r in runs[k]) for k in ("on", "off", "store", "memory")
            )
            rows.append(
                {
                    "step": step["step"],
                    "persons": site.persons,
                    "gate_on_s": on,
                    "gate_on_cpu_s": statistics.median(r[1] for r in runs["on"]),
                    "gate_off_s": off,
                    "store_s": old,
                    "in_memory_s": mem,
                    "ratio": on / off,
                    "store_ratio": old / off,
                }
            )
        return rows
    finally:
        node.close()


def run() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        for persons in PERSONS:
            rows += _measure(Path(name), persons)
    emit(
        "node_steps",
        f"Node step latency: privacy gate on vs off (median s of {REPEAT}, same run)",
        [
            "step",
            "persons",
            "gate_on_s",
            "gate_on_cpu_s",
            "gate_off_s",
            "store_s",
            "in_memory_s",
            "ratio",
            "store_ratio",
        ],
        rows,
        [
            "gate on: signature check + NodeService.submit (policy, step under watch, "
            "disclosure rules, differencing guard, memories of sums and edges, release, audit)",
            "gate on cpu: its CPU time; gate off: run_step on the node's columnar layer; "
            "store: run_step on a StoreFrameSource (pivoting the store per request); in "
            "memory: run_step on a DataFrameSource of the same rows",
            "ratio = gate on ÷ gate off (target < 1.2, i.e. overhead < 20 %); store_ratio = "
            "store ÷ gate off (what the columnar layer saves)",
        ],
    )
