"""Deployment mode: a real ``flower-superlink`` and one ``flower-supernode`` per site on
loopback, the run submitted with ``flwr run``, each site's ClientApp working through its
node directory's gate and audit."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from coordinator.analyses import run_analysis
from coordinator.training.deploy import DeploymentRuntime, start_superlink
from node.audit import AuditLog
from node.frame_store import StoreFrameSource
from node.site import NodeSite
from node.training.approvals import approve_app
from node.training.supernode import start_supernode
from schemas.analyses import parse_request
from schemas.analyses.train import TrainingResult
from schemas.training.bundle import app_hash
from tests.support.consortium import clinical_sites
from tests.support.federation import InProcessFederation

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flower")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DeployedFederation(InProcessFederation):
    """The sites' stores for the planning step; rounds on the SuperLink."""

    def __init__(self, nodes: dict[str, NodeSite], runtime: DeploymentRuntime) -> None:
        super().__init__({s: StoreFrameSource(n.engine, s, n.dictionary)
                          for s, n in nodes.items()})  # fmt: skip
        self.runtime = runtime

    def training_runtime(self) -> DeploymentRuntime:
        return self.runtime

    def training_links(self) -> list[Any]:
        return []


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("deploy")
    data = clinical_sites({"berlin": 160, "oslo": 140, "lyon": 120})
    nodes: dict[str, NodeSite] = {}
    with ExitStack() as stack:
        for site, (person, obs) in data.items():
            folder = root / "data" / site
            folder.mkdir(parents=True)
            person.to_csv(folder / "person.csv", index=False)
            obs.to_csv(folder / "observations.csv", index=False)
            node = stack.enter_context(NodeSite.create(root / site, site, None))
            node.ingest(folder)
            approve_app(node.dir.root, app_hash(), "fedpsy training app")
            nodes[site] = node
        port = free_port()
        link = start_superlink(root / "coordinator" / "flwr", port, root / "superlink.log",
                               insecure=True)  # fmt: skip
        stack.callback(_stop, link)
        for site, node in nodes.items():
            process = start_supernode(node.dir.root, f"127.0.0.1:{port}", free_port(),
                                      root / f"{site}.log", insecure=True)  # fmt: skip
            stack.callback(_stop, process)
        runtime = DeploymentRuntime(root / "coordinator" / "flwr", f"127.0.0.1:{port}",
                                    insecure=True, timeout=150)  # fmt: skip
        yield {"nodes": nodes, "runtime": runtime, "root": root}


def test_training_on_superlink_and_supernodes(deployment: dict[str, Any]) -> None:
    nodes, runtime = deployment["nodes"], deployment["runtime"]
    request = parse_request({"analysis": "train", "formula": "ketamine ~ age + madrs_total",
                             "rounds": 1, "local_epochs": 2, "bins": 1, "seed": 4})
    federation = DeployedFederation(nodes, runtime)
    result, _ = asyncio.run(run_analysis(request, federation))
    assert isinstance(result, TrainingResult)
    assert [h.round for h in result.history] == [1]
    assert set(result.metrics.per_site) == set(nodes) == set(result.local_only)
    assert result.metrics.n == sum(s.n for s in result.metrics.per_site.values()) > 0
    assert runtime.last_run["status"] == "finished:completed"
    assert runtime.last_run["network-traffic"]["total-bytes"] > 0
    for node in nodes.values():
        entries = AuditLog(node.engine).entries()
        released = [e for e in entries if e.kind == "released"]
        assert len(released) == 4  # fit, validate, test, local
        assert all(e.payload["left"]["result"]["site"] == node.config.site for e in released)
        assert AuditLog(node.engine).verify().ok
