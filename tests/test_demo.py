"""``fedpsy demo --serve``: the tour runs over real nodes, then the printed one-time URL
lands on the logged-in dashboard overview."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_serve_prints_a_login_url(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedpsy.cli",
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--persons",
            "150",
            "--serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "".join(lines)
        text = "".join(lines)
        assert "a tour of federated analyses" in text
        assert "Newton iterations" in text and "left out: copenhagen" in text
        assert "valid: summary job" in text and "receipts of 3 site(s)" in text
        assert "We ran a federated summary analysis" in text
        # the data-quality report flags the scanners' effect on MRS; ComBat removes it
        assert re.search(r"dacc_glx\s*│\s*baseline\s*│\s*site_effect", text), text
        assert "SMD after ComBat" in text and "site-effect flags after harmonization: 0" in text
        for _ in range(50):
            try:
                page = httpx.get(url, follow_redirects=True, timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.2)
        assert page.status_code == 200
        for site in ("amsterdam", "berlin", "copenhagen"):
            assert site in page.text
        again = httpx.get(url, follow_redirects=False, timeout=5)
        assert again.status_code != 303 or "login" in again.headers.get("location", "")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
