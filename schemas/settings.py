"""Building a side's typed settings from its sources, and refusing placeholder secrets.

Each side has one pydantic-settings object (``node.settings.NodeSettings``,
``coordinator.settings.CoordinatorSettings``) built by a function, never at import time,
from, in order of precedence: command-line options, environment variables
(``FEDPSY_NODE_*`` / ``FEDPSY_COORDINATOR_*``), the ``[serve]`` table of the directory's
config file, then the defaults. Relative paths in the config file are relative to the
directory. A secret that is still a placeholder (``changeme`` and the like, as in
``deploy/.env.example``) is refused at start with an error naming the setting.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

from schemas.errors import ErrorCode, FedpsyError
from schemas.tls import ClientAuth, ServerTls

S = TypeVar("S", bound=BaseSettings)
LogLevel = Literal["debug", "info", "warning", "error"]
TABLE = "serve"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Host names that reach only this machine (plain HTTP and plain Flower are allowed there)."""
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "change-this",
        "replaceme",
        "replace-me",
        "secret",
        "password",
        "placeholder",
        "todo",
        "xxx",
        "example",
        "default",
    }
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is an obvious placeholder rather than a real secret."""
    folded = value.strip().lower()
    return folded in PLACEHOLDERS or folded.startswith("changeme") or set(folded) <= {"x", "*"}


def refuse_placeholder(value: SecretStr | None) -> SecretStr | None:
    """A field validator's body: a placeholder secret is an error (never echoing it)."""
    if value is not None and is_placeholder(value.get_secret_value()):
        raise ValueError(
            "is a placeholder, not a secret: set a real value, e.g. the output "
            "of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return value


def check_url_password(url: str | None, where: str) -> None:
    """Refuse a database URL whose password is a placeholder."""
    if not url:
        return
    try:
        password = make_url(url).password
    except Exception:  # an unparsable URL is reported when the store is opened
        return
    if password is not None and is_placeholder(str(password)):
        raise FedpsyError(
            f"the password in {where} is a placeholder; set the database's real "
            "password (or leave it out of the URL and set PGPASSWORD)",
            code=ErrorCode.CONFIG_INVALID,
        )


def _is_path_field(annotation: object) -> bool:
    if annotation is Path:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_path_field(arg) for arg in typing.get_args(annotation))
    return False


def file_values(cls: type[BaseSettings], table: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The config file's ``[serve]`` values, with relative paths resolved against ``base``."""
    values = dict(table)
    for key, value in values.items():
        field = cls.model_fields.get(key)
        if field is not None and isinstance(value, str) and _is_path_field(field.annotation):
            path = Path(value)
            values[key] = path if path.is_absolute() else base / path
    return values


def build_settings(
    cls: type[S],
    given: Mapping[str, Any],
    from_file: Mapping[str, Any],
    env_prefix: str,
    config_file: str,
) -> S:
    """``cls`` from options > environment > config file > defaults; errors name the setting
    as an environment variable and as a config-file key."""
    options = {k: v for k, v in given.items() if v is not None}
    sources = (
        InitSettingsSource(cls, options),
        EnvSettingsSource(cls),
        InitSettingsSource(cls, dict(from_file)),
    )
    try:
        return cls(_build_sources=(sources, {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting"
            problems.append(
                f"{key} ({env_prefix}{key.upper()} or [{TABLE}] {key} in {config_file}): {msg}"
            )
        raise FedpsyError("; ".join(problems), code=ErrorCode.CONFIG_INVALID) from None


def local_host(host: str | None) -> str:
    """The address this machine reaches a server listening on ``host`` by (a wildcard
    interface: loopback)."""
    return "127.0.0.1" if host in (None, "", "0.0.0.0", "::") else str(host)


class ServeSettings(BaseSettings):
    """What a serving side (node or coordinator) needs to listen: interface, port, HTTPS
    (optionally mutual TLS) and the log level. Each side subclasses it with its own
    environment prefix, default port and settings."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_ignore_empty=True)

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0: all).")
    port: int = Field(ge=1, le=65535, description="Port to listen on.")
    tls_certfile: Path | None = Field(None, description="Server certificate (PEM).")
    tls_keyfile: Path | None = Field(None, description="Its private key (PEM, 0600).")
    tls_key_password: SecretStr | None = Field(None, description="Key password, if any.")
    tls_ca_certs: Path | None = Field(None, description="The consortium CA.")
    tls_client_auth: ClientAuth = Field("none", description="none | optional | required.")
    log_level: LogLevel = Field("info", description="Log level of the JSON logs.")

    @field_validator("tls_key_password")
    @classmethod
    def _key_password_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_placeholder(value)

    @model_validator(mode="after")
    def _tls_consistent(self) -> Self:
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
    def key_password(self) -> str | None:
        return self.tls_key_password.get_secret_value() if self.tls_key_password else None

    @property
    def server_tls(self) -> ServerTls | None:
        """HTTPS options, or None for plain HTTP (loopback and tests only)."""
        if self.tls_certfile is None or self.tls_keyfile is None:
            return None
        return ServerTls(
            self.tls_certfile,
            self.tls_keyfile,
            self.tls_ca_certs,
            self.tls_client_auth,
            self.key_password,
        )

    @property
    def url(self) -> str:
        """The base URL this side listens on (as seen from the host itself)."""
        scheme = "https" if self.server_tls is not None else "http"
        return f"{scheme}://{local_host(self.host)}:{self.port}"
