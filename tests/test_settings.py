"""Typed settings: precedence (option > environment > config file > default), placeholder
secrets refused at start, TLS settings checked, every setting documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coordinator.federation.transport import node_transport
from coordinator.layout import CoordinatorDir, write_config
from coordinator.settings import CoordinatorSettings, coordinator_settings
from fedpsy.cli import app
from node.config import init_node_dir, load_config, save_config
from node.layout import NodeDir
from node.settings import NodeSettings, node_settings
from schemas.errors import FedpsyError
from schemas.settings import is_placeholder
from tests.support.deployment import Pki, append_serve_table

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / ".env.example"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("FEDPSY_NODE_", "FEDPSY_COORDINATOR_")):
            monkeypatch.delenv(key)


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    init_node_dir(tmp_path / "node", "berlin", None)
    return tmp_path / "node"


@pytest.fixture
def coordinator_dir(tmp_path: Path) -> Path:
    write_config(CoordinatorDir(tmp_path / "coord"), None)
    return tmp_path / "coord"


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_defaults_and_admin_token_from_the_directory(node_dir: Path) -> None:
    settings = node_settings(node_dir)
    assert (settings.host, settings.port, settings.server_tls) == ("127.0.0.1", 8701, None)
    token = (node_dir / "admin_token").read_text().strip()
    assert settings.admin_token.get_secret_value() == token
    assert settings.url == "http://127.0.0.1:8701"


def test_option_beats_environment_beats_config_file(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_serve_table(node_dir / "node.toml", port=9001, host="0.0.0.0")
    assert node_settings(node_dir).port == 9001
    assert node_settings(node_dir).url == "http://127.0.0.1:9001"
    monkeypatch.setenv("FEDPSY_NODE_PORT", "9002")
    assert node_settings(node_dir).port == 9002
    assert node_settings(node_dir, port=9003).port == 9003
    assert node_settings(node_dir, port=None).port == 9002  # an unset option is no value
    assert node_settings(node_dir).host == "0.0.0.0"


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGEME",
        "change-me",
        "changethis",
        "xxxxxxxxxxxxxxxxxxxx",
        "changeme-please-0123",
    ],
)
def test_placeholder_admin_token_refused_without_echoing_it(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FEDPSY_NODE_ADMIN_TOKEN", value)
    with pytest.raises(FedpsyError) as err:
        node_settings(node_dir)
    assert err.value.code == "config_invalid"
    assert "FEDPSY_NODE_ADMIN_TOKEN" in err.value.detail
    assert "placeholder" in err.value.detail
    assert value not in err.value.detail


def test_real_admin_token_from_environment_is_used(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDPSY_NODE_ADMIN_TOKEN", "s3cr3t-token-from-a-vault-0123")
    assert (
        node_settings(node_dir).admin_token.get_secret_value() == "s3cr3t-token-from-a-vault-0123"
    )
    monkeypatch.setenv("FEDPSY_NODE_ADMIN_TOKEN", "short")
    with pytest.raises(FedpsyError, match="too short"):
        node_settings(node_dir)


def test_serve_refuses_to_start_with_a_placeholder(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDPSY_NODE_ADMIN_TOKEN", env_example()["FEDPSY_NODE_ADMIN_TOKEN"])
    result = CliRunner().invoke(app, ["node", "serve", str(node_dir), "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "configuration is not valid" in result.output
    assert "FEDPSY_NODE_ADMIN_TOKEN" in result.output and "placeholder" in result.output


def test_placeholder_database_password_refused(tmp_path: Path) -> None:
    init_node_dir(tmp_path / "n", "oslo", "postgresql+psycopg://fedpsy:changeme@db/fedpsy")
    with pytest.raises(FedpsyError, match=r"password in database_url .* placeholder"):
        node_settings(tmp_path / "n")
    write_config(CoordinatorDir(tmp_path / "c"), "postgresql+psycopg://c:ChangeMe@db/c")
    with pytest.raises(FedpsyError, match="placeholder"):
        coordinator_settings(tmp_path / "c")


def test_unknown_or_invalid_setting_named(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append_serve_table(node_dir / "node.toml", tls_cert="x.pem")
    with pytest.raises(FedpsyError) as err:
        node_settings(node_dir)
    assert "tls_cert (FEDPSY_NODE_TLS_CERT or [serve] tls_cert" in err.value.detail
    assert "unknown setting" in err.value.detail


def test_invalid_value_named_as_env_var(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDPSY_NODE_PORT", "99999")
    with pytest.raises(FedpsyError, match="FEDPSY_NODE_PORT"):
        node_settings(node_dir)
    monkeypatch.setenv("FEDPSY_NODE_PORT", "8701")
    monkeypatch.setenv("FEDPSY_NODE_TLS_CLIENT_AUTH", "sometimes")
    with pytest.raises(FedpsyError, match="FEDPSY_NODE_TLS_CLIENT_AUTH"):
        node_settings(node_dir)


def test_tls_settings_checked(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = Pki.create(tmp_path / "pki")
    cert, key = pki.issue("berlin")
    other_cert, _ = pki.issue("oslo")
    monkeypatch.setenv("FEDPSY_NODE_TLS_CERTFILE", str(cert))
    with pytest.raises(FedpsyError, match="set both or neither"):
        node_settings(node_dir)
    monkeypatch.setenv("FEDPSY_NODE_TLS_KEYFILE", str(key))
    monkeypatch.setenv("FEDPSY_NODE_TLS_CLIENT_AUTH", "required")
    with pytest.raises(FedpsyError, match="tls_ca_certs"):
        node_settings(node_dir)
    monkeypatch.setenv("FEDPSY_NODE_TLS_CA_CERTS", str(pki.ca))
    tls = node_settings(node_dir).server_tls
    assert tls is not None and tls.client_auth == "required"
    assert tls.uvicorn_options()["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    monkeypatch.setenv("FEDPSY_NODE_TLS_CERTFILE", str(other_cert))  # key does not match
    with pytest.raises(FedpsyError) as err:
        node_settings(node_dir)
    assert err.value.code == "tls_invalid" and str(other_cert) in err.value.detail


def test_relative_paths_in_the_config_file_are_relative_to_the_directory(
    node_dir: Path, tmp_path: Path
) -> None:
    pki = Pki.create(node_dir / "tls")
    pki.issue("berlin")
    append_serve_table(
        node_dir / "node.toml",
        tls_certfile="tls/berlin.pem",
        tls_keyfile="tls/berlin.key",
        tls_ca_certs="tls/ca.pem",
    )
    settings = node_settings(node_dir)
    assert settings.tls_certfile == node_dir / "tls" / "berlin.pem"
    assert settings.url == "https://127.0.0.1:8701"


def test_rewriting_node_toml_keeps_the_serve_table(node_dir: Path) -> None:
    append_serve_table(node_dir / "node.toml", port=9100, host="0.0.0.0")
    ndir = NodeDir(node_dir)
    save_config(ndir, load_config(ndir))
    assert node_settings(node_dir).port == 9100


def test_coordinator_settings_and_node_transport(
    coordinator_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = coordinator_settings(coordinator_dir)
    assert plain.nodes_ca is None and not node_transport(plain).https_only
    pki = Pki.create(tmp_path / "pki")
    cert, key = pki.issue("coordinator")
    append_serve_table(
        coordinator_dir / "coordinator.toml",
        port=8800,
        tls_certfile=str(cert),
        tls_keyfile=str(key),
        tls_ca_certs=str(pki.ca),
    )
    settings = coordinator_settings(coordinator_dir)
    assert settings.port == 8800 and settings.nodes_ca == pki.ca
    assert settings.nodes_client_cert == (cert, key)
    transport = node_transport(settings)
    assert transport.https_only
    with pytest.raises(FedpsyError) as err:
        transport.check_url("http://node.example:8701")
    assert err.value.code == "tls_required"
    transport.check_url("https://node.example:8701")
    monkeypatch.setenv("FEDPSY_COORDINATOR_TLS_KEY_PASSWORD", "changeme")
    with pytest.raises(FedpsyError, match="FEDPSY_COORDINATOR_TLS_KEY_PASSWORD"):
        coordinator_settings(coordinator_dir)


def test_every_setting_is_documented_in_env_example() -> None:
    documented = env_example()
    for cls, prefix in (
        (NodeSettings, "FEDPSY_NODE_"),
        (CoordinatorSettings, "FEDPSY_COORDINATOR_"),
    ):
        for name in cls.model_fields:
            assert f"{prefix}{name.upper()}" in documented, f"{prefix}{name.upper()}"
    secrets = [k for k in documented if k.endswith(("_TOKEN", "_PASSWORD"))]
    assert secrets
    for key in secrets:  # each secret is a placeholder (refused) or left empty
        assert documented[key] == "" or is_placeholder(documented[key]), key
