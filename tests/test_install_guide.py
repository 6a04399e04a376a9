"""deploy/INSTALL.md followed verbatim without containers: every ```bash block, in order,
in one shell on a scratch directory with the node on a loopback port; the node must then
answer over mutual TLS with the certificate the guide issued."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.deployment import Pki, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("install_guide")]
GUIDE = Path(__file__).resolve().parents[1] / "deploy" / "INSTALL.md"
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def shell_blocks(markdown: str) -> list[str]:
    """The guide's shell blocks that are run (language ``bash``), in order."""
    return [body for lang, body in BLOCK.findall(markdown) if lang == "bash"]


def test_guide_has_the_steps_a_site_needs() -> None:
    script = "\n".join(shell_blocks(GUIDE.read_text()))
    for step in (
        "fedpsy pki init",
        "fedpsy pki issue",
        "fedpsy node init",
        "fedpsy node trust",
        "fedpsy node ingest",
        "policy.toml",
        "fedpsy node serve",
        "fedpsy health node",
        "fedpsy coordinator add-node",
        "fedpsy node audit",
        "tar -czf",
        "fedpsy node status",
    ):
        assert step in script, step
    for heading in (
        "Install",
        "Create the node",
        "Trust",
        "Load data",
        "policy",
        "Serve",
        "Back up",
        "Upgrade",
    ):
        assert re.search(rf"^## .*{heading}", GUIDE.read_text(), re.MULTILINE | re.I), heading


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    pid_file = tmp_path / "node.pid"  # never leave the guide's node running
    if pid_file.is_file():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def test_install_guide_runs_verbatim(home: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(shell_blocks(GUIDE.read_text()))
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SITE": "berlin",
        "FEDPSY_HOME": str(home),
        "NODE_HOST": "localhost",
        "NODE_LISTEN": "127.0.0.1",
        "NODE_PORT": str(port),
    }
    for key in [k for k in env if k.startswith(("FEDPSY_NODE_", "FEDPSY_COORDINATOR_"))]:
        del env[key]
    done = subprocess.run(
        ["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=540
    )
    log = (home / "node.log").read_text() if (home / "node.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{log[-2000:]}"
    assert '"status": "ok"' in done.stdout  # the coordinator's count through the node
    assert "audit log intact" in done.stdout
    assert (home / "node-backup.tar.gz").stat().st_size > 0
    site_key = home / "node" / "tls" / "berlin.key"
    assert site_key.stat().st_mode & 0o777 == 0o600

    pki = Pki(home / "pki")  # the node the guide left running answers only over mutual TLS
    url = f"https://localhost:{port}/health"
    answer = httpx.get(url, verify=pki.client_context("coordinator"), timeout=10)
    assert answer.status_code == 200 and answer.json()["site"] == "berlin"
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, verify=pki.client_context(None), timeout=10)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
