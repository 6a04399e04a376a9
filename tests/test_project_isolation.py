"""What one project's researchers may see of another's, over real HTTP (the coordinator's
researcher API and dashboard, real node servers): a data-quality report defaulted to every
variable reports only the project's variables; jobs, their results and models are seen only
within their project (others get 404, their existence not confirmed); ``predict`` uses a
model only within its project and the asking project's variables; the catalog lists only
the variables the researcher's projects allow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import jobs, projects, registry
from coordinator.web.session import COOKIE
from fedpsy.serving import BackgroundServer
from node.privacy.approvals import approve_app
from schemas.training.bundle import app_hash
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("project_isolation")
SIZES = {"oslo": 160, "paris": 140}
TRAIN = {
    "analysis": "train",
    "project": "psy",
    "formula": "ketamine ~ age + madrs_total + sex",
    "rounds": 2,
    "test_fraction": 0.0,
    "validation_fraction": 0.0,
    "per_site": False,
    "seed": 2,
}


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("isolation"), clinical_sites(SIZES))
    for node in built.nodes.values():
        approve_app(node.dir.root, app_hash())
    engine = built.coordinator.engine
    projects.add_project(
        engine,
        "trd",
        analyses=["count", "summary", "data_quality", "predict"],
        variables=["age", "sex"],
    )
    projects.add_project(engine, "psy")  # open to everything
    yield built
    built.close()


@pytest.fixture(scope="module")
def server(consortium: LocalConsortium) -> Iterator[BackgroundServer]:
    coord = Coordinator.open(consortium.coordinator.dir.root)
    with BackgroundServer(coordinator_app(coord)) as served:
        yield served
    coord.close()


@pytest.fixture(scope="module")
def tokens(consortium: LocalConsortium) -> dict[str, str]:
    """grace: trd only; hank: psy only; ivy: trd and psy; ada and bob: default only."""
    engine = consortium.coordinator.engine
    out = {
        name: registry.add_user(engine, name, project)
        for name, project in [
            ("grace", "trd"),
            ("hank", "psy"),
            ("ivy", "trd"),
            ("ada", "default"),
            ("bob", "default"),
        ]
    }
    projects.add_member(engine, "psy", "ivy")
    return out


def get(server: BackgroundServer, token: str, path: str) -> httpx.Response:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def page(server: BackgroundServer, token: str, path: str) -> httpx.Response:
    """A dashboard page as the researcher logged in with ``token`` sees it."""
    return httpx.get(server.url + path, cookies={COOKIE: token}, timeout=30)


def submit(server: BackgroundServer, token: str, request: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/analyses?wait=true",
        json=request,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    envelope: dict[str, Any] = response.json()
    assert envelope["status"] == "ok", envelope["reason"]
    return envelope


def _forbidden(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["code"] == "forbidden"
    return str(problem["detail"])


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


def test_a_defaulted_data_quality_report_covers_only_the_projects_variables(
    server: BackgroundServer, tokens: dict[str, str], consortium: LocalConsortium
) -> None:
    envelope = ok(submit(server, tokens["grace"], {"analysis": "data_quality"}))
    result = envelope["result"]
    assert set(result["variables"]) == {"age", "sex"}
    assert set(result["report"]) == {"age", "sex"}
    assert result["temporal"] == {}  # the event and drug tables were not read
    assert {f["variable"] for f in result["flags"]} <= {"age", "sex"}
    job = jobs.get_job(consortium.coordinator.engine, envelope["request_id"])
    assert job is not None and job["request"]["temporal"] is False  # the job says so
    detail = _forbidden(
        submit(server, tokens["grace"], {"analysis": "data_quality", "temporal": True})
    )
    assert "temporal checks" in detail
    # a project open to every variable keeps the whole report and the temporal checks
    whole = ok(submit(server, tokens["hank"], {"analysis": "data_quality", "visits": ["baseline"]}))
    assert {"age", "sex", "madrs_total", "cgi_s"} <= set(whole["result"]["report"])
    assert set(whole["result"]["temporal"]) == set(SIZES)


def test_jobs_are_seen_only_by_their_researcher_and_project(
    server: BackgroundServer, tokens: dict[str, str]
) -> None:
    hanks = ok(submit(server, tokens["hank"], {"analysis": "summary", "variables": ["cgi_s"]}))
    job_id = hanks["request_id"]
    for outsider in ("grace", "ada"):
        listed = get(server, tokens[outsider], "/v1/analyses")
        assert listed.status_code == 200
        assert job_id not in {j["job_id"] for j in listed.json()}
        _not_found(get(server, tokens[outsider], f"/v1/analyses/{job_id}"))
        assert page(server, tokens[outsider], f"/jobs/{job_id}").status_code == 404
        assert page(server, tokens[outsider], f"/jobs/{job_id}/result.json").status_code == 404
        assert job_id not in page(server, tokens[outsider], "/jobs").text
        assert job_id not in page(server, tokens[outsider], "/").text
    for member in ("hank", "ivy"):  # the submitter and a member of the job's project
        shown = get(server, tokens[member], f"/v1/analyses/{job_id}")
        assert shown.status_code == 200 and shown.json()["project"] == "psy"
        assert job_id in page(server, tokens[member], "/jobs").text
    # the default project: its members see each other's jobs, as before projects
    adas = ok(submit(server, tokens["ada"], {"analysis": "count"}))["request_id"]
    assert get(server, tokens["bob"], f"/v1/analyses/{adas}").json()["user"] == "ada"
    _not_found(get(server, tokens["grace"], f"/v1/analyses/{adas}"))


def test_models_are_seen_and_used_only_within_their_project(
    server: BackgroundServer, tokens: dict[str, str], consortium: LocalConsortium
) -> None:
    trained = ok(submit(server, tokens["hank"], TRAIN))
    model_id = trained["result"]["model_id"]
    assert model_id in {m["model_id"] for m in get(server, tokens["hank"], "/v1/models").json()}
    for outsider in ("grace", "ada"):
        assert model_id not in {
            m["model_id"] for m in get(server, tokens[outsider], "/v1/models").json()
        }
        _not_found(get(server, tokens[outsider], f"/v1/models/{model_id}"))
    assert get(server, tokens["ivy"], f"/v1/models/{model_id}").json()["project"] == "psy"
    before = len(jobs.list_jobs(consortium.coordinator.engine, limit=1000))
    predict = {"analysis": "predict", "model_id": model_id, "new_variable": "ket_risk"}
    _not_found(submit(server, tokens["grace"], predict))  # not a member of the model's project
    # a member of both projects may not carry the model's variables into trd
    detail = _forbidden(submit(server, tokens["ivy"], {**predict, "project": "trd"}))
    assert "project 'trd' does not allow variable(s) madrs_total" in detail
    assert len(jobs.list_jobs(consortium.coordinator.engine, limit=1000)) == before  # nothing ran


def test_the_catalog_lists_only_what_the_researchers_projects_allow(
    server: BackgroundServer, tokens: dict[str, str]
) -> None:
    codes = {v["code"] for v in get(server, tokens["grace"], "/v1/catalog").json()["variables"]}
    assert {"age", "sex"} <= codes <= {"age", "sex", "site"}
    assert "madrs_total" not in page(server, tokens["grace"], "/catalog").text
    both = {v["code"] for v in get(server, tokens["ivy"], "/v1/catalog").json()["variables"]}
    assert {"madrs_total", "cgi_s", "age"} <= both  # psy is open: the union is everything
    assert "madrs_total" in page(server, tokens["hank"], "/catalog").text
