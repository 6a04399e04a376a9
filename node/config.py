"""The node's configuration (``node.toml``), built by a function, never at import time."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from node.layout import NodeDir, check_site_id, new_admin_token, read_toml, write_secret
from node.store.engine import sqlite_url
from schemas.dictionary import Dictionary, load_dictionary
from schemas.dictionary.loader import parse_dictionary_text
from schemas.errors import DictionaryError, ErrorCode, FedpsyError


class NodeConfig(BaseModel):
    """What ``node.toml`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str
    database_url: str | None = None
    created_at: str
    dictionary_extensions: tuple[str, ...] = ()
    serve: dict[str, str | int | bool] | None = None  # [serve] table: node/settings.py

    def store_url(self, node_dir: NodeDir) -> str:
        return self.database_url or sqlite_url(node_dir.root)


def _toml_line(key: str, value: object) -> str:
    if isinstance(value, tuple | list):
        inner = ", ".join(f'"{v}"' for v in value)
        return f"{key} = [{inner}]"
    return f'{key} = "{value}"'


def save_config(node_dir: NodeDir, config: NodeConfig) -> None:
    lines = ["# fedpsy node configuration (written by `fedpsy node init`)"]
    for key, value in config.model_dump(exclude_none=True, exclude={"serve"}).items():
        lines.append(_toml_line(key, value))
    if config.serve:
        lines += ["", "[serve]", *(f"{k} = {json.dumps(v)}" for k, v in config.serve.items())]
    node_dir.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_config(node_dir: NodeDir) -> NodeConfig:
    node_dir.require()
    try:
        return NodeConfig.model_validate(read_toml(node_dir.config))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FedpsyError(
            f"{node_dir.config}: {where}: {first['msg']}", code=ErrorCode.CONFIG_INVALID
        ) from exc


def node_dictionary(
    node_dir: NodeDir, config: NodeConfig, extra: tuple[Path, ...] = ()
) -> Dictionary:
    """The shipped dictionary plus the node's extensions (and ``extra`` files, if given)."""
    files = [node_dir.dictionary / name for name in config.dictionary_extensions]
    return load_dictionary([*files, *extra])


def adopt_extensions(node_dir: NodeDir, config: NodeConfig, files: tuple[Path, ...]) -> NodeConfig:
    """Copy extension dictionaries into the node and record them (validated first).

    A file given again is no change where its definitions are identical; it may add
    variables, but not change or drop one (a ``dictionary_clash``)."""
    if not files:
        return config
    node_dictionary(node_dir, config, files)  # raises naming the file if invalid or clashing
    for file in files:
        if file.name in config.dictionary_extensions:
            _keeps_every_variable(node_dir.dictionary / file.name, file)
    node_dir.dictionary.mkdir(exist_ok=True)
    names = list(config.dictionary_extensions)
    for file in files:
        shutil.copyfile(file, node_dir.dictionary / file.name)
        if file.name not in names:
            names.append(file.name)
    updated = config.model_copy(update={"dictionary_extensions": tuple(names)})
    save_config(node_dir, updated)
    return updated


def _keeps_every_variable(stored: Path, given: Path) -> None:
    """Refuse ``given`` when it would replace ``stored`` (same file name) without some of
    its variables: the values loaded for them would lose their definition."""
    before = parse_dictionary_text(stored.read_text(encoding="utf-8"), str(stored))
    after = {v.code for v in parse_dictionary_text(given.read_text(encoding="utf-8"), str(given))}
    dropped = [v.code for v in before if v.code not in after]
    if dropped:
        raise DictionaryError(
            f"{given}: replaces the node's {stored} but no longer defines "
            f"{', '.join(repr(c) for c in dropped)}; keep those definitions, or give new "
            "variables in a file of another name",
            code=ErrorCode.DICTIONARY_CLASH,
            extra={"file": str(given), "variables": dropped},
        )


def init_node_dir(root: Path, site: str, database_url: str | None) -> NodeConfig:
    """Create the node directory's files (keys and policy are added by their modules)."""
    node_dir = NodeDir(root)
    if node_dir.config.exists():
        raise FedpsyError(
            f"{root} already holds a node (node.toml exists)", code=ErrorCode.ALREADY_INITIALIZED
        )
    check_site_id(site)
    root.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(
        site=site,
        database_url=database_url,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    save_config(node_dir, config)
    write_secret(node_dir.admin_token, new_admin_token() + "\n")
    node_dir.trusted.mkdir(exist_ok=True)
    return config
