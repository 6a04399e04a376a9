"""Researcher tools: `fedpsy run` exit codes for a missing token and an unreachable
coordinator, offline API docs, the models list and problem bodies for every API error,
and JSON logs without ANSI colors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedpsy.cli import app


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
