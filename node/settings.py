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
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from node.config import load_config
from node.layout import NodeDir
from schemas.settings import (
    build_settings,
    check_url_password,
    file_values,
    refuse_placeholder,
)
from schemas.tls import ClientAuth, ServerTls

ENV_PREFIX = "FEDPSY_NODE_"
LogLevel = Literal["debug", "info", "warning", "error"]


class NodeSettings(BaseSettings):
    """Everything ``fedpsy node serve`` needs beyond the node directory itself."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_ignore_empty=True
    )

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0: all).")
    port: int = Field(8701, ge=1, le=65535, description="Port to listen on.")
    admin_token: SecretStr = Field(
        description="Bearer token for /admin (default: DIR/admin_token)."
    )
    tls_certfile: Path | None = Field(None, description="Server certificate (PEM).")
    tls_keyfile: Path | None = Field(None, description="Its private key (PEM, 0600).")
    tls_key_password: SecretStr | None = Field(None, description="Key password, if any.")
    tls_ca_certs: Path | None = Field(
        None, description="CA that client certificates must chain to (the consortium CA)."
    )
    tls_client_auth: ClientAuth = Field("none", description="none | optional | required.")
    log_level: LogLevel = Field("info", description="Log level of the JSON logs.")

    @field_validator("admin_token", "tls_key_password")
    @classmethod
    def _not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_placeholder(value)

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("is too short: use at least 16 random characters")
        return value

    @model_validator(mode="after")
    def _tls_consistent(self) -> NodeSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together: set both or neither")
        if self.tls_client_auth != "none" and (
            self.tls_certfile is None or self.tls_ca_certs is None
        ):
            raise ValueError(
                f"tls_client_auth = {self.tls_client_auth!r} needs TLS "
                "(tls_certfile, tls_keyfile) and tls_ca_certs to verify clients"
            )
        return self

    @property
    def server_tls(self) -> ServerTls | None:
        """HTTPS options, or None for plain HTTP (loopback and tests only)."""
        if self.tls_certfile is None or self.tls_keyfile is None:
            return None
        password = self.tls_key_password.get_secret_value() if self.tls_key_password else None
        return ServerTls(
            self.tls_certfile, self.tls_keyfile, self.tls_ca_certs, self.tls_client_auth, password
        )

    @property
    def url(self) -> str:
        """The base URL the node listens on (as seen from the host itself)."""
        scheme = "https" if self.server_tls is not None else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{scheme}://{host}:{self.port}"


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
