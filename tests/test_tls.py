"""TLS between coordinator and nodes: a real `fedpsy node serve` process with a consortium
certificate and mutual TLS answers the coordinator end to end; a node with a certificate
from another CA, a certificate for another host name, plain HTTP, and a client without a
certificate (or with one from another CA) are all refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from coordinator.service import Coordinator
from coordinator.store import tables as t
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from schemas.errors import FedpsyError
from schemas.tls import ServerTls
from tests.support.consortium import clinical_sites
from tests.support.deployment import (
    Pki,
    Served,
    TlsServer,
    append_serve_table,
    free_port,
    make_node,
)

pytestmark = pytest.mark.xdist_group("tls")
SITE = "berlin"
ROWS = 40


@dataclass
class TlsWorld:
    root: Path
    pki: Pki
    rogue: Pki
    node_dir: Path
    coord_dir: Path
    node: Served

    def coordinator(self) -> Coordinator:
        return Coordinator.open(self.coord_dir)

    def impostor(self, pki: Pki, name: str) -> TlsServer:
        """The same node's API served in process with ``pki``'s certificate ``name``."""
        site = NodeSite.open(self.node_dir)
        tls = ServerTls(pki.root / f"{name}.pem", pki.root / f"{name}.key")
        return TlsServer(create_app(NodeService(site), "x" * 32), tls)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWorld]:
    root = tmp_path_factory.mktemp("tls")
    pki, rogue = Pki.create(root / "pki"), Pki.create(root / "rogue-pki")
    node_cert, node_key = pki.issue(SITE)
    pki.issue("coordinator")
    pki.issue("elsewhere", dns=("other.example",), ips=())
    rogue.issue(SITE)
    rogue.issue("rogue-client")
    Coordinator.create(root / "coordinator").close()
    append_serve_table(
        root / "coordinator" / "coordinator.toml",
        tls_ca_certs=str(pki.ca),
        nodes_client_certfile=str(pki.root / "coordinator.pem"),
        nodes_client_keyfile=str(pki.root / "coordinator.key"),
    )
    person, obs = clinical_sites({SITE: ROWS})[SITE]
    node_dir = make_node(
        root / "nodes", SITE, person, obs, root / "coordinator" / "coordinator.pub"
    )
    append_serve_table(
        node_dir / "node.toml",
        tls_certfile=str(node_cert),
        tls_keyfile=str(node_key),
        tls_ca_certs=str(pki.ca),
        tls_client_auth="required",
    )
    node = Served("node", node_dir, "127.0.0.1", free_port(), scheme="https")
    node.start(verify=pki.client_context("coordinator"))
    yield TlsWorld(root, pki, rogue, node_dir, root / "coordinator", node)
    node.stop()


def _register_at(coord: Coordinator, url: str) -> None:
    with coord.engine.begin() as conn:
        conn.execute(update(t.node).where(t.node.c.site == SITE).values(url=url))


def test_coordinator_reaches_node_over_mutual_tls(world: TlsWorld) -> None:
    with world.coordinator() as coord:
        assert coord.transport.https_only
        record = coord.add_node(SITE, world.node.url)
        assert record.url.startswith("https://")
        result = asyncio.run(coord.run({"analysis": "count"}))
    assert result["status"] == "ok", result
    assert result["result"]["n"] == ROWS


def test_mutual_tls_refuses_a_client_without_a_consortium_certificate(world: TlsWorld) -> None:
    health = world.node.url + "/health"
    ok = httpx.get(health, verify=world.pki.client_context("coordinator"))
    assert ok.status_code == 200 and ok.json()["site"] == SITE
    with pytest.raises(httpx.HTTPError):  # trusts the CA but shows no certificate
        httpx.get(health, verify=world.pki.client_context(None), timeout=5)
    wrong = world.pki.client_context(None)
    wrong.load_cert_chain(
        world.rogue.root / "rogue-client.pem", world.rogue.root / "rogue-client.key"
    )
    with pytest.raises(httpx.HTTPError):  # a certificate, but from another CA
        httpx.get(health, verify=wrong, timeout=5)


def test_plain_http_is_refused_when_tls_is_configured(world: TlsWorld) -> None:
    plain = f"http://127.0.0.1:{world.node.port}"
    with pytest.raises(httpx.HTTPError):  # the node speaks only TLS on its port
        httpx.get(plain + "/health", timeout=5)
    with world.coordinator() as coord:
        with pytest.raises(FedpsyError) as err:
            coord.add_node(SITE, plain)
        assert err.value.code == "tls_required"
        coord.add_node(SITE, world.node.url)
        _register_at(coord, plain)  # e.g. registered before TLS was configured
        result = asyncio.run(coord.run({"analysis": "count"}))
        _register_at(coord, world.node.url)
    assert result["status"] == "error", result
    assert result["reason"]["sites"] == {SITE: "tls_required"}
    assert "plain HTTP" in result["reason"]["detail"]


def test_node_with_a_certificate_from_another_ca_is_refused(world: TlsWorld) -> None:
    with world.coordinator() as coord, world.impostor(world.rogue, SITE) as impostor:
        with pytest.raises(FedpsyError) as err:
            coord.add_node(SITE, impostor.url)
        assert err.value.code == "site_unreachable"
        assert "CERTIFICATE_VERIFY_FAILED" in err.value.detail
        coord.add_node(SITE, world.node.url)
        _register_at(coord, impostor.url)  # the registered address now answers as impostor
        result = asyncio.run(coord.run({"analysis": "count"}))
        _register_at(coord, world.node.url)
        assert result["status"] == "error", result
        assert result["reason"]["sites"] == {SITE: "site_unreachable"}
        assert "CERTIFICATE_VERIFY_FAILED" in result["reason"]["detail"]
        again = asyncio.run(coord.run({"analysis": "count"}))  # the real node still answers
    assert again["status"] == "ok" and again["result"]["n"] == ROWS


def test_certificate_for_another_host_name_is_refused(world: TlsWorld) -> None:
    with (
        world.coordinator() as coord,
        world.impostor(world.pki, "elsewhere") as server,
        pytest.raises(FedpsyError) as err,
    ):
        coord.add_node(SITE, server.url)
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.detail
    assert "mismatch" in err.value.detail.lower()


def test_coordinator_serves_https(world: TlsWorld) -> None:
    cert, key = world.pki.root / "coordinator.pem", world.pki.root / "coordinator.key"
    served = Served(
        "coordinator",
        world.coord_dir,
        "127.0.0.1",
        free_port(),
        scheme="https",
        env={
            "FEDPSY_COORDINATOR_TLS_CERTFILE": str(cert),
            "FEDPSY_COORDINATOR_TLS_KEYFILE": str(key),
        },
    )
    served.start(verify=world.pki.client_context(None))
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=5)
        with pytest.raises(httpx.HTTPError):  # a client trusting only another CA
            httpx.get(served.url + "/health", verify=world.rogue.client_context(None), timeout=5)
    finally:
        served.stop()
