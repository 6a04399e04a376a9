"""A coordinator directory.

```
DIR/coordinator.toml     store URL (optional), created_at
DIR/coordinator.key      the coordinator's Ed25519 signing key (0600)
DIR/coordinator.pub      its public key (PEM): hand it to every site
DIR/coordinator.sqlite   the default state store
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import ErrorCode, FedpsyError


class CoordinatorConfig(BaseModel):
    """What ``coordinator.toml`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_at: str
    database_url: str | None = None
    job_deadline_s: float = 600.0
    request_timeout_s: float = 60.0
    running_jobs: int = Field(4, ge=1)
    """Jobs that run at once; later ones wait in line (``queued``) and start in order."""
    serve: dict[str, str | int | bool] | None = None  # [serve] table: coordinator/settings.py


@dataclass(frozen=True)
class CoordinatorDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "coordinator.toml"

    @property
    def private_key(self) -> Path:
        return self.root / "coordinator.key"

    @property
    def public_key(self) -> Path:
        return self.root / "coordinator.pub"

    def store_url(self, config: CoordinatorConfig) -> str:
        return config.database_url or f"sqlite:///{(self.root / 'coordinator.sqlite').resolve()}"

    def require(self) -> CoordinatorDir:
        if not self.config.is_file():
            raise FedpsyError(
                f"{self.root}: no coordinator.toml here; create it with "
                f"`fedpsy coordinator init {self.root}`",
                code=ErrorCode.NOT_INITIALIZED,
            )
        return self


def write_config(cdir: CoordinatorDir, database_url: str | None) -> CoordinatorConfig:
    if cdir.config.exists():
        raise FedpsyError(
            f"{cdir.root} already holds a coordinator", code=ErrorCode.ALREADY_INITIALIZED
        )
    cdir.root.mkdir(parents=True, exist_ok=True)
    config = CoordinatorConfig(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), database_url=database_url
    )
    lines = ["# fedpsy coordinator configuration", f'created_at = "{config.created_at}"']
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    lines += [
        f"job_deadline_s = {config.job_deadline_s}",
        f"request_timeout_s = {config.request_timeout_s}",
        f"running_jobs = {config.running_jobs}",
    ]
    cdir.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def load_config(cdir: CoordinatorDir) -> CoordinatorConfig:
    cdir.require()
    try:
        with cdir.config.open("rb") as fh:
            return CoordinatorConfig.model_validate(tomllib.load(fh))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise FedpsyError(f"{cdir.config}: {exc}", code=ErrorCode.CONFIG_INVALID) from exc
