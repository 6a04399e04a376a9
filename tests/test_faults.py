"""Fault behaviour (deploy/FAULTS.md) with real processes and real HTTP: the job quorum
(all sites, or ``min_sites``), a node that does not answer in time, a node killed in the
middle of a job and brought back, a coordinator killed mid-job and restarted, a resent task
answered from the node's record, and an ingest killed mid-way on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, text

from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.serving import BackgroundServer
from node.audit import AuditLog
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from node.store.engine import open_engine
from node.tasks import TaskStore
from schemas.keys import load_private_key
from schemas.signing import sign_headers
from schemas.wire import TaskRequest
from tests.support.consortium import clinical_sites
from tests.support.deployment import FEDPSY, Served, free_port, make_node

pytestmark = pytest.mark.xdist_group("faults")
SIZES = {"amsterdam": 50, "berlin": 40, "copenhagen": 30}
VICTIM = "copenhagen"
META = {"analysis": "meta", "formula": "madrs_total ~ age", "term": "age"}


@dataclass
class World:
    root: Path
    coord_dir: Path
    dirs: dict[str, Path]
    victim: Served
    servers: list[BackgroundServer] = field(default_factory=list)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        with Coordinator.open(self.coord_dir) as coord:
            return asyncio.run(coord.run(request))

    def victim_tasks(self) -> TaskStore:
        return TaskStore(open_engine(f"sqlite:///{self.dirs[VICTIM] / 'store.sqlite'}"), VICTIM)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("faults")
    coord = Coordinator.create(root / "coordinator")
    coord.close()
    config = root / "coordinator" / "coordinator.toml"
    config.write_text(
        config.read_text().replace("request_timeout_s = 60.0", "request_timeout_s = 3.0")
    )
    pub = root / "coordinator" / "coordinator.pub"
    dirs = {
        site: make_node(root / "nodes", site, person, obs, pub)
        for site, (person, obs) in clinical_sites(SIZES).items()
    }
    policy = dirs[VICTIM] / "policy.toml"  # the victim holds meta tasks for approval
    policy.write_text(policy.read_text().replace("[approval]\n", '[approval]\nmeta = "manual"\n'))
    servers = []
    with Coordinator.open(root / "coordinator") as coord:
        for site in ("amsterdam", "berlin"):
            node = NodeSite.open(dirs[site])
            server = BackgroundServer(create_app(NodeService(node), "a" * 32)).start()
            servers.append(server)
            coord.add_node(site, server.url)
        victim = Served("node", dirs[VICTIM], "127.0.0.1", free_port()).start()
        coord.add_node(VICTIM, victim.url)
    built = World(root, root / "coordinator", dirs, victim, servers)
    yield built
    victim.stop()
    for server in servers:
        server.stop()


def test_quorum_all_sites_by_default_or_min_sites(world: World) -> None:
    world.victim.stop()
    try:
        default = world.run({"analysis": "count"})
        assert default["status"] == "error", default
        assert default["reason"]["code"] == "site_unreachable"
        assert default["reason"]["sites"] == {VICTIM: "site_unreachable"}
        assert VICTIM in default["reason"]["detail"]

        two = world.run({"analysis": "count", "min_sites": 2})
        assert two["status"] == "ok", two
        assert two["result"]["n"] == SIZES["amsterdam"] + SIZES["berlin"]
        assert two["dropped_sites"] == {VICTIM: "site_unreachable"}
        assert set(two["sites"]) == {"amsterdam", "berlin"}

        three = world.run({"analysis": "count", "min_sites": 3})
        assert three["status"] == "error", three
        assert three["reason"]["code"] == "quorum_not_met"
        assert three["reason"]["sites"] == {VICTIM: "site_unreachable"}
        assert "2 of 3 sites can answer" in three["reason"]["detail"]

        four = world.run({"analysis": "count", "min_sites": 4})
        assert four["reason"]["code"] == "quorum_not_met"
        assert "only 3 sites take part" in four["reason"]["detail"]

        selected = world.run(
            {
                "analysis": "count",
                "cohort": {
                    "all": [  # not asked: no harm
                        {"var": "site", "op": "in", "value": ["amsterdam", "berlin"]}
                    ]
                },
            }
        )
        assert selected["status"] == "ok", selected
    finally:
        world.victim.start()
    back = world.run({"analysis": "count"})  # the node came back: all sites again
    assert back["status"] == "ok", back
    assert back["result"]["n"] == sum(SIZES.values())


def test_node_timeout_then_recovery(world: World) -> None:
    assert world.victim.process is not None
    world.victim.process.send_signal(signal.SIGSTOP)  # alive, accepting, never answering
    try:
        started = time.monotonic()
        stuck = world.run({"analysis": "count"})
        took = time.monotonic() - started
        assert stuck["status"] == "error", stuck
        assert stuck["reason"]["sites"] == {VICTIM: "site_timeout"}
        assert took < 15, took  # bounded by the request timeout (3 s), not the job deadline
        quorum = world.run({"analysis": "count", "min_sites": 2})
        assert quorum["status"] == "ok", quorum
        assert quorum["dropped_sites"] == {VICTIM: "site_timeout"}
    finally:
        world.victim.process.send_signal(signal.SIGCONT)
    again = world.run({"analysis": "count"})
    assert again["status"] == "ok" and again["result"]["n"] == sum(SIZES.values()), again


def _wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_node_killed_mid_job_is_left_out_and_comes_back(world: World) -> None:
    before = {t["task_id"] for t in world.victim_tasks().pending()}
    outcome: dict[str, Any] = {}
    job = threading.Thread(target=lambda: outcome.update(world.run({**META, "min_sites": 2})))
    job.start()
    pending = _wait_for(
        lambda: [t for t in world.victim_tasks().pending() if t["task_id"] not in before],
        "a pending task at the node",
    )
    world.victim.kill()  # SIGKILL while the coordinator waits on it
    job.join(timeout=60)
    assert not job.is_alive()
    assert outcome["status"] == "ok", outcome
    assert outcome["dropped_sites"] == {VICTIM: "site_unreachable"}
    assert {row["site"] for row in outcome["result"]["per_site"]} == {"amsterdam", "berlin"}

    world.victim.start()  # it comes back with everything it had
    still = {t["task_id"] for t in world.victim_tasks().pending()}
    assert pending[0]["task_id"] in still  # the held task survived, awaiting the site
    engine = open_engine(f"sqlite:///{world.dirs[VICTIM] / 'store.sqlite'}")
    assert AuditLog(engine).verify().ok
    back = world.run({"analysis": "count"})
    assert back["status"] == "ok" and back["result"]["n"] == sum(SIZES.values()), back


def test_coordinator_killed_mid_job_closes_it_cleanly_on_restart(world: World) -> None:
    with Coordinator.open(world.coord_dir) as coord:
        token = registry.add_user(coord.engine, f"r{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {token}"}
    served = Served("coordinator", world.coord_dir, "127.0.0.1", free_port()).start()
    try:
        job_id = httpx.post(
            served.url + "/v1/analyses", json=META, headers=headers, timeout=10
        ).json()["job_id"]

        def waiting() -> bool:
            job = httpx.get(f"{served.url}/v1/analyses/{job_id}", headers=headers).json()
            return bool(job["sites"].get(VICTIM) == "waiting for approval")

        _wait_for(waiting, "the job to wait at the victim")
        held = [t for t in world.victim_tasks().pending() if t["request"]["job_id"] == job_id]
        assert len(held) == 1
        served.kill()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{served.url}/v1/analyses/{job_id}", headers=headers, timeout=2)
        served.start()
        job = httpx.get(f"{served.url}/v1/analyses/{job_id}", headers=headers).json()
        assert job["status"] == "error", job
        assert job["result"]["reason"]["code"] == "job_interrupted"
        assert "waiting for approval" in job["result"]["reason"]["detail"]
        assert "job_interrupted" in (served.log.read_text() if served.log else "")
        # nothing was sent twice: the node holds the one task it had, still pending
        again = [t for t in world.victim_tasks().pending() if t["request"]["job_id"] == job_id]
        assert [t["task_id"] for t in again] == [t["task_id"] for t in held]
        fresh = httpx.post(
            served.url + "/v1/analyses?wait=true",
            json={"analysis": "count"},
            headers=headers,
            timeout=60,
        ).json()
        assert fresh["status"] == "ok" and fresh["result"]["n"] == sum(SIZES.values()), fresh
    finally:
        served.stop()


def test_resent_task_returns_the_stored_outcome(world: World, tmp_path: Path) -> None:
    person, obs = clinical_sites({"oslo": 25}, seed=11)["oslo"]
    node_dir = make_node(tmp_path, "oslo", person, obs, world.coord_dir / "coordinator.pub")
    node = NodeSite.open(node_dir)
    key = load_private_key(world.coord_dir / "coordinator.key")

    def send(task_id: str) -> httpx.Response:
        task = TaskRequest(
            task_id=task_id, job_id="resend", analysis="count", step={"step": "count"}
        )
        body = task.model_dump_json().encode()
        signed = {
            **sign_headers(key, "POST", "/v1/tasks", body),
            "Content-Type": "application/json",
        }
        return httpx.post(server.url + "/v1/tasks", content=body, headers=signed)

    with BackgroundServer(create_app(NodeService(node), "a" * 32)) as server:
        first = send("resend-0000001")
        assert first.status_code == 200 and first.json()["result"]["n"] == 25
        audit = AuditLog(node.engine)
        entries = len(audit.entries())
        more = tmp_path / "more.csv"  # the data change: a recomputation would see 30
        pd.DataFrame({"person_id": [f"NEW-{i}" for i in range(5)], "age": [40.0] * 5}).to_csv(
            more, index=False
        )
        node.ingest(more)
        second = send("resend-0000001")  # same task id, new signature and nonce
        assert second.status_code == 200
        assert second.json() == first.json()
        assert len(audit.entries()) == entries  # not audited twice
        fresh = send("resend-0000002")
        assert fresh.json()["result"]["n"] == 30
    assert audit.verify().ok


# -- ingestion killed mid-way ------------------------------------------------------------


def _big_flat_file(path: Path, n: int) -> Path:
    rng = np.random.default_rng(5)
    pd.DataFrame(
        {
            "person_id": [f"K{i:07d}" for i in range(n)],
            "visit": "baseline",
            "age": rng.uniform(18, 80, n).round(1),
            "madrs_total": rng.integers(0, 60, n),
            "hamd17_total": rng.integers(0, 52, n),
            "cgi_s": rng.integers(1, 8, n),
            "education_years": rng.integers(8, 22, n),
        }
    ).to_csv(path, index=False)
    return path


def _status(node_dir: Path) -> dict[str, Any]:
    node = NodeSite.open(node_dir)
    try:
        return node.status()
    finally:
        node.engine.dispose()


def _writer_active(url: str, admin: Engine | None, application: str) -> bool:
    if admin is not None:
        with admin.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "select count(*) from pg_stat_activity where application_name = :a "
                        "and backend_xid is not null"
                    ),
                    {"a": application},
                ).scalar()
            )
    path = url.removeprefix("sqlite:///")
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # "database is locked": a writer holds the lock
        return True
    finally:
        probe.close()


def test_ingest_killed_mid_way_leaves_the_store_as_it_was(store_url: str, tmp_path: Path) -> None:
    application = f"fedpsy_kill_{uuid.uuid4().hex[:10]}"
    postgres = store_url.startswith("postgresql")
    url = f"{store_url}&application_name={application}" if postgres else store_url
    admin = create_engine(store_url.split("?")[0]) if postgres else None
    person, obs = clinical_sites({"kiel": 30})["kiel"]
    make_node(tmp_path, "kiel", person, obs, database_url=url)
    node_dir = tmp_path / "kiel"
    before = _status(node_dir)
    big = _big_flat_file(tmp_path / "big.csv", 40_000)
    proc = subprocess.Popen(
        [FEDPSY, "node", "ingest", str(node_dir), str(big)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(
            lambda: proc.poll() is not None or _writer_active(url, admin, application),
            "the ingest to start writing",
            timeout=120,
        )
        time.sleep(0.3)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if admin is not None:
            admin.dispose()
    after = _status(node_dir)
    assert after["tables"] == before["tables"]
    assert after["batches"] == before["batches"]
    if not postgres:
        check = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()
    small = tmp_path / "small.csv"  # the store takes the next load as usual
    pd.DataFrame({"person_id": ["Z-1", "Z-2"], "age": [30.0, 31.0]}).to_csv(small, index=False)
    node = NodeSite.open(node_dir)
    try:
        node.ingest(small)
        assert node.status()["tables"]["person"] == before["tables"]["person"] + 2
    finally:
        node.engine.dispose()
