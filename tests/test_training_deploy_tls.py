"""Deployment mode over TLS with SuperNode authentication, through the command line on
loopback. ``fedpsy coordinator serve --flower`` with the coordinator's certificate, key
and CA runs a ``flower-superlink`` that serves TLS and admits only SuperNodes whose public
key the operator registered (``fedpsy coordinator register-supernode``); ``fedpsy node
serve --supernode`` with ``tls_ca_certs`` runs the site's SuperNode over TLS, signing with
the site's SuperNode key. Registered sites train; a bare SuperNode without a key, and a
site's SuperNode whose key was not registered, are refused by the SuperLink and never
get work — until the operator registers the site's key, when the site's SuperNode, started
again by ``fedpsy node serve``, joins; a wrong key file is refused with a message saying
which file to ask for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordinator.service import Coordinator
from coordinator.store import registry
from coordinator.training.superlink import write_connection
from coordinator.training.supernodes import list_supernodes, register_supernode
from node.audit import AuditLog
from node.privacy.approvals import approvals_path
from node.site import NodeSite
from node.training.supernode_keys import supernode_key
from schemas.errors import FedpsyError
from schemas.training.bundle import app_hash
from schemas.training.env import child_env
from tests.support.consortium import clinical_sites
from tests.support.deployment import Pki, append_serve_table, make_node
from tests.test_training_deploy import TRAIN, fedpsy, free_port, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flower")]
REGISTERED = {"berlin": 320, "oslo": 280}
"""Large enough that every site's held-out parts (split with its own secret salt) hold
more than min_cohort positives and negatives whatever the salt."""
ROGUE = "lyon"  # its SuperNode key is registered late


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedpsy.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )


def wait_until(check: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def online(home: Path) -> set[str]:
    return {str(n["node-id"]) for n in list_supernodes(home) if n.get("status") == "online"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("deploy-tls")
    pki = Pki.create(root / "pki")
    cert, key = pki.issue("coordinator")  # names localhost and 127.0.0.1
    coord_dir = root / "coordinator"
    with Coordinator.create(coord_dir) as coord:
        public_key = coord.dir.public_key
        token = registry.add_user(coord.engine, "researcher")
    append_serve_table(
        coord_dir / "coordinator.toml",
        tls_certfile=str(cert),
        tls_keyfile=str(key),
        tls_ca_certs=str(pki.ca),
    )
    nodes: dict[str, Path] = {}
    for site, (person, obs) in clinical_sites({**REGISTERED, ROGUE: 120}).items():
        directory = make_node(root, site, person, obs, public_key)
        site_cert, site_key = pki.issue(site)
        append_serve_table(
            directory / "node.toml",
            tls_certfile=str(site_cert),
            tls_keyfile=str(site_key),
            tls_ca_certs=str(pki.ca),
        )
        approvals_path(directory).write_text(app_hash() + "\n")
        nodes[site] = directory
    shown = cli("node", "supernode-key", str(nodes["berlin"]))  # site IT: the key to send
    assert shown.returncode == 0, shown.stderr
    berlin_key = nodes["berlin"] / "keys" / "supernode.pub"
    assert str(berlin_key) in shown.stdout and "(created)" in shown.stdout
    assert berlin_key.read_text().strip() in shown.stdout
    assert (berlin_key.parent / "supernode.key").stat().st_mode & 0o777 == 0o600
    public_keys = {"berlin": berlin_key, "oslo": supernode_key(nodes["oslo"]).public}
    verify = pki.client_context()
    superlink, api = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        log = root / "coordinator.log"
        coordinator = fedpsy(
            "coordinator",
            "serve",
            str(coord_dir),
            "--port",
            str(api),
            "--flower",
            "--flower-port",
            str(superlink),
            log=log,
        )
        processes.append(coordinator)
        wait_for(f"https://127.0.0.1:{api}/health", coordinator, log, verify)
        home = coord_dir / "flwr"
        # the operator admits both SuperNodes (berlin's through the command)
        done = cli("coordinator", "register-supernode", str(coord_dir), str(public_keys["berlin"]))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "registered (SuperNode " in done.stdout
        node_ids = {
            "berlin": done.stdout.split("(SuperNode ")[1].split(")")[0],
            "oslo": str(register_supernode(home, public_keys["oslo"]).node_id),
        }
        urls, started = {}, {}
        for site, directory in nodes.items():
            port, site_log = free_port(), root / f"{site}.log"
            started[site] = fedpsy(
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
            processes.append(started[site])
            urls[site] = f"https://127.0.0.1:{port}"
        for site, process in started.items():
            wait_for(urls[site] + "/health", process, root / f"{site}.log", verify)
        with Coordinator.open(coord_dir) as coord:
            for site in REGISTERED:
                coord.add_node(site, urls[site])
        assert wait_until(lambda: online(home) == set(node_ids.values()), timeout=180), (
            list_supernodes(home)
        )
        # a bare SuperNode that trusts the CA but brings no registered key
        (root / "intruder").mkdir()
        with (root / "intruder.log").open("ab") as out:
            intruder = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("flower-supernode")),
                    "--superlink",
                    f"127.0.0.1:{superlink}",
                    "--root-certificates",
                    str(pki.ca),
                    "--port",
                    str(free_port()),
                ],
                env=child_env(root / "intruder"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(intruder)
        yield {
            "root": root,
            "nodes": nodes,
            "api": f"https://127.0.0.1:{api}",
            "token": token,
            "verify": verify,
            "coordinator": coord_dir,
            "node_ids": node_ids,
            "intruder": intruder,
        }
    finally:
        for process in reversed(processes):
            stop(process)


def test_registered_supernodes_train_over_tls(deployment: dict[str, Any]) -> None:
    response = httpx.post(
        deployment["api"] + "/v1/analyses",
        params={"wait": "true"},
        json={**TRAIN, "rounds": 1, "patience": 1},
        timeout=180,
        verify=deployment["verify"],
        headers={"Authorization": f"Bearer {deployment['token']}"},
    )
    assert response.status_code == 200, response.text
    envelope = response.json()
    # the reason first: a long envelope is cut in the test log
    assert envelope["status"] == "ok", (envelope.get("reason"), envelope.get("sites"), envelope)
    result = envelope["result"]
    assert [h["round"] for h in result["history"]] == [1]
    assert ROGUE not in result["metrics"]["per_site"]
    connection = (deployment["coordinator"] / "flwr" / "config.toml").read_text()
    assert "root-certificates" in connection and "insecure" not in connection


def test_unregistered_supernodes_are_refused(deployment: dict[str, Any]) -> None:
    # a SuperNode without a key would register itself; with authentication on it may not
    intruder, log = deployment["intruder"], deployment["root"] / "intruder.log"
    assert intruder.wait(timeout=60) != 0, log.read_text()
    assert "All SuperNodes must be registered via the CLI" in log.read_text()
    # a site's SuperNode signing with a key the operator never registered is not activated
    log = deployment["nodes"][ROGUE] / "flwr" / "supernode.log"
    refused = wait_until(lambda: log.exists() and "Failed to activate SuperNode" in log.read_text())
    assert refused, log.read_text() if log.exists() else "no SuperNode log"
    # the SuperLink knows the registered SuperNodes only; neither of the others joined
    listed = cli("coordinator", "supernodes", str(deployment["coordinator"]), "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(str(node_id) for node_id in _ids(listed.stdout)) == sorted(
        deployment["node_ids"].values()
    )
    with NodeSite.open(deployment["nodes"][ROGUE]) as node:
        entries = AuditLog(node.engine).entries()
    assert not [e for e in entries if e.kind in ("received", "refused")]


def test_a_site_registered_later_joins_without_a_restart(deployment: dict[str, Any]) -> None:
    """``fedpsy node serve`` starts the refused SuperNode again; once the operator
    registers its key, it is admitted."""
    home = deployment["coordinator"] / "flwr"
    late = register_supernode(home, supernode_key(deployment["nodes"][ROGUE]).public)
    assert late.node_id is not None
    expected = {*deployment["node_ids"].values(), str(late.node_id)}
    assert wait_until(lambda: online(home) == expected, timeout=120), list_supernodes(home)


def _ids(listing: str) -> list[str]:
    return [str(node["node-id"]) for node in json.loads(listing)]


def test_register_supernode_refuses_a_wrong_key_file(deployment: dict[str, Any]) -> None:
    coord, rogue = deployment["coordinator"], deployment["nodes"][ROGUE] / "keys"
    private = cli("coordinator", "register-supernode", str(coord), str(rogue / "supernode.key"))
    assert private.returncode == 2, private.stdout
    assert "[bad_input]" in private.stderr
    assert "is a private key" in private.stderr and "supernode.pub" in private.stderr
    with pytest.raises(FedpsyError, match="is not a SuperNode public key"):
        register_supernode(coord / "flwr", rogue / "node.pub")  # the node's Ed25519 PEM key
    berlin = deployment["nodes"]["berlin"] / "keys" / "supernode.pub"
    assert register_supernode(coord / "flwr", berlin).node_id is None  # already registered


def test_plain_mode_refuses_registration_and_other_interfaces(tmp_path: Path) -> None:
    """Without TLS Flower cannot authenticate SuperNodes: the SuperLink stays on loopback
    and registering a key is refused rather than pretending to restrict anything."""
    Coordinator.create(tmp_path / "plain").close()
    write_connection(tmp_path / "plain" / "flwr", "127.0.0.1:9", insecure=True)
    public = supernode_key(tmp_path / "site").public
    done = cli("coordinator", "register-supernode", str(tmp_path / "plain"), str(public))
    assert done.returncode == 2 and "without TLS" in done.stderr, done.stderr
    served = cli(
        "coordinator",
        "serve",
        str(tmp_path / "plain"),
        "--port",
        str(free_port()),
        "--flower",
        "--flower-host",
        "0.0.0.0",
    )
    assert served.returncode == 2 and "loopback" in served.stderr, served.stderr
