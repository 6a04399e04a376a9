"""Deployment mode through the command line, on loopback: ``fedpsy coordinator serve
--flower`` runs a real ``flower-superlink`` and ``fedpsy node serve --supernode`` a real
``flower-supernode`` (with the site's long-running ClientApp worker) next to each node's
API; a researcher's ``train`` request with ``"runtime": "superlink"`` runs its rounds
there as the coordinator's signed tasks, each site's ClientApp replaying them into its
node's API (signature, gate, secure aggregation, audit). The ServerApp receives only
masked updates, sends work only to the job's sites (not to a SuperNode of another site,
nor to one claiming a job's site with another identity), and a site that withdraws its
approval of the app refuses the next run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordinator.service import Coordinator
from coordinator.store import registry
from node.audit import AuditLog
from node.auth.trust import add_trusted_key
from node.privacy.approvals import approvals_path
from node.site import NodeSite
from schemas.training.bundle import app_hash
from tests.support.consortium import clinical_sites
from tests.support.deployment import make_node

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flower")]
SITES = {"berlin": 320, "oslo": 280, "lyon": 240}
"""Large enough that every site's held-out parts (split with its own secret salt) hold
more than min_cohort positives and negatives whatever the salt."""
TRAIN = {
    "analysis": "train",
    "formula": "ketamine ~ age + madrs_total",
    "rounds": 2,
    "patience": 2,
    "local_epochs": 2,
    "bins": 1,
    "seed": 4,
    "validation_fraction": 0.3,  # every site's validation part holds 5+ of each outcome
    "runtime": "superlink",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fedpsy(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """A ``fedpsy`` command in its own session (so its SuperLink or SuperNode and worker
    can be ended with it)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fedpsy.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )


def wait_for(
    url: str, process: subprocess.Popen[bytes], log: Path, verify: ssl.SSLContext | bool = True
) -> None:
    """Until ``url`` answers 200 (``process``, logging to ``log``, must stay up)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the command stop its Flower processes; the session is ended after."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything of this command left over


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("deploy")
    with Coordinator.create(root / "coordinator") as coord:
        public_key = coord.dir.public_key
        token = registry.add_user(coord.engine, "researcher")
    nodes: dict[str, Path] = {}
    for site, (person, obs) in clinical_sites(SITES).items():
        nodes[site] = make_node(root, site, person, obs, public_key)
    approved = subprocess.run(
        [sys.executable, "-m", "fedpsy.cli", "node", "approve-app", str(nodes["berlin"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert app_hash() in approved.stdout
    for site in ("oslo", "lyon"):
        approvals_path(nodes[site]).write_text(app_hash() + "\n")
    # connected to the same SuperLink but not in any job: a site the coordinator never
    # added, and a SuperNode that calls itself oslo with an identity of its own
    outsiders = {"zurich": root / "zurich", "oslo": root / "impostor"}
    for site, directory in outsiders.items():
        NodeSite.create(directory, site, None).close()
        add_trusted_key(directory, public_key)
        approvals_path(directory).write_text(app_hash() + "\n")
    superlink, api = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        log = root / "coordinator.log"
        coordinator = fedpsy(
            "coordinator",
            "serve",
            str(root / "coordinator"),
            "--port",
            str(api),
            "--flower",
            "--flower-port",
            str(superlink),
            log=log,
        )
        processes.append(coordinator)
        urls = {}
        for site, directory in [*nodes.items(), *outsiders.items()]:
            port, site_log = free_port(), root / f"{site}.log"
            process = fedpsy(
                "node",
                "serve",
                str(directory),
                "--port",
                str(port),
                "--supernode",
                f"127.0.0.1:{superlink}",
                "--supernode-port",
                str(free_port()),
                log=site_log,
            )
            processes.append(process)
            wait_for(f"http://127.0.0.1:{port}/health", process, site_log)
            if directory in nodes.values():
                urls[site] = f"http://127.0.0.1:{port}"
        wait_for(f"http://127.0.0.1:{api}/health", coordinator, log)
        with Coordinator.open(root / "coordinator") as coord:
            for site, url in urls.items():
                coord.add_node(site, url)
        yield {
            "root": root,
            "nodes": nodes,
            "outsiders": outsiders,
            "api": f"http://127.0.0.1:{api}",
            "token": token,
        }
    finally:
        for process in reversed(processes):
            stop(process)


def run(deployment: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        deployment["api"] + "/v1/analyses",
        params={"wait": "true"},
        json=request,
        timeout=180,
        headers={"Authorization": f"Bearer {deployment['token']}"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_training_on_superlink_and_supernodes(deployment: dict[str, Any]) -> None:
    envelope = run(deployment, TRAIN)
    assert envelope["status"] == "ok", envelope
    result = envelope["result"]
    assert [h["round"] for h in result["history"]] == [1, 2]
    assert set(result["metrics"]["per_site"]) == set(SITES) == set(result["local_only"])
    assert result["metrics"]["n"] == sum(s["n"] for s in result["metrics"]["per_site"].values())
    # each site's own test metrics left in the clear, as the request asked (per_site)
    assert envelope["privacy"]["secure_aggregation"] is False
    stored = httpx.get(
        f"{deployment['api']}/v1/models/{result['model_id']}",
        timeout=10,
        headers={"Authorization": f"Bearer {deployment['token']}"},
    ).json()
    assert stored["app_hash"] == app_hash()
    for site, directory in deployment["nodes"].items():
        with NodeSite.open(directory) as node:
            entries = AuditLog(node.engine).entries()
            assert AuditLog(node.engine).verify().ok
        # every phase came as a task signed by the coordinator, through the node's gate
        steps = [
            (e.payload["step"]["step"], e.payload["step"].get("phase"))
            for e in entries
            if e.kind == "received"
            and e.payload.get("analysis") == "train"
            and e.payload["step"]["step"] in ("train", "train_sum")
        ]
        assert sorted(steps) == sorted(
            [("train_sum", "fit")] * 2
            + [("train_sum", "validate")] * 2
            + [("train_sum", "test"), ("train", "test"), ("train", "local")]
        ), site
        assert all(e.payload["key"] for e in entries if e.kind == "received")
        # what left for the sums was masked: the audit records digests, never weights
        left = [e.payload["left"] for e in entries if e.kind == "released"]
        masked = [x for x in left if "masked_sha256" in x]
        assert len(masked) >= 5, site
        assert not any(x.get("result", {}).get("weights") for x in left)
    for site, directory in deployment["outsiders"].items():
        with NodeSite.open(directory) as node:  # said hello, got no work
            assert not [e for e in AuditLog(node.engine).entries() if e.kind == "received"], site


def test_updates_reach_the_serverapp_only_as_secure_sums(deployment: dict[str, Any]) -> None:
    envelope = run(deployment, {**TRAIN, "rounds": 1, "per_site": False})
    assert envelope["status"] == "ok", envelope
    assert envelope["privacy"] == {"secure_aggregation": True, "dp": None}
    assert envelope["result"]["metrics"]["per_site"] == {}


def test_a_site_that_withdraws_approval_refuses_the_run(deployment: dict[str, Any]) -> None:
    path = approvals_path(deployment["nodes"]["lyon"])
    path.write_text("# withdrawn\n")
    envelope = run(deployment, {**TRAIN, "rounds": 1})
    assert envelope["status"] == "refused", envelope
    assert "app_not_approved" in str(envelope["reason"])
