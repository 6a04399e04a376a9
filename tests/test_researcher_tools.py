"""Researcher tools: `fedpsy run` exit codes for a missing token and an unreachable
coordinator, offline API docs, the models list and problem bodies for every API error,
and JSON logs without ANSI colors."""

from __future__ import annotations

import json
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
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from node.http.api import create_app as node_app
from node.service import NodeService
from node.site import NodeSite


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
