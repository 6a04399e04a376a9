"""Projects at the coordinator over real signed HTTP: a researcher asks only within a
project's analyses, variables and sites (HTTP 403 ``forbidden`` naming what is not allowed,
before any site is asked); the CLI manages projects and their members."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import jobs, projects, registry
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from node.audit import AuditEntry, AuditLog
from schemas.signing import sign_headers
from schemas.wire import TaskRequest
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("projects")
SIZES = {"oslo": 40, "paris": 35}
runner = CliRunner()


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("projects"), clinical_sites(SIZES))
    engine = built.coordinator.engine
    projects.add_project(
        engine,
        "trd",
        description="treatment-resistant depression",
        analyses=["count", "summary"],
        variables=["depression", "age"],
        sites=["oslo"],
    )
    yield built
    built.close()


@pytest.fixture(scope="module")
def server(consortium: LocalConsortium) -> Iterator[BackgroundServer]:
    coord = Coordinator.open(consortium.coordinator.dir.root)
    with BackgroundServer(coordinator_app(coord)) as served:
        yield served
    coord.close()


@pytest.fixture(scope="module")
def trd_token(consortium: LocalConsortium) -> str:
    engine = consortium.coordinator.engine
    return registry.add_user(engine, "grace", "trd")


def submit(server: BackgroundServer, token: str, request: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/analyses?wait=true",
        json=request,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _forbidden(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["code"] == "forbidden"
    return str(problem["detail"])


def test_a_request_within_the_project_runs_at_its_sites_only(
    server: BackgroundServer, trd_token: str
) -> None:
    answer = submit(server, trd_token, {"analysis": "summary", "variables": ["madrs_total"]})
    assert answer.status_code == 200, answer.text
    envelope = answer.json()
    assert envelope["status"] == "ok", envelope
    assert set(envelope["sites"]) == {"oslo"}  # the project's only site


def test_the_site_audits_who_asked(
    server: BackgroundServer, trd_token: str, consortium: LocalConsortium
) -> None:
    """The project and researcher are signed into every task and land in the site's audit
    log: in the hashed payload and in their own columns, which the chain check compares."""
    envelope = submit(server, trd_token, {"analysis": "count"}).json()
    assert envelope["status"] == "ok", envelope
    log = AuditLog(consortium.nodes["oslo"].engine)
    tasks = [e for e in log.entries() if e.payload.get("job_id") == envelope["request_id"]]
    assert tasks, "the job's tasks are audited"
    task_ids = {e.task_id for e in tasks}
    of_job = [e for e in log.entries() if e.task_id in task_ids]
    assert {e.kind for e in of_job} >= {"received", "released"}
    for entry in of_job:
        assert (entry.project, entry.researcher) == ("trd", "grace")
        assert (entry.payload["project"], entry.payload["researcher"]) == ("trd", "grace")
    assert log.verify().ok
    with consortium.nodes["oslo"].engine.begin() as conn:  # a column rewritten afterwards
        conn.execute(
            text("UPDATE audit_entry SET researcher = 'mallory' WHERE seq = :seq"),
            {"seq": of_job[-1].seq},
        )
    report = log.verify()
    assert not report.ok and report.first_broken_seq == of_job[-1].seq
    assert "project or researcher" in str(report.reason)
    with consortium.nodes["oslo"].engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entry SET researcher = 'grace' WHERE seq = :seq"),
            {"seq": of_job[-1].seq},
        )
    assert log.verify().ok


def test_an_analysis_outside_the_project_is_forbidden(
    server: BackgroundServer, trd_token: str, consortium: LocalConsortium
) -> None:
    jobs_before = _jobs(consortium)
    detail = _forbidden(
        submit(server, trd_token, {"analysis": "ttest", "variable": "age", "group": "sex"})
    )
    assert "project 'trd' does not allow analysis 'ttest'" in detail
    assert "allowed: count, summary" in detail
    assert _jobs(consortium) == jobs_before  # refused before a job existed


def test_a_variable_outside_the_project_is_forbidden(
    server: BackgroundServer, trd_token: str
) -> None:
    detail = _forbidden(
        submit(server, trd_token, {"analysis": "summary", "variables": ["madrs_total", "sex"]})
    )
    assert "variable(s) sex" in detail and "madrs_total" not in detail.split("allowed")[0]
    in_cohort = {
        "analysis": "count",
        "cohort": {"all": [{"var": "panss_total", "op": ">", "value": 60}]},
    }
    assert "variable(s) panss_total" in _forbidden(submit(server, trd_token, in_cohort))


def test_a_site_outside_the_project_is_forbidden(
    server: BackgroundServer, trd_token: str, consortium: LocalConsortium
) -> None:
    request = {
        "analysis": "count",
        "cohort": {"all": [{"var": "site", "op": "in", "value": ["oslo", "paris"]}]},
    }
    detail = _forbidden(submit(server, trd_token, request))
    assert "site(s) paris (allowed: oslo)" in detail
    audit = consortium.nodes["paris"].dir.root
    assert all(entry.project != "trd" for entry in _audit(consortium, "paris")), (
        audit
    )  # paris was never asked


def test_a_project_the_researcher_is_not_in_is_forbidden(
    server: BackgroundServer, trd_token: str, consortium: LocalConsortium
) -> None:
    detail = _forbidden(submit(server, trd_token, {"analysis": "count", "project": "default"}))
    assert "user 'grace' is not a member of project 'default' (their projects: trd)" in detail
    token = registry.add_user(consortium.coordinator.engine, "linus")  # joins default
    projects.add_member(consortium.coordinator.engine, "trd", "linus")
    several = submit(server, token, {"analysis": "count"})
    assert several.status_code == 422 and "name one with" in several.json()["detail"]
    named = submit(server, token, {"analysis": "count", "project": "default"})
    assert named.json()["status"] == "ok"


def test_fedpsy_run_exits_2_with_the_message(
    server: BackgroundServer, trd_token: str, tmp_path: Path
) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"analysis": "glm", "formula": "age ~ sex"}))
    out = runner.invoke(
        app, ["run", str(request), "--coordinator", server.url, "--token", trd_token]
    )
    assert out.exit_code == 2, out.output
    assert "[forbidden]" in out.output and "analysis 'glm'" in out.output


def test_run_in_process_is_bound_by_the_project_it_names(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"analysis": "summary", "variables": ["sex"], "project": "trd"}))
    out = runner.invoke(
        app, ["run", str(request), "--coordinator", str(consortium.coordinator.dir.root)]
    )
    assert out.exit_code == 2, out.output
    assert json.loads(out.stdout)["reason"]["code"] == "forbidden"


def test_the_cli_manages_projects_and_members(tmp_path: Path) -> None:
    root = str(tmp_path / "coord")
    assert runner.invoke(app, ["coordinator", "init", root]).exit_code == 0
    scope = ["--analyses", "count,glm", "--variables", "psychosis,age", "--sites", "oslo"]
    about = ["--description", "ultra-resistant schizophrenia"]
    made = runner.invoke(app, ["coordinator", "add-project", root, "urs", *scope, *about])
    assert made.exit_code == 0, made.output
    spaced = runner.invoke(app, ["coordinator", "add-project", root, "a b"])
    assert spaced.exit_code == 2 and "use 1-64 letters" in spaced.output
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"analysis": "count", "project": "urs"}))
    nowhere = runner.invoke(app, ["run", str(request), "--coordinator", root])
    assert nowhere.exit_code == 2
    assert "none of project 'urs''s sites (oslo) is registered" in nowhere.output
    again = runner.invoke(app, ["coordinator", "add-project", root, "urs"])
    assert again.exit_code == 2 and "already exists" in again.output
    token = runner.invoke(app, ["coordinator", "add-user", root, "ada"])
    assert token.exit_code == 0 and token.stdout.startswith("fpy_")
    joined = runner.invoke(app, ["coordinator", "add-user", root, "ada", "--project", "urs"])
    assert joined.exit_code == 0 and "fpy_" not in joined.stdout
    assert "joined urs" in joined.stdout
    unknown = runner.invoke(app, ["coordinator", "add-user", root, "bob", "--project", "nope"])
    assert unknown.exit_code == 1 and "no project 'nope'" in unknown.output
    listed = json.loads(runner.invoke(app, ["coordinator", "projects", root, "--json"]).stdout)
    by_name = {p["name"]: p for p in listed}
    assert by_name["default"]["analyses"] is None and by_name["default"]["members"] == ["ada"]
    assert by_name["urs"] == {
        "name": "urs",
        "description": "ultra-resistant schizophrenia",
        "analyses": ["count", "glm"],
        "variables": ["age", "psychosis"],
        "sites": ["oslo"],
        "members": ["ada"],
    }
    revoked = runner.invoke(app, ["coordinator", "revoke", root, "ada", "--project", "urs"])
    assert revoked.exit_code == 0, revoked.output
    twice = runner.invoke(app, ["coordinator", "revoke", root, "ada", "--project", "urs"])
    assert twice.exit_code == 1 and "not a member" in twice.output
    listed = json.loads(runner.invoke(app, ["coordinator", "projects", root, "--json"]).stdout)
    assert {p["name"]: p["members"] for p in listed} == {"default": ["ada"], "urs": []}


def _jobs(consortium: LocalConsortium) -> int:
    return len(jobs.list_jobs(consortium.coordinator.engine, limit=1000))


def _audit(consortium: LocalConsortium, site: str) -> list[AuditEntry]:
    return AuditLog(consortium.nodes[site].engine).entries()


def test_the_dashboard_offers_only_what_the_project_allows(
    server: BackgroundServer, trd_token: str
) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        client.post("/login", data={"token": trd_token, "next": "/"})
        page = client.get("/analyses/new").text
        shown = re.search(r'<p id="projects">(.*?)</p>', page, re.S)
        assert shown is not None and "<strong>trd</strong>" in shown.group(1)
        assert "count, summary; age, depression; oslo" in shown.group(1)
        chooser = re.search(r'<select id="analysis" name="analysis">(.*?)</select>', page, re.S)
        assert chooser is not None
        assert re.findall(r'<option value="([a-z_]+)"', chooser.group(1)) == ["count", "summary"]
        listed = set(
            re.findall(r'<datalist id="vars-list">(.*?)</datalist>', page, re.S)[0].split()
        )
        codes = {c for c in re.findall(r'value="([a-z0-9_]+)"', " ".join(listed))}
        assert "madrs_total" in codes and "age" in codes and "sex" not in codes
        check = client.post(
            "/analyses/validate", json={"analysis": "ttest", "variable": "age", "group": "sex"}
        ).json()
        assert check["ok"] is False and "does not allow analysis 'ttest'" in check["detail"]
        other = client.get("/analyses/new?analysis=glm").text  # not offered: the first one
        assert 'data-analysis="count"' in other


def test_who_asks_cannot_be_changed_unsigned_or_replayed(consortium: LocalConsortium) -> None:
    """The project and researcher are part of the signed body: a task whose project is
    rewritten in transit is ``tampered``, one without signature ``unsigned``, a replay
    ``replayed``; none of them reaches the audit log as a received task."""
    url = consortium.servers["oslo"].url
    task = TaskRequest(
        task_id=uuid.uuid4().hex,
        job_id="job-who",
        analysis="count",
        step={"step": "count"},
        project="trd",
        researcher="grace",
    )
    body = task.model_dump_json().encode()
    headers = sign_headers(consortium.coordinator.key, "POST", "/v1/tasks", body)
    headers["Content-Type"] = "application/json"
    rewritten = body.replace(b'"project":"trd"', b'"project":"default"')
    assert rewritten != body
    forged = httpx.post(url + "/v1/tasks", content=rewritten, headers=headers)
    assert forged.status_code == 401 and forged.json()["code"] == "tampered"
    bare = httpx.post(url + "/v1/tasks", content=body, headers={"Content-Type": "application/json"})
    assert bare.status_code == 401 and bare.json()["code"] == "unsigned"
    first = httpx.post(url + "/v1/tasks", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["receipt"]["project"] == "trd"
    replay = httpx.post(url + "/v1/tasks", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    received = [
        e
        for e in AuditLog(consortium.nodes["oslo"].engine).entries()
        if e.kind == "received" and e.payload.get("job_id") == "job-who"
    ]
    assert [(e.project, e.researcher) for e in received] == [("trd", "grace")]
