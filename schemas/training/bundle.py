"""The fedpsy training app bundle (a Flower App, FAB) and its app hash.

The bundle holds only its ``pyproject.toml``: it names the ServerApp and ClientApp that
the installed fedpsy provides (``coordinator.training.server_app:app`` and
``node.training.client_app:app``), so a site runs its own installed code, never code
shipped with a run. The **app hash** is the SHA-256 over the bundle's files (sorted
relative paths and the SHA-256 of each file's bytes; of its parsed content for TOML).
The coordinator computes it over the bundle it submits; a site's ClientApp computes it over
the bundle its SuperNode installed and takes part only if the site approved that hash
(:mod:`node.privacy.approvals`).
"""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
import zipfile
from collections.abc import Mapping
from pathlib import Path

from schemas import __version__

PUBLISHER = "fedpsy"
NAME = "fedpsy-train"
SERVER_APP = "coordinator.training.server_app:app"
CLIENT_APP = "node.training.client_app:app"


def bundle_files() -> dict[str, bytes]:
    """The bundle's files (relative path → bytes) for this fedpsy version."""
    pyproject = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{NAME}"
version = "{__version__}"
description = "fedpsy federated training (components come from the installed fedpsy)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "{PUBLISHER}"

[tool.flwr.app.components]
serverapp = "{SERVER_APP}"
clientapp = "{CLIENT_APP}"

[tool.flwr.app.config]
plan = ""
"""
    return {"pyproject.toml": pyproject.encode("utf-8")}


def _canonical(name: str, content: bytes) -> bytes:
    """TOML files by their parsed content (Flower re-serializes ``pyproject.toml`` when it
    builds and installs a bundle); other files as they are."""
    if not name.endswith(".toml"):
        return content
    data = tomllib.loads(content.decode("utf-8"))
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def hash_files(files: Mapping[str, bytes]) -> str:
    """The app hash of a bundle given as relative path → bytes."""
    outer = hashlib.sha256()
    for name in sorted(files):
        digest = hashlib.sha256(_canonical(name, files[name])).hexdigest()
        outer.update(f"{name}\0{digest}\n".encode())
    return outer.hexdigest()


def read_bundle(directory: Path) -> dict[str, bytes]:
    """The files of an installed or written bundle (hidden files and caches skipped)."""
    files: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        files[rel.as_posix()] = path.read_bytes()
    return files


def fab_files(content: bytes) -> dict[str, bytes]:
    """The files of a Flower App bundle (FAB, a zip) as :func:`read_bundle` reads an
    installed one (hidden files and caches skipped)."""
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            files[Path(info.filename).as_posix()] = archive.read(info)
    return files


def app_hash(directory: Path | None = None) -> str:
    """The app hash of the bundle in ``directory`` (this version's bundle when None)."""
    return hash_files(bundle_files() if directory is None else read_bundle(directory))


def write_bundle(directory: Path) -> Path:
    """Write this version's bundle into ``directory`` (created); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in bundle_files().items():
        (directory / name).write_bytes(content)
    return directory


__all__ = ["app_hash", "bundle_files", "fab_files", "hash_files", "read_bundle", "write_bundle"]
