"""Signed result receipts over real signed HTTP: every answering site signs what it
released, the coordinator signs the result, ``fedpsy verify`` passes a genuine result and
names the place of each tampering, and a site confirms its receipt against its audit log."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from node.audit import AuditLog
from schemas import __version__
from schemas.keys import generate_private_key
from schemas.receipts import GENESIS, Receipt, chained, digest, part_digests, sign, sign_receipt
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("receipts")
SIZES = {"oslo": 40, "paris": 35}
runner = CliRunner()


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("receipts"), clinical_sites(SIZES))
    yield built
    built.close()


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request)).to_dict()


@pytest.fixture(scope="module")
def genuine(consortium: LocalConsortium) -> dict[str, Any]:
    """A secure-aggregated summary (masked vectors leave the sites) signed end to end."""
    result = run(consortium, {"analysis": "summary", "variables": ["age", "madrs_total"]})
    assert result["status"] == "ok" and result["privacy"]["secure_aggregation"], result
    return json.loads(json.dumps(result))  # as written to RESULT.json


def _write(tmp_path: Path, result: dict[str, Any], name: str = "result.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


def verify(consortium: LocalConsortium, path: Path, *extra: str) -> Any:
    where = ["--coordinator", str(consortium.coordinator.dir.root)] if not extra else list(extra)
    return runner.invoke(app, ["verify", str(path), *where])


def test_every_answering_site_signs_a_receipt_of_what_left(
    consortium: LocalConsortium, genuine: dict[str, Any]
) -> None:
    assert set(genuine["receipts"]) == set(SIZES)
    for site, raw in genuine["receipts"].items():
        receipt = Receipt.model_validate(raw)
        node = consortium.nodes[site]
        assert receipt.job_id == genuine["request_id"] and receipt.site == site
        assert receipt.dictionary_hash == node.dictionary.hash
        assert receipt.policy_hash == digest(consortium.services[site].policy.model_dump())
        assert receipt.valid_for(node_key(consortium, site))
        released = [
            e.payload["receipt"]
            for e in AuditLog(node.engine).entries()
            if e.kind == "released" and e.payload["receipt"]["job_id"] == genuine["request_id"]
        ]
        assert released[-1] == raw  # the audit holds the same receipt and digests
        chain = GENESIS
        for logged in released:  # every phase and round of the job, chained
            chain = chained(chain, logged["released_digest"])
        assert receipt.chain == chain and len(released) >= 2


def node_key(consortium: LocalConsortium, site: str) -> Any:
    from schemas.keys import load_private_key

    return load_private_key(consortium.nodes[site].dir.private_key).public_key()


def test_verify_passes_a_genuine_result(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    path = _write(tmp_path, genuine)
    ok = verify(consortium, path)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"valid: summary job {genuine['request_id']}, ok")
    assert "receipts of 2 site(s): oslo (n=40), paris (n=35)" in ok.output
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "coordinator.pub").write_bytes(consortium.coordinator.dir.public_key.read_bytes())
    for site, node in consortium.nodes.items():
        (keys / f"{site}.pub").write_bytes(node.dir.public_key.read_bytes())
    assert verify(consortium, path, "--keys", str(keys)).exit_code == 0
    coord = Coordinator.open(consortium.coordinator.dir.root)
    with BackgroundServer(coordinator_app(coord)) as server:
        by_url = verify(consortium, path, "--coordinator", server.url)
    coord.close()
    assert by_url.exit_code == 0, by_url.output


def _tampered(genuine: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(genuine)


def test_a_changed_estimate_is_named(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    changed = _tampered(genuine)
    changed["result"]["variables"]["age"]["mean"] += 0.5
    out = verify(consortium, _write(tmp_path, changed))
    assert out.exit_code == 1, out.output
    assert "[result_altered]" in out.output
    assert "result.variables: altered after the coordinator signed the result" in out.output
    rows = _tampered(genuine)
    rows["sites"]["paris"]["n"] = 30
    assert "sites: altered" in verify(consortium, _write(tmp_path, rows)).output


def test_a_removed_receipt_is_named(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    removed = _tampered(genuine)
    del removed["receipts"]["paris"]
    out = verify(consortium, _write(tmp_path, removed))
    assert out.exit_code == 1
    assert "receipts.paris: no receipt from site paris, which answered" in out.output
    unsigned = _tampered(genuine)
    del unsigned["signature"]
    out = verify(consortium, _write(tmp_path, unsigned))
    assert out.exit_code == 1 and "signature: the result carries no coordinator" in out.output


def test_a_receipt_from_another_job_is_named(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    other = run(consortium, {"analysis": "summary", "variables": ["age", "madrs_total"]})
    swapped = _tampered(genuine)
    swapped["receipts"]["paris"] = json.loads(json.dumps(other["receipts"]["paris"]))
    out = verify(consortium, _write(tmp_path, swapped))
    assert out.exit_code == 1
    assert f"receipts.paris: a receipt of job {other['request_id']}, not of this job" in out.output


def test_a_forged_key_is_named(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    forger = generate_private_key()
    forged = _tampered(genuine)
    body = {k: v for k, v in forged["receipts"]["paris"].items() if k not in ("key", "signature")}
    forged["receipts"]["paris"] = sign_receipt(forger, **body).model_dump()
    out = verify(consortium, _write(tmp_path, forged))
    assert out.exit_code == 1
    assert "receipts.paris: not signed with the key pinned for site paris" in out.output
    resigned = _tampered(genuine)
    resigned["result"]["variables"]["age"]["n"] = 1000
    fields = part_digests(resigned)
    resigned["signature"] = {"key": genuine["signature"]["key"], "fields": fields}
    resigned["signature"]["value"] = sign(forger, fields)
    out = verify(consortium, _write(tmp_path, resigned))
    assert out.exit_code == 1
    assert "signature: the coordinator's signature does not verify" in out.output
    bad_sig = _tampered(genuine)
    bad_sig["receipts"]["oslo"]["at"] = "2020-01-01T00:00:00.000000Z"
    out = verify(consortium, _write(tmp_path, bad_sig))
    assert "receipts.oslo: the signature of site oslo does not verify" in out.output


def test_a_site_confirms_its_receipt_against_its_audit_log(
    consortium: LocalConsortium, genuine: dict[str, Any], tmp_path: Path
) -> None:
    paris = str(consortium.nodes["paris"].dir.root)
    path = _write(tmp_path, genuine)
    out = runner.invoke(app, ["node", "audit", paris, "--receipt", str(path)])
    assert out.exit_code == 0, out.output
    assert f"receipt of paris for job {genuine['request_id']} matches audit entry" in out.output
    changed = _tampered(genuine)
    changed["receipts"]["paris"]["released_digest"] = "f" * 64
    out = runner.invoke(app, ["node", "audit", paris, "--receipt", str(_write(tmp_path, changed))])
    assert out.exit_code == 1
    assert "receipts.paris: differs from audit entry" in out.output
    assert "released_digest" in out.output


def test_run_methods_prints_a_methods_paragraph(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"analysis": "summary", "variables": ["age"]}))
    root = str(consortium.coordinator.dir.root)
    out = runner.invoke(app, ["run", str(request), "--coordinator", root, "--methods"])
    assert out.exit_code == 0, out.output
    result_line, paragraph = out.stdout.strip().split("\n\n")
    result = json.loads(result_line)
    assert paragraph.startswith(
        f"We ran a federated summary analysis (variables age) with fedpsy {__version__} "
        "across 2 site(s): oslo (n = 40), paris (n = 35); 75 rows in all."
    )
    assert "(site policies: min cell 5, min cohort 5, min model rows 10)" in paragraph
    assert "secure aggregation" in paragraph and "differential privacy" not in paragraph
    assert f"hash {consortium.nodes['oslo'].dictionary.hash}" in paragraph
    assert f"job {result['request_id']}" in paragraph and "fedpsy verify" in paragraph


def test_the_dashboard_job_page_shows_the_methods_paragraph(consortium: LocalConsortium) -> None:
    from coordinator.store import registry

    token = registry.add_user(consortium.coordinator.engine, "methods-reader")
    coord = Coordinator.open(consortium.coordinator.dir.root)
    with (
        BackgroundServer(coordinator_app(coord)) as server,
        httpx.Client(base_url=server.url, follow_redirects=True) as client,
    ):
        client.post("/login", data={"token": token, "next": "/"})
        done = client.post("/v1/analyses?wait=true", json={"analysis": "count"}, timeout=60).json()
        page = client.get(f"/jobs/{done['request_id']}")
    coord.close()
    assert page.status_code == 200
    assert '<h3 id="methods-h">Methods</h3><p>We ran a federated count analysis' in page.text
    assert "oslo (n = 40), paris (n = 35)" in page.text
