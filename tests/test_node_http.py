"""The node over real HTTP: authentication failures, the privacy gate's refusal paths,
approval, audit — each with the exact error code a client sees."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fedpsy.serving import BackgroundServer
from node.audit import AuditLog
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from schemas.keys import generate_private_key, write_public_key
from schemas.signing import sign_headers
from tests.support.consortium import LocalConsortium, clinical_sites, edit_policy

pytestmark = pytest.mark.xdist_group("node_http")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    root = tmp_path_factory.mktemp("node_http")
    data = clinical_sites({"alpha": 60, "beta": 40})
    built = LocalConsortium.build(root, data, {"beta": {"default_approval": '"manual"'}})
    yield built
    built.close()


def task(step: dict[str, Any], analysis: str = "summary") -> bytes:
    return json.dumps(
        {"task_id": uuid.uuid4().hex, "job_id": "job-test", "analysis": analysis, "step": step}
    ).encode()


def post(
    c: LocalConsortium, site: str, body: bytes, key: Any = None, **sign: Any
) -> httpx.Response:
    key = key or c.coordinator.key
    headers = sign_headers(key, "POST", "/v1/tasks", body, **sign)
    headers["Content-Type"] = "application/json"
    return httpx.post(c.servers[site].url + "/v1/tasks", content=body, headers=headers)


COUNT = {"step": "count"}


def test_health_and_info_are_public(consortium: LocalConsortium) -> None:
    health = httpx.get(consortium.servers["alpha"].url + "/health").json()
    assert health["status"] == "ok" and health["site"] == "alpha"
    info = httpx.get(consortium.servers["alpha"].url + "/v1/info").json()
    assert info["dictionary_hash"] == health["dictionary_hash"]
    assert "BEGIN PUBLIC KEY" in info["public_key"]
    assert info["policy"]["min_cohort"] == 5
    assert "count" in info["steps"]


def test_signed_count_matches_rows(consortium: LocalConsortium) -> None:
    response = post(consortium, "alpha", task(COUNT, "count"))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"n": 60}


def test_moments_match_numpy(consortium: LocalConsortium) -> None:
    step = {
        "step": "moments",
        "variables": ["age", "madrs_total"],
        "complete_cases": False,
        "products": True,
    }
    got = post(consortium, "alpha", task(step)).json()["result"]
    rows = consortium.pooled[consortium.pooled["site"] == "alpha"]
    for j, var in enumerate(["age", "madrs_total"]):
        values = rows[var].dropna().to_numpy(dtype=float)
        assert got["n"][0][j] == len(values)
        assert got["sums"][0][j] == pytest.approx(values.sum(), rel=1e-12)
        assert got["squares"][0][j] == pytest.approx((values**2).sum(), rel=1e-12)


def test_unsigned_request_refused(consortium: LocalConsortium) -> None:
    response = httpx.post(consortium.servers["alpha"].url + "/v1/tasks", content=task(COUNT))
    assert response.status_code == 401
    assert response.json()["code"] == "unsigned"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_key_refused(consortium: LocalConsortium) -> None:
    response = post(consortium, "alpha", task(COUNT), key=generate_private_key())
    assert (response.status_code, response.json()["code"]) == (401, "unknown_key")


def test_forged_signature_refused(consortium: LocalConsortium) -> None:
    body = task(COUNT)
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    forged = sign_headers(generate_private_key(), "POST", "/v1/tasks", body)
    headers["X-Fedpsy-Signature"] = forged["X-Fedpsy-Signature"]
    response = httpx.post(
        consortium.servers["alpha"].url + "/v1/tasks", content=body, headers=headers
    )
    assert (response.status_code, response.json()["code"]) == (401, "bad_signature")


def test_tampered_body_refused(consortium: LocalConsortium) -> None:
    body = task(COUNT)
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    response = httpx.post(
        consortium.servers["alpha"].url + "/v1/tasks",
        content=body.replace(b"job-test", b"job-evil"),
        headers=headers,
    )
    assert (response.status_code, response.json()["code"]) == (401, "tampered")


def test_expired_timestamp_refused(consortium: LocalConsortium) -> None:
    import time

    response = post(consortium, "alpha", task(COUNT), now=time.time() - 301)
    assert (response.status_code, response.json()["code"]) == (401, "expired")


def test_replayed_nonce_refused_also_after_restart(consortium: LocalConsortium) -> None:
    body = task(COUNT, "count")
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    url = consortium.servers["alpha"].url + "/v1/tasks"
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    again = httpx.post(url, content=body, headers=headers)
    assert (again.status_code, again.json()["code"]) == (401, "replayed")
    # a restarted node (new process state, same directory) still refuses the nonce
    node = NodeSite.open(consortium.nodes["alpha"].dir.root)
    token = node.dir.admin_token.read_text().strip()
    with BackgroundServer(create_app(NodeService(node), token)) as fresh:
        replay = httpx.post(fresh.url + "/v1/tasks", content=body, headers=headers)
    assert (replay.status_code, replay.json()["code"]) == (401, "replayed")


def test_small_cohort_refused_without_the_count(consortium: LocalConsortium) -> None:
    cohort = {"all": [{"var": "age", "op": ">", "value": 79.5}]}
    rows = consortium.pooled[
        (consortium.pooled["site"] == "alpha") & (consortium.pooled["age"] > 79.5)
    ]
    assert 0 < len(rows) < 5  # the data make this cohort small
    response = post(consortium, "alpha", task({"step": "count", "cohort": cohort}, "count"))
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "cohort_too_small"
    assert str(len(rows)) not in problem["detail"]


def test_differencing_refused(consortium: LocalConsortium) -> None:
    rows = consortium.pooled[consortium.pooled["site"] == "alpha"].sort_values("age")
    # everyone but the ten youngest (a cohort no other test asks), then two persons fewer
    big = {"all": [{"var": "age", "op": ">", "value": float(rows["age"].iloc[9]) + 1e-9}]}
    assert (
        post(consortium, "alpha", task({"step": "count", "cohort": big}, "count")).status_code
        == 200
    )
    cut = float(rows["age"].iloc[11]) + 1e-9  # leaves out exactly two persons more
    almost = {"all": [{"var": "age", "op": ">", "value": cut}]}
    response = post(consortium, "alpha", task({"step": "count", "cohort": almost}, "count"))
    assert (response.status_code, response.json()["code"]) == (403, "differencing")


def test_small_cell_refused(consortium: LocalConsortium) -> None:
    step = {
        "step": "crosstab",
        "row": "sex",
        "column": "cgi_s",
        "column_levels": [str(i) for i in range(1, 8)],
    }
    alpha = consortium.pooled[consortium.pooled["site"] == "alpha"]
    counts = alpha.groupby(["sex", "cgi_s"]).size()
    assert ((counts > 0) & (counts < 5)).any()
    response = post(consortium, "alpha", task(step, "crosstab"))
    assert (response.status_code, response.json()["code"]) == (403, "cell_too_small")


def test_analysis_not_allowed(consortium: LocalConsortium, tmp_path: Path) -> None:
    policy = consortium.nodes["alpha"].dir.policy
    original = policy.read_text()
    edit_policy(policy, allowed_analyses='["count"]')
    try:
        node = NodeSite.open(consortium.nodes["alpha"].dir.root)
        with BackgroundServer(create_app(NodeService(node), "t" * 20)) as server:
            body = task({"step": "moments", "variables": ["age"]}, "summary")
            headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
            response = httpx.post(server.url + "/v1/tasks", content=body, headers=headers)
    finally:
        policy.write_text(original)
    assert (response.status_code, response.json()["code"]) == (403, "analysis_not_allowed")


def test_manual_approval_flow(consortium: LocalConsortium) -> None:
    url = consortium.servers["beta"].url
    admin = {
        "Authorization": "Bearer " + consortium.nodes["beta"].dir.admin_token.read_text().strip()
    }
    body = task(COUNT, "count")
    task_id = json.loads(body)["task_id"]
    submitted = post(consortium, "beta", body)
    assert submitted.status_code == 202 and submitted.json()["status"] == "pending"
    path = f"/v1/tasks/{task_id}"
    poll = httpx.get(url + path, headers=sign_headers(consortium.coordinator.key, "GET", path, b""))
    assert poll.status_code == 202
    assert httpx.get(url + "/admin/tasks").status_code == 401  # admin token needed
    queue = httpx.get(url + "/admin/tasks", headers=admin).json()
    assert [q["task_id"] for q in queue] == [task_id]
    assert queue[0]["would_leave"]["result"] == {"n": 40}  # exactly what would leave
    assert httpx.post(url + f"/admin/tasks/{task_id}/approve", headers=admin).status_code == 200
    done = httpx.get(url + path, headers=sign_headers(consortium.coordinator.key, "GET", path, b""))
    assert done.status_code == 200 and done.json()["result"] == {"n": 40}


def test_rejected_task_is_refused(consortium: LocalConsortium) -> None:
    url = consortium.servers["beta"].url
    admin = {
        "Authorization": "Bearer " + consortium.nodes["beta"].dir.admin_token.read_text().strip()
    }
    body = task({"step": "moments", "variables": ["age"]})
    task_id = json.loads(body)["task_id"]
    assert post(consortium, "beta", body).status_code == 202
    assert httpx.post(url + f"/admin/tasks/{task_id}/reject", headers=admin).status_code == 200
    path = f"/v1/tasks/{task_id}"
    got = httpx.get(url + path, headers=sign_headers(consortium.coordinator.key, "GET", path, b""))
    assert (got.status_code, got.json()["code"]) == (403, "approval_rejected")


def test_audit_records_what_left_and_verifies(consortium: LocalConsortium) -> None:
    body = task({"step": "moments", "variables": ["age"]})
    assert post(consortium, "alpha", body).status_code == 200
    log = AuditLog(consortium.nodes["alpha"].engine)
    entries = log.entries(json=True)
    released = [e for e in entries if e["kind"] == "released"]
    assert released and "left" in released[-1]["payload"]
    assert log.verify().ok
    sums = released[-1]["payload"]["left"]["result"]["sums"][0][0]
    ages = consortium.pooled.loc[consortium.pooled["site"] == "alpha", "age"].to_numpy()
    assert sums == pytest.approx(float(np.sum(ages)), rel=1e-12)


def test_trust_rejects_a_bad_key_file(consortium: LocalConsortium, tmp_path: Path) -> None:
    from node.auth.trust import add_trusted_key
    from schemas.errors import FedpsyError

    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(FedpsyError):
        add_trusted_key(consortium.nodes["alpha"].dir.root, bad)
    good = tmp_path / "other.pub"
    write_public_key(good, generate_private_key().public_key())
    assert add_trusted_key(consortium.nodes["alpha"].dir.root, good).fingerprint


def test_a_release_that_cannot_be_stored_leaves_no_trace(
    consortium: LocalConsortium, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's memory, the audit entry of what left and the stored answer are one
    transaction: when storing the answer fails, none of them remains, and the same task
    sent again is answered once."""
    service = consortium.services["alpha"]
    body = task({"step": "moments", "variables": ["education_years"]})
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    key = service.authenticate(headers, "POST", "/v1/tasks", body)
    task_id = json.loads(body)["task_id"]
    log = AuditLog(service.node.engine)
    remembered = service.gate.guard.count()

    def released() -> list[dict[str, Any]]:
        return [e for e in log.entries(json=True) if e["kind"] == "released"]

    before = len(released())

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(service.tasks, "save", full_disk)
        with pytest.raises(OSError, match="no space"):
            service.submit(body, key)
    assert len(released()) == before
    assert service.gate.guard.count() == remembered
    assert service.tasks.get(task_id) is None
    assert log.verify().ok

    answered = service.submit(body, key)
    assert answered.status == "answered" and answered.receipt is not None
    assert [e["task_id"] for e in released()[before:]] == [task_id]
    assert service.gate.guard.count() > remembered


def test_a_task_that_fails_unexpectedly_is_audited_with_its_failure(
    consortium: LocalConsortium, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request's entry is written with its outcome: a step that breaks with an
    unexpected error still leaves ``received`` and ``error`` (internal), one after the
    other, and nothing of it is stored as answered."""
    service = consortium.services["alpha"]
    body = task(COUNT, "count")
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    key = service.authenticate(headers, "POST", "/v1/tasks", body)
    task_id = json.loads(body)["task_id"]

    class Broken:
        def release(self, *args: Any) -> None:
            raise RuntimeError("bug")

    monkeypatch.setattr(service, "releaser", Broken())
    with pytest.raises(RuntimeError, match="bug"):
        service.submit(body, key)
    entries = AuditLog(service.node.engine).entries(json=True)
    mine = [(e["seq"], e["kind"], e["payload"].get("code")) for e in entries]
    mine = [m for m, e in zip(mine, entries, strict=True) if e["task_id"] == task_id]
    assert [(kind, code) for _, kind, code in mine] == [("received", None), ("error", "internal")]
    assert mine[1][0] == mine[0][0] + 1
    assert service.tasks.get(task_id) is None
