"""Load: many researchers at once against 3 nodes, every part its own process.

Three synthetic sites of ``PERSONS`` persons each are served by ``fedpsy node serve``
processes and a ``fedpsy coordinator serve`` process, all on loopback HTTP with signed
requests and secure aggregation. First one researcher runs the mix — count, summary,
crosstab and a binomial glm — ``ALONE_REPEATS`` times, one request at a time: the
single-request times. Then ``CLIENTS`` researchers each submit ``PER_CLIENT`` requests
of the mix (``?wait=true``) at once. Reported: throughput, p50 and p95 latency, errors,
and jobs lost (answered ok to the client but not recorded ok by the coordinator), against
the mix's mean single-request time; targets: throughput ≥ 1.5 ÷ that mean, p95 ≤ 20× it,
no errors, nothing lost.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from bench.consortium import ServedNodes, _free_port, build_sites, process_cpu_seconds, trust
from bench.report import emit
from coordinator.service import Coordinator
from coordinator.store import registry
from coordinator.store import tables as t

PERSONS = int(os.environ.get("FEDPSY_BENCH_LOAD_PERSONS", "20000"))
CLIENTS = int(os.environ.get("FEDPSY_BENCH_LOAD_CLIENTS", "16"))
PER_CLIENT = int(os.environ.get("FEDPSY_BENCH_LOAD_PER_CLIENT", "4"))
ALONE_REPEATS = int(os.environ.get("FEDPSY_BENCH_LOAD_ALONE", "2"))
MIX: list[dict[str, Any]] = [
    {"analysis": "count"},
    {"analysis": "summary", "variables": ["age", "education_years"]},
    {"analysis": "crosstab", "row": "sex", "column": "primary_diagnosis"},
    {"analysis": "glm", "formula": "trs ~ age + sex + panss_total", "family": "binomial"},
]
Timing = tuple[str, float, bool]  # analysis, seconds, answered ok
T = TypeVar("T")
FAILURES: list[str] = []
"""Why the requests that were not answered ok failed (analysis: status/code)."""


async def _submit(client: httpx.AsyncClient, request: dict[str, Any]) -> Timing:
    start = time.perf_counter()
    try:
        response = await client.post("/v1/analyses?wait=true", json=request, timeout=600)
        body = response.json() if response.status_code == 200 else {}
        ok = body.get("status") == "ok"
        why = f"{body.get('status')}/{(body.get('reason') or {}).get('code')}"
        why = why if response.status_code == 200 else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, why = False, type(exc).__name__
    if not ok:
        FAILURES.append(f"{request['analysis']}: {why}")
    return str(request["analysis"]), time.perf_counter() - start, ok


async def _researcher(client: httpx.AsyncClient, first: int, out: list[Timing]) -> None:
    mix = cycle(MIX[first % len(MIX) :] + MIX[: first % len(MIX)])
    for _ in range(PER_CLIENT):
        out.append(await _submit(client, next(mix)))


async def _alone(url: str, token: str) -> list[Timing]:
    out: list[Timing] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        await _submit(c, MIX[0])  # warm up: connections, caches
        for _ in range(ALONE_REPEATS):
            for request in MIX:
                out.append(await _submit(c, request))
    return out


async def _many(url: str, token: str) -> tuple[list[Timing], float]:
    out: list[Timing] = []
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        start = time.perf_counter()
        await asyncio.gather(*(_researcher(client, k, out) for k in range(CLIENTS)))
        return out, time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _serve(coordinator: Coordinator) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cli = str(Path(sys.executable).parent / "fedpsy")
    server = subprocess.Popen(
        [cli, "coordinator", "serve", str(coordinator.dir.root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, url


def _recorded_ok(coordinator: Coordinator) -> int:
    with coordinator.engine.connect() as conn:
        query = select(func.count()).select_from(t.job).where(t.job.c.status == "ok")
        return int(conn.execute(query).scalar() or 0)


@dataclass
class Phase:
    """Wall seconds of a phase and the CPU seconds every process spent in it."""

    wall: float
    cpu: float


def _measured(served: ServedNodes, server: int, call: Callable[[], T]) -> tuple[T, Phase]:
    """``call()`` with its wall time and the CPU time of the node processes, the
    coordinator process (pid ``server``) and this one (the researchers) during it."""

    def cpu() -> float:
        return served.cpu_seconds() + process_cpu_seconds(server) + time.process_time()

    start, used = time.perf_counter(), cpu()
    out = call()
    return out, Phase(time.perf_counter() - start, cpu() - used)


def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sites = build_sites(root, 3, PERSONS)
        coordinator = Coordinator.create(root / "coord")
        trust(sites, [coordinator.dir.public_key])
        token = registry.add_user(coordinator.engine, "load")
        with ServedNodes(sites) as served:
            for site in sites:
                coordinator.add_node(site.name, served.urls[site.name])
            server, url = _serve(coordinator)
            try:
                alone, quiet = _measured(
                    served, server.pid, lambda: asyncio.run(_alone(url, token))
                )
                (many, wall), busy = _measured(
                    served, server.pid, lambda: asyncio.run(_many(url, token))
                )
            finally:
                server.terminate()
                server.wait(timeout=30)
        finished = _recorded_ok(coordinator) - 1  # less the warm-up
        coordinator.close()
    cores = os.cpu_count() or 1
    cpu_per_request = busy.cpu / len(many)
    single = {
        a["analysis"]: statistics.median(s for n, s, _ in alone if n == a["analysis"]) for a in MIX
    }
    mean = statistics.mean(single.values())
    latencies = [s for _, s, _ in many]
    succeeded = sum(ok for _, _, ok in alone + many)
    row = {
        "clients": CLIENTS,
        "requests": len(many),
        "req/s": len(many) / wall,
        "target req/s": 1.5 / mean,
        "p50 s": statistics.median(latencies),
        "p95 s": _percentile(latencies, 0.95),
        "p95 ÷ mean": _percentile(latencies, 0.95) / mean,
        "errors": sum(1 for _, _, ok in alone + many if not ok),
        "lost": max(succeeded - finished, 0),
        "CPU s/request": cpu_per_request,
        "CPU bound req/s": cores / cpu_per_request,
        "cores busy alone": quiet.cpu / quiet.wall,
    }
    emit(
        "load",
        f"Load: {CLIENTS} researchers at once, 3 nodes × {PERSONS:,} persons, own processes",
        list(row),
        [row],
        [
            "single-request times (one researcher, median of "
            f"{ALONE_REPEATS}): "
            + ", ".join(f"{a} {s:.2f} s" for a, s in single.items())
            + f"; mix mean {mean:.2f} s",
            "targets: req/s ≥ 1.5 ÷ mix mean; p95 ≤ 20 × mix mean; 0 errors; 0 lost",
            "CPU s/request: CPU time of every process (3 nodes, coordinator, researchers) "
            f"per request under load; CPU bound req/s: this machine's {cores} cores ÷ that, "
            "the most any scheduling could reach; cores busy alone: the cores one request "
            "at a time keeps busy (the nodes work in parallel), so concurrency can add at "
            "most cores ÷ that",
            f"errors: {', '.join(FAILURES) or 'none'}",
            "every process (coordinator, 3 nodes, load generator) shares this machine's cores",
        ],
    )
