"""Sites approve projects, over real signed HTTP: a site with ``project_approval =
"manual"`` refuses tasks of a project it has not approved (``project_not_approved``, naming
the project) and answers once approved; a policy may restrict a project to variables."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from coordinator.store import registry
from fedpsy.cli import app
from node.audit import AuditLog
from node.privacy.policy import load_policy
from node.privacy.projects import approved_projects
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("project_approval")
SIZES = {"oslo": 40, "paris": 35}
runner = CliRunner()


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(
        tmp_path_factory.mktemp("approval"),
        clinical_sites(SIZES),
        policy_extra={"paris": {"project_approval": '"manual"'}},
    )
    registry.add_user(built.coordinator.engine, "ada")
    yield built
    built.close()


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request, "ada")).to_dict()


def test_a_manual_site_refuses_an_unapproved_project_and_answers_once_approved(
    consortium: LocalConsortium,
) -> None:
    paris = str(consortium.nodes["paris"].dir.root)
    refused = run(consortium, {"analysis": "count"})
    assert refused["status"] == "refused", refused
    assert refused["reason"]["sites"] == {"paris": "project_not_approved"}
    assert "'default' is not approved at this site" in refused["reason"]["detail"]

    approved = runner.invoke(app, ["node", "approve-project", paris, "default"])
    assert approved.exit_code == 0, approved.output
    assert "approved: default" in approved.output
    answered = run(consortium, {"analysis": "count"})
    assert answered["status"] == "ok", answered
    assert answered["result"]["n"] == sum(SIZES.values())

    listed = runner.invoke(app, ["node", "approve-project", paris, "--list"])
    assert "project_approval = 'manual'; approved: default" in listed.output
    revoked = runner.invoke(app, ["node", "approve-project", paris, "--revoke", "default"])
    assert revoked.exit_code == 0, revoked.output
    again = run(consortium, {"analysis": "count"})
    assert again["reason"]["sites"] == {"paris": "project_not_approved"}
    unknown = runner.invoke(app, ["node", "approve-project", paris, "--revoke", "nope"])
    assert unknown.exit_code == 1 and "not approved here" in unknown.output

    entries = AuditLog(consortium.nodes["paris"].engine).entries()
    kinds = [(e.kind, e.payload.get("name")) for e in entries if e.kind.startswith("project.")]
    assert kinds[-2:] == [("project.approved", "default"), ("project.revoked", "default")]
    received = [e for e in entries if e.kind == "received"]
    assert {e.payload["project_approval"] for e in received} == {"manual"}
    refusals = [e for e in entries if e.kind == "refused"]
    assert refusals and all(e.project == "default" for e in refusals)
    assert all(e.researcher == "ada" for e in refusals)


def test_an_auto_site_answers_every_project(consortium: LocalConsortium) -> None:
    oslo = consortium.nodes["oslo"]
    assert load_policy(oslo.dir.policy).project_approval == "auto"
    result = run(
        consortium,
        {"analysis": "count", "cohort": {"all": [{"var": "site", "op": "==", "value": "oslo"}]}},
    )
    assert result["status"] == "ok" and result["result"]["n"] == SIZES["oslo"]


def test_a_policy_restricts_a_project_to_variables(consortium: LocalConsortium) -> None:
    oslo = consortium.nodes["oslo"]
    text = oslo.dir.policy.read_text(encoding="utf-8")
    restricted = text.replace("[project_variables]\n", '[project_variables]\ndefault = ["age"]\n')
    oslo.dir.policy.write_text(restricted, encoding="utf-8")
    service = consortium.services["oslo"]
    in_force = service.policy
    service.policy = load_policy(oslo.dir.policy)  # as a restarted node reads it
    assert service.policy.project_variables == {"default": ["age"]}
    try:
        only_oslo = {"all": [{"var": "site", "op": "==", "value": "oslo"}]}
        fine = run(consortium, {"analysis": "summary", "variables": ["age"], "cohort": only_oslo})
        assert fine["status"] == "ok", fine
        other = run(
            consortium, {"analysis": "summary", "variables": ["madrs_total"], "cohort": only_oslo}
        )
        assert other["status"] == "refused"
        assert other["reason"]["sites"] == {"oslo": "project_not_approved"}
        assert "may not use madrs_total" in other["reason"]["detail"]
    finally:
        oslo.dir.policy.write_text(text, encoding="utf-8")
        service.policy = in_force


def test_the_admin_pages_list_projects_with_decisions_and_audit_who_asked(
    consortium: LocalConsortium,
) -> None:
    node = consortium.nodes["paris"]
    token = node.dir.admin_token.read_text().strip()
    asked = run(consortium, {"analysis": "count"})  # the project has asked this site
    assert asked["reason"]["sites"] == {"paris": "project_not_approved"}
    with httpx.Client(base_url=consortium.servers["paris"].url, follow_redirects=True) as client:
        assert client.get("/ui/projects", follow_redirects=False).status_code == 303
        client.post("/ui/login", data={"token": token})
        page = client.get("/ui/projects")
        assert page.status_code == 200 and 'id="mode">manual<' in page.text
        row = re.search(r'<tr data-project="default">(.*?)</tr>', page.text, re.S)
        assert row is not None and "<td>no</td>" in row.group(1) and "Approve" in row.group(1)
        forged = client.post("/ui/projects/default/approve", data={"form_token": "guess"})
        assert forged.status_code == 403
        assert "default" not in approved_projects(node.dir.root)
        form = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text)
        assert form is not None
        done = client.post("/ui/projects/default/approve", data={"form_token": form.group(1)})
        assert done.status_code == 200 and "Revoke" in done.text
        assert approved_projects(node.dir.root) == ["default"]
        assert run(consortium, {"analysis": "count"})["status"] == "ok"
        client.post("/ui/projects/default/revoke", data={"form_token": form.group(1)})
        assert approved_projects(node.dir.root) == []
        audit = client.get("/ui/audit").text
        assert '<th scope="col">Project</th><th scope="col">Researcher</th>' in audit
        assert '<td class="project">default</td><td class="researcher">ada</td>' in audit
