"""The keys a result is checked against (``fedpsy verify``): a folder of PEM files or the
keys a coordinator pinned, and the result JSON itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.json_files import read_object
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import public_key_from_pem
from schemas.result_check import TrustedKeys

COORDINATOR_KEY = "coordinator.pub"


def read_result(path: Path) -> dict[str, Any]:
    """The envelope JSON object in ``path`` (``bad_input`` when it is not one)."""
    return read_object(path, "a result", ErrorCode.BAD_INPUT)


def _pem(text: str | bytes, where: str) -> Any:
    return public_key_from_pem(text.encode() if isinstance(text, str) else text, where)


def keys_from_dir(folder: Path) -> TrustedKeys:
    """``coordinator.pub`` and one ``SITE.pub`` per site (PEM) in ``folder``."""
    coordinator = folder / COORDINATOR_KEY
    if not coordinator.is_file():
        raise FedpsyError(
            f"{coordinator} does not exist; --keys DIR holds coordinator.pub and SITE.pub files",
            code=ErrorCode.BAD_INPUT,
        )
    sites = {
        p.stem: _pem(p.read_bytes(), str(p))
        for p in sorted(folder.glob("*.pub"))
        if p.name != COORDINATOR_KEY
    }
    return TrustedKeys(_pem(coordinator.read_bytes(), str(coordinator)), sites)


def keys_from_coordinator(where: str) -> TrustedKeys:
    """The coordinator's key and the site keys it pinned, from its directory or its URL
    (``GET /v1/keys``)."""
    if where.startswith(("http://", "https://")):
        try:
            response = httpx.get(where.rstrip("/") + "/v1/keys", timeout=30)
            response.raise_for_status()
            keys = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FedpsyError(
                f"cannot read the keys of the coordinator at {where}: {exc}",
                code=ErrorCode.COORDINATOR_UNREACHABLE,
            ) from None
        sites = {s: _pem(pem, f"{where}/v1/keys {s}") for s, pem in keys["sites"].items()}
        return TrustedKeys(_pem(keys["coordinator"], f"{where}/v1/keys"), sites)
    with Coordinator.open(Path(where)) as coord:
        own = coord.dir.public_key.read_bytes()
        nodes = registry.list_nodes(coord.engine)
    return TrustedKeys(
        _pem(own, str(where)), {n.site: _pem(n.public_key, f"node {n.site}") for n in nodes}
    )


__all__ = ["keys_from_coordinator", "keys_from_dir", "read_result"]
