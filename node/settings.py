"""How a node serves: its typed settings, built by :func:`node_settings`.

Sources, highest first: ``fedpsy node serve`` options, ``FEDPSY_NODE_*`` environment
variables, the ``[serve]`` table of ``DIR/node.toml``, defaults. The admin token defaults
to ``DIR/admin_token`` (written by ``fedpsy node init``). Example table::

    [serve]
    host = "0.0.0.0"
    port = 8701
    tls_certfile = "tls/berlin.pem"      # relative to the node directory
    tls_keyfile = "tls/berlin.key"
    tls_ca_certs = "tls/ca.pem"          # the consortium CA
    tls_client_auth = "required"         # mutual TLS: only the coordinator's certificate
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from node.config import load_config
from node.layout import NodeDir
from schemas.settings import (
    ServeSettings,
    build_settings,
    check_url_password,
    file_values,
    refuse_placeholder,
)

ENV_PREFIX = "FEDPSY_NODE_"


class NodeSettings(ServeSettings):
    """Everything ``fedpsy node serve`` needs beyond the node directory itself."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    port: int = Field(8701, ge=1, le=65535, description="Port to listen on.")
    admin_token: SecretStr = Field(
        description="Bearer token for /admin (default: DIR/admin_token)."
    )
    tls_ca_certs: Path | None = Field(
        None, description="CA that client certificates must chain to (the consortium CA)."
    )

    @field_validator("admin_token")
    @classmethod
    def _admin_token_usable(cls, value: SecretStr) -> SecretStr:
        refuse_placeholder(value)
        if len(value.get_secret_value()) < 16:
            raise ValueError("is too short: use at least 16 random characters")
        return value


def node_settings(directory: Path, **options: Any) -> NodeSettings:
    """The settings of the node in ``directory`` (``options``: CLI values; None = unset).

    Raises ``config_invalid`` naming the setting (as env var and config key) when a value
    is wrong, a secret is a placeholder or a TLS file cannot be loaded.
    """
    node_dir = NodeDir(directory).require()
    config = load_config(node_dir)
    check_url_password(config.database_url, f"database_url in {node_dir.config}")
    from_file = file_values(NodeSettings, config.serve or {}, directory)
    if node_dir.admin_token.is_file():
        from_file.setdefault("admin_token", node_dir.admin_token.read_text().strip())
    settings = build_settings(NodeSettings, options, from_file, ENV_PREFIX, str(node_dir.config))
    if settings.server_tls is not None:
        settings.server_tls.check(f"node TLS ({node_dir.config} / {ENV_PREFIX}TLS_*)")
    return settings
