"""Researcher tools: `fedpsy run` exit codes for a missing token and an unreachable
coordinator, offline API docs, the models list and problem bodies for every API error,
and JSON logs without ANSI colors."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import models, registry
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from node.http.api import create_app as node_app
from node.service import NodeService
from node.site import NodeSite
from schemas.envelope import Envelope
from schemas.logs import JsonFormatter


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "req.json"
    path.write_text(json.dumps({"analysis": "count"}))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_coordinator_url_without_a_token_is_a_usage_error(
    request_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDPSY_TOKEN", raising=False)
    out = CliRunner().invoke(app, ["run", str(request_file), "--coordinator", "http://127.0.0.1:9"])
    assert out.exit_code == 2, out.output
    assert "[bad_input]" in out.output
    assert "--token" in out.output and "FEDPSY_TOKEN" in out.output


def test_a_coordinator_not_running_is_named(request_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = CliRunner().invoke(
        app, ["run", str(request_file), "--coordinator", url, "--token", "fpy_x"]
    )
    assert out.exit_code == 1, out.output
    assert "[coordinator_unreachable]" in out.output
    assert f"cannot reach the coordinator at {url}" in out.output
    assert "site" not in out.output


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Coordinator]:
    with Coordinator.create(tmp_path / "coordinator") as coord:
        yield coord


@pytest.fixture
def coordinator_client(coordinator: Coordinator) -> Iterator[httpx.Client]:
    with (
        BackgroundServer(coordinator_app(coordinator)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        yield client


@pytest.fixture
def node_api(tmp_path: Path) -> Iterator[FastAPI]:
    site = NodeSite.create(tmp_path / "node", "oslo", None)
    yield node_app(NodeService(site), site.dir.admin_token.read_text().strip())
    site.close()


def assert_docs_offline(client: httpx.Client) -> None:
    server = urlsplit(str(client.base_url)).netloc
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        for url in re.findall(r"https?://[^\s\"'<>)]+", html.text):
            assert urlsplit(url).netloc == server, f"{page} loads {url}"
        assets = re.findall(r"(?:src|href)=[\"']([^\"']+)[\"']", html.text)
        assets += re.findall(r"url: ?[\"']([^\"']+)[\"']", html.text)  # the OpenAPI document
        assert any(a.endswith(".js") for a in assets), html.text
        for asset in assets:
            got = client.get(asset)
            assert got.status_code == 200, asset
            assert got.content, asset
    swagger = client.get("/docs").text
    assert "swagger-ui-bundle.js" in swagger and "swagger-ui.css" in swagger
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_coordinator_api_docs_load_nothing_from_another_host(
    coordinator_client: httpx.Client,
) -> None:
    assert_docs_offline(coordinator_client)


def test_node_api_docs_load_nothing_from_another_host(node_api: FastAPI) -> None:
    with BackgroundServer(node_api) as server, httpx.Client(base_url=server.url) as client:
        assert_docs_offline(client)


def trained(model_id: str) -> Envelope:
    return Envelope(
        status="ok",
        analysis="train",
        sites={"oslo": {"n": 40}, "bergen": {"n": 35}},
        result={
            "model_id": model_id,
            "model_kind": "logistic",
            "app_hash": "a" * 64,
            "metrics": {"auc": 0.7},
            "model": {"weights": [[0.1, 0.2]], "spec": {"model": "logistic"}},
        },
    )


def test_the_models_list_has_provenance_without_weights(
    coordinator: Coordinator, coordinator_client: httpx.Client
) -> None:
    request = {"analysis": "train", "formula": "trs ~ age"}
    models.register(coordinator.engine, "job1", request, trained("m1"))
    models.register(coordinator.engine, None, request, trained("m2"))
    assert coordinator_client.get("/v1/models").status_code == 401
    headers = {"Authorization": f"Bearer {registry.add_user(coordinator.engine, 'ada')}"}
    listed = coordinator_client.get("/v1/models", headers=headers)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [r["model_id"] for r in rows] == ["m2", "m1"]  # newest first
    first = rows[1]
    assert (first["job_id"], first["kind"], first["request"]) == ("job1", "logistic", request)
    assert first["sites"] == {"oslo": {"n": 40}, "bergen": {"n": 35}}
    assert isinstance(first["created_at"], float)
    assert all("model" not in r for r in rows)
    one = coordinator_client.get("/v1/models/m1", headers=headers).json()
    assert one["model"]["weights"] == [[0.1, 0.2]]


def test_every_coordinator_error_is_a_problem_body(
    coordinator: Coordinator, coordinator_client: httpx.Client
) -> None:
    headers = {"Authorization": f"Bearer {registry.add_user(coordinator.engine, 'ada')}"}
    cases = [
        ("GET", "/v1/nope", headers, 404, "not_found"),
        ("GET", "/nothing/here", {}, 404, "not_found"),
        ("GET", "/v1/models/absent", headers, 404, "not_found"),
        ("GET", "/v1/models", {}, 401, "unauthorized"),
        ("DELETE", "/v1/models", headers, 405, "request_invalid"),
        ("GET", "/v1/models?limit=many", headers, 422, "request_invalid"),
    ]
    for method, path, given, status, code in cases:
        got = coordinator_client.request(method, path, headers=given)
        assert got.status_code == status, (path, got.text)
        assert got.headers["content-type"] == "application/problem+json", path
        body = got.json()
        assert (body["status"], body["code"]) == (status, code), body
        assert body["type"] == f"urn:fedpsy:error:{code}" and body["title"] and body["detail"]
        assert body["instance"] == path.partition("?")[0]
    assert "no such resource: /v1/nope" in coordinator_client.get("/v1/nope").json()["detail"]


def test_json_logs_carry_no_ansi_colors() -> None:
    # as uvicorn logs its start: the plain message plus a colored copy in ``color_message``
    record = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        "Uvicorn running on %s (Press CTRL+C to quit)",
        ("http://127.0.0.1:8700",),
        None,
        extra={
            "color_message": "Uvicorn running on \x1b[1m%s\x1b[0m (Press CTRL+C to quit)",
            "site": "\x1b[32moslo\x1b[0m",
        },
    )
    line = JsonFormatter().format(record)
    assert "\x1b" not in line and "\\u001b" not in line
    entry = json.loads(line)
    assert "color_message" not in entry
    assert entry["msg"] == "Uvicorn running on http://127.0.0.1:8700 (Press CTRL+C to quit)"
    assert (entry["logger"], entry["level"], entry["site"]) == ("uvicorn.error", "info", "oslo")
