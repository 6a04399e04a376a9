"""How the coordinator serves and reaches nodes: typed settings, built by a function.

Sources, highest first: ``fedpsy coordinator serve`` options, ``FEDPSY_COORDINATOR_*``
environment variables, the ``[serve]`` table of ``DIR/coordinator.toml``, defaults.
Example table::

    [serve]
    host = "0.0.0.0"
    port = 8700
    tls_certfile = "tls/coordinator.pem"   # relative to the coordinator directory
    tls_keyfile = "tls/coordinator.key"
    tls_ca_certs = "tls/ca.pem"            # the consortium CA: nodes are verified against it

With a CA in effect (``nodes_ca_certs``, else ``tls_ca_certs``) the coordinator talks to
nodes only over HTTPS, verifies each node's certificate and host name against that CA, and
presents ``nodes_client_certfile`` (else its own ``tls_certfile``) to nodes that require
mutual TLS; a node URL with plain ``http://`` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from coordinator.layout import CoordinatorDir, load_config
from schemas.settings import ServeSettings, build_settings, check_url_password, file_values
from schemas.tls import ClientAuth

ENV_PREFIX = "FEDPSY_COORDINATOR_"


class CoordinatorSettings(ServeSettings):
    """Everything ``fedpsy coordinator`` needs beyond its directory."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    port: int = Field(8700, ge=1, le=65535, description="Port to listen on.")
    tls_client_auth: ClientAuth = Field(
        "none", description="Researcher API: none | optional | required client certificates."
    )
    nodes_ca_certs: Path | None = Field(
        None, description="CA that node certificates must chain to (default: tls_ca_certs)."
    )
    nodes_client_certfile: Path | None = Field(
        None, description="Client certificate shown to nodes (default: tls_certfile)."
    )
    nodes_client_keyfile: Path | None = Field(None, description="Its key (default: tls_keyfile).")

    @model_validator(mode="after")
    def _nodes_client_pair(self) -> CoordinatorSettings:
        if (self.nodes_client_certfile is None) != (self.nodes_client_keyfile is None):
            raise ValueError("nodes_client_certfile and nodes_client_keyfile go together")
        return self

    @property
    def nodes_ca(self) -> Path | None:
        """The CA nodes are verified against (None: system trust store, http allowed)."""
        return self.nodes_ca_certs or self.tls_ca_certs

    @property
    def nodes_client_cert(self) -> tuple[Path, Path] | None:
        """(certificate, key) shown to nodes, if any."""
        if self.nodes_client_certfile and self.nodes_client_keyfile:
            return self.nodes_client_certfile, self.nodes_client_keyfile
        if self.nodes_ca is not None and self.tls_certfile and self.tls_keyfile:
            return self.tls_certfile, self.tls_keyfile
        return None


def coordinator_settings(directory: Path, **options: Any) -> CoordinatorSettings:
    """The settings of the coordinator in ``directory`` (``options``: CLI values)."""
    cdir = CoordinatorDir(directory).require()
    config = load_config(cdir)
    check_url_password(config.database_url, f"database_url in {cdir.config}")
    table = config.serve or {}
    from_file = file_values(CoordinatorSettings, table, directory)
    settings = build_settings(CoordinatorSettings, options, from_file, ENV_PREFIX, str(cdir.config))
    if settings.server_tls is not None:
        settings.server_tls.check(f"coordinator TLS ({cdir.config} / {ENV_PREFIX}TLS_*)")
    return settings
