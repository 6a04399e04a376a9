"""Load: many researchers submitting summaries at once against 3 nodes on loopback.

The coordinator runs as its own ``fedpsy coordinator serve`` process and each node as its
own ``fedpsy node serve`` process. ``CLIENTS`` concurrent researchers submit ``summary``
requests (``?wait=true``) for ``SECONDS`` seconds. Reported: jobs per second, p50/p99
latency, errors, and jobs lost (submitted but not recorded as finished by the
coordinator); the baseline is one researcher alone in the same run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.consortium import ServedNodes, _free_port, build_sites, trust
from bench.report import emit
from coordinator.service import Coordinator
from coordinator.store import registry
from coordinator.store import tables as t

CLIENTS = int(os.environ.get("FEDPSY_BENCH_LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("FEDPSY_BENCH_LOAD_SECONDS", "60"))
REQUEST = {"analysis": "summary", "variables": ["age", "panss_total"]}


async def _researcher(
    client: httpx.AsyncClient, until: float, out: list[tuple[float, int]]
) -> None:
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            response = await client.post("/v1/analyses?wait=true", json=REQUEST, timeout=120)
            ok = response.status_code == 200 and response.json().get("status") == "ok"
        except httpx.HTTPError:
            ok = False
        out.append((time.perf_counter() - start, 1 if ok else 0))


async def _load(url: str, token: str, clients: int, seconds: float) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_researcher(client, until, out) for _ in range(clients)))
    return out


def _row(label: str, clients: int, seconds: float, out: list[tuple[float, int]]) -> dict[str, Any]:
    latencies = sorted(t for t, _ in out)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
    return {
        "load": label,
        "clients": clients,
        "jobs": len(out),
        "jobs/s": len(out) / seconds,
        "p50 s": statistics.median(latencies or [0.0]),
        "p99 s": p99,
        "errors": sum(1 for _, ok in out if not ok),
    }


def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sites = build_sites(root, 3, 300)
        coord = Coordinator.create(root / "coord")
        trust(sites, [coord.dir.public_key])
        token = registry.add_user(coord.engine, "load")
        with ServedNodes(sites) as served:
            for site in sites:
                coord.add_node(site.name, served.urls[site.name])
            port = _free_port()
            cli = str(Path(sys.executable).parent / "fedpsy")
            server = subprocess.Popen(
                [cli, "coordinator", "serve", str(coord.dir.root), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                for _ in range(300):
                    try:
                        if httpx.get(url + "/health", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                alone_s = min(SECONDS, 15.0)
                alone = asyncio.run(_load(url, token, 1, alone_s))
                many = asyncio.run(_load(url, token, CLIENTS, SECONDS))
            finally:
                server.terminate()
                server.wait(timeout=30)
        with coord.engine.connect() as conn:
            finished = int(
                conn.execute(
                    select(func.count()).select_from(t.job).where(t.job.c.status == "ok")
                ).scalar()
                or 0
            )
        coord.close()
    rows = [
        _row("one researcher (baseline)", 1, alone_s, alone),
        _row(f"{CLIENTS} researchers", CLIENTS, SECONDS, many),
    ]
    succeeded = sum(ok for _, ok in alone + many)
    rows[1]["lost"] = succeeded - finished if succeeded > finished else 0
    rows[1]["p50 vs baseline"] = rows[1]["p50 s"] / rows[0]["p50 s"] if rows[0]["p50 s"] else None
    emit(
        "load",
        "Load: concurrent researchers submitting summaries, 3 nodes on loopback",
        [
            "load",
            "clients",
            "jobs",
            "jobs/s",
            "p50 s",
            "p99 s",
            "errors",
            "lost",
            "p50 vs baseline",
        ],
        rows,
        [
            f"{succeeded} jobs answered ok; {finished} recorded as ok by the coordinator",
            "every process (coordinator, 3 nodes, load generator) shares this machine's cores",
        ],
    )
