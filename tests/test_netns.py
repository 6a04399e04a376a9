"""Nodes on other hosts: each node runs as a real `fedpsy node serve` process inside its
own network namespace, reached over a veth link on a private test subnet, serving HTTPS
with mutual TLS; the coordinator runs outside. The tests kill a node's process, cut a
link (`ip link set … down`) and restore it, before and in the middle of a job, and kill
and restart the coordinator mid-job: errors name the site and say what happened, and
nothing is lost at the nodes.

Needs root and `ip netns`; skipped otherwise, except with CI=true, where it must run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordinator.service import Coordinator
from coordinator.store import registry
from node.audit import AuditLog
from node.service import NodeService
from node.site import NodeSite
from tests.support.consortium import clinical_sites
from tests.support.deployment import Pki, Served, append_serve_table, free_port, make_node

pytestmark = [pytest.mark.xdist_group("netns"), pytest.mark.slow]
SIZES = {"amsterdam": 45, "berlin": 35}
PORT = 8701
META = {"analysis": "meta", "formula": "madrs_total ~ age", "term": "age"}


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _namespaces_usable() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"fpyprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except RuntimeError as exc:
        return f"`ip netns` does not work here: {exc}"
    return None


@dataclass
class Host:
    """A site's host: a namespace, a veth link to the test's namespace, a node process."""

    site: str
    netns: str
    outside: str  # veth end in the test's namespace
    inside: str  # veth end in the node's namespace
    address: str
    node_dir: Path
    node: Served

    def cut(self) -> None:
        _ip("netns", "exec", self.netns, "ip", "link", "set", self.inside, "down")

    def restore(self) -> None:
        _ip("netns", "exec", self.netns, "ip", "link", "set", self.inside, "up")


@dataclass
class Network:
    root: Path
    pki: Pki
    coord_dir: Path
    hosts: dict[str, Host] = field(default_factory=dict)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        with Coordinator.open(self.coord_dir) as coord:
            return asyncio.run(coord.run(request))

    def verify(self) -> Any:
        return self.pki.client_context("coordinator")

    def wait_reachable(self, host: Host, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(host.node.url + "/health", verify=self.verify(), timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"{host.site} not reachable again")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    why = _namespaces_usable()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"namespace tests must run in CI: {why}")
        pytest.skip(why)
    root = tmp_path_factory.mktemp("netns")
    tag = f"fp{os.getpid() % 100000}"
    subnet = 100 + os.getpid() % 100
    pki = Pki.create(root / "pki")
    pki.issue("coordinator")
    Coordinator.create(root / "coordinator").close()
    coord_dir = root / "coordinator"
    config = coord_dir / "coordinator.toml"
    config.write_text(
        config.read_text().replace("request_timeout_s = 60.0", "request_timeout_s = 2.0")
    )
    append_serve_table(
        config,
        tls_ca_certs=str(pki.ca),
        nodes_client_certfile=str(pki.root / "coordinator.pem"),
        nodes_client_keyfile=str(pki.root / "coordinator.key"),
    )
    net = Network(root, pki, coord_dir)
    created: list[str] = []
    try:
        for i, (site, (person, obs)) in enumerate(clinical_sites(SIZES).items()):
            netns, outside, inside = f"{tag}{site[:3]}", f"{tag}{site[:3]}o", f"{tag}{site[:3]}i"
            prefix = f"10.231.{subnet + i}"
            _ip("netns", "add", netns)
            created.append(netns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", netns)
            _ip("addr", "add", f"{prefix}.1/24", "dev", outside)
            _ip("link", "set", outside, "up")
            for args in (
                ("addr", "add", f"{prefix}.2/24", "dev", inside),
                ("link", "set", inside, "up"),
                ("link", "set", "lo", "up"),
            ):
                _ip("netns", "exec", netns, "ip", *args)
            node_dir = make_node(root / "nodes", site, person, obs, coord_dir / "coordinator.pub")
            cert, key = pki.issue(site, dns=(), ips=(f"{prefix}.2",))
            append_serve_table(
                node_dir / "node.toml",
                tls_certfile=str(cert),
                tls_keyfile=str(key),
                tls_ca_certs=str(pki.ca),
                tls_client_auth="required",
            )
            if site == "amsterdam":  # holds meta tasks for approval: a job waits there
                policy = node_dir / "policy.toml"
                policy.write_text(
                    policy.read_text().replace("[approval]\n", '[approval]\nmeta = "manual"\n')
                )
            node = Served(
                "node",
                node_dir,
                f"{prefix}.2",
                PORT,
                scheme="https",
                prefix=("ip", "netns", "exec", netns),
            ).start(verify=net.verify())
            net.hosts[site] = Host(site, netns, outside, inside, f"{prefix}.2", node_dir, node)
        with Coordinator.open(coord_dir) as coord:
            for host in net.hosts.values():
                coord.add_node(host.site, host.node.url)
        yield net
    finally:
        for host in net.hosts.values():
            host.node.kill()
        for netns in created:  # deleting a namespace deletes its veth pair too
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _tables(node_dir: Path) -> dict[str, int]:
    node = NodeSite.open(node_dir)
    try:
        return dict(node.status()["tables"])
    finally:
        node.engine.dispose()


def _audit_ok(node_dir: Path) -> bool:
    node = NodeSite.open(node_dir)
    try:
        return AuditLog(node.engine).verify().ok
    finally:
        node.engine.dispose()


def _pending(node_dir: Path, job_id: str | None = None) -> list[dict[str, Any]]:
    node = NodeSite.open(node_dir)
    try:
        service = NodeService(node)
        return [
            t for t in service.tasks.pending() if job_id is None or t["request"]["job_id"] == job_id
        ]
    finally:
        node.engine.dispose()


def _approve(node_dir: Path, task_id: str) -> None:
    node = NodeSite.open(node_dir)
    try:
        NodeService(node).decide(task_id, approve=True)
    finally:
        node.engine.dispose()


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_nodes_on_other_hosts_answer_over_mutual_tls(network: Network) -> None:
    result = network.run({"analysis": "count"})
    assert result["status"] == "ok", result
    assert result["result"]["n"] == sum(SIZES.values())
    host = network.hosts["berlin"]
    assert host.node.url == f"https://{host.address}:{PORT}"
    with pytest.raises(httpx.HTTPError):  # not on this host's loopback: on its own
        httpx.get(f"https://127.0.0.1:{PORT}/health", verify=network.verify(), timeout=2)


def test_node_process_killed_then_back(network: Network) -> None:
    host = network.hosts["berlin"]
    before = _tables(host.node_dir)
    host.node.kill()
    failed = network.run({"analysis": "count"})
    assert failed["status"] == "error", failed
    assert failed["reason"]["sites"] == {"berlin": "site_unreachable"}
    assert host.address in failed["reason"]["detail"]  # says where it could not connect
    partial = network.run({"analysis": "count", "min_sites": 1})
    assert partial["status"] == "ok", partial
    assert partial["result"]["n"] == SIZES["amsterdam"]
    assert partial["dropped_sites"] == {"berlin": "site_unreachable"}
    host.node.start(verify=network.verify())
    back = network.run({"analysis": "count"})
    assert back["status"] == "ok" and back["result"]["n"] == sum(SIZES.values()), back
    assert _tables(host.node_dir) == before and _audit_ok(host.node_dir)


def test_link_cut_and_restored(network: Network) -> None:
    host = network.hosts["berlin"]
    host.cut()
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(host.node.url + "/health", verify=network.verify(), timeout=1)
        started = time.monotonic()
        failed = network.run({"analysis": "count"})
        assert time.monotonic() - started < 30
        assert failed["status"] == "error", failed
        assert set(failed["reason"]["sites"]) == {"berlin"}
        assert failed["reason"]["sites"]["berlin"] in ("site_unreachable", "site_timeout")
        assert "berlin" in failed["reason"]["detail"]
        partial = network.run({"analysis": "count", "min_sites": 1})
        assert partial["status"] == "ok" and set(partial["dropped_sites"]) == {"berlin"}
    finally:
        host.restore()
    network.wait_reachable(host)
    assert host.node.process is not None and host.node.process.poll() is None  # never died
    back = network.run({"analysis": "count"})
    assert back["status"] == "ok" and back["result"]["n"] == sum(SIZES.values()), back


def test_link_cut_mid_job_and_restored_within_the_retries(network: Network) -> None:
    host = network.hosts["amsterdam"]  # it holds meta tasks until the site approves
    outcome: dict[str, Any] = {}
    job = threading.Thread(target=lambda: outcome.update(network.run(META)))
    job.start()
    task = _wait_for(lambda: _pending(host.node_dir), "a task waiting at amsterdam")[0]
    host.cut()
    with pytest.raises(httpx.HTTPError):  # the link is really down
        httpx.get(host.node.url + "/health", verify=network.verify(), timeout=1)
    time.sleep(0.5)  # the coordinator's polls fail meanwhile and are retried
    host.restore()
    _approve(host.node_dir, task["task_id"])
    job.join(timeout=120)
    assert not job.is_alive()
    assert outcome["status"] == "ok", outcome
    assert {row["site"] for row in outcome["result"]["per_site"]} == set(SIZES)
    assert "dropped_sites" not in outcome
    assert _audit_ok(host.node_dir)


def test_coordinator_killed_mid_job_and_restarted(network: Network) -> None:
    host = network.hosts["amsterdam"]
    with Coordinator.open(network.coord_dir) as coord:
        token = registry.add_user(coord.engine, f"r{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {token}"}
    served = Served("coordinator", network.coord_dir, "127.0.0.1", free_port()).start()
    try:
        job_id = httpx.post(
            served.url + "/v1/analyses", json=META, headers=headers, timeout=10
        ).json()["job_id"]
        held = _wait_for(lambda: _pending(host.node_dir, job_id), "the job's task at the node")
        served.kill()
        served.start()
        job = httpx.get(f"{served.url}/v1/analyses/{job_id}", headers=headers).json()
        assert job["status"] == "error", job
        assert job["result"]["reason"]["code"] == "job_interrupted"
        assert "amsterdam" in job["result"]["reason"]["detail"]
        assert [t["task_id"] for t in _pending(host.node_dir, job_id)] == [
            t["task_id"] for t in held
        ]  # not sent again, still the site's to decide
        fresh = httpx.post(
            served.url + "/v1/analyses?wait=true",
            json={"analysis": "count"},
            headers=headers,
            timeout=120,
        ).json()
        assert fresh["status"] == "ok" and fresh["result"]["n"] == sum(SIZES.values()), fresh
    finally:
        served.stop()
    assert all(_audit_ok(h.node_dir) for h in network.hosts.values())
