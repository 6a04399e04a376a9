"""Node step latency with the privacy gate on versus off, in the same run.

A ``fedpsy synth`` site of 10,000 and of 100,000 persons is loaded into a node store
(SQLite). For ``moments`` (three variables, per-variable counts, sums and squares) and
``glm_score`` (binomial ``trs ~ age + sex + panss_total`` at β = 0, one IRLS round) each
repetition times, interleaved:

* **gate on** — what a signed task costs at the node: signature verification
  (``NodeService.authenticate``: trusted key, body digest, timestamp, nonce) and
  ``NodeService.submit`` (task parsing, policy, differencing guard on the cohort's rows,
  the step, the disclosure check, the release and the audit entries);
* **gate off** — ``run_step`` on the same ``StoreFrameSource``: reading the frame and
  computing, nothing else;
* **in memory** — ``run_step`` on a ``DataFrameSource`` holding the same rows: the
  computation alone.

The overhead is gate on ÷ gate off − 1 (target < 20 %). ``FEDPSY_BENCH_STEP_PERSONS``
(comma-separated, default ``10000,100000``) and ``FEDPSY_BENCH_REPEAT`` (default 3) scale
the run.
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
from node.frame_memory import DataFrameSource
from node.service import NodeService
from node.site import NodeSite
from node.steps.base import FrameSource
from node.steps.registry import run_step
from schemas.signing import sign_headers
from schemas.steps.registry import parse_step

PERSONS = [int(p) for p in os.environ.get("FEDPSY_BENCH_STEP_PERSONS", "10000,100000").split(",")]
REPEAT = int(os.environ.get("FEDPSY_BENCH_REPEAT", "3"))
FORMULA = "trs ~ age + sex + panss_total"
MOMENTS = {
    "step": "moments",
    "variables": ["age", "panss_total", "madrs_total"],
    "complete_cases": False,
    "products": True,
}


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


def _in_memory(service: NodeService) -> DataFrameSource:
    """The rows the steps read, held in memory."""
    codes = ["age", "panss_total", "madrs_total", "trs", "sex"]
    frame = service.frames.frame(codes, "baseline", None).reset_index()
    frame["person_id"] = frame["row_id"].astype(str)
    return DataFrameSource(service.site, frame.drop(columns=["row_id"]), {"sex": ["F", "M"]})


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


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
            raise RuntimeError(f"the bench step was not answered: {outcome.reason}")
        return outcome

    return call


def _measure(root: Path, persons: int) -> list[dict[str, Any]]:
    site = build_sites(root / f"p{persons}", 1, persons)[0]
    coordinator = Coordinator.create(root / f"coordinator{persons}")
    trust([site], [coordinator.dir.public_key])
    node = NodeSite.open(site.root)
    try:
        service = NodeService(node)
        memory = _in_memory(service)
        rows = []
        for analysis, step in (("summary", MOMENTS), ("glm", _glm_step(service))):
            calls = {
                "on": _gated(service, coordinator, analysis, step),
                "off": _ungated(step, service.frames),
                "memory": _ungated(step, memory),
            }
            calls["on"]()  # warm up caches and the differencing guard's first entry
            runs: dict[str, list[float]] = {k: [] for k in calls}
            for _ in range(REPEAT):  # interleaved, so drift hits all three alike
                for kind, call in calls.items():
                    runs[kind].append(_seconds(call))
            on, off, mem = (statistics.median(runs[k]) for k in ("on", "off", "memory"))
            rows.append(
                {
                    "step": step["step"],
                    "persons": site.persons,
                    "gate on ms": on * 1e3,
                    "gate off ms": off * 1e3,
                    "in memory ms": mem * 1e3,
                    "ratio on/off": on / off,
                    "overhead %": (on / off - 1) * 100,
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
        f"Node step latency: privacy gate on vs off (median of {REPEAT}, same run)",
        [
            "step",
            "persons",
            "gate on ms",
            "gate off ms",
            "in memory ms",
            "ratio on/off",
            "overhead %",
        ],
        rows,
        [
            "gate on: signature check + NodeService.submit (policy, differencing guard, "
            "step, disclosure check, release, audit)",
            "gate off: run_step on the same StoreFrameSource; in memory: run_step on a "
            "DataFrameSource of the same rows",
            "target: overhead < 20 %",
        ],
    )
