"""``fedpsy run --methods``: the methods paragraph of a result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from coordinator.service import Coordinator
from coordinator.store import registry
from schemas.envelope import Envelope
from schemas.methods import methods_paragraph


def site_policies(coordinator: str, token: str | None) -> dict[str, dict[str, Any]]:
    """The public policy of each registered site, from a coordinator directory or URL
    (``GET /v1/nodes``); empty when the coordinator cannot say."""
    if coordinator.startswith(("http://", "https://")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            nodes = httpx.get(coordinator.rstrip("/") + "/v1/nodes", headers=headers).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return {n["site"]: n["policy"] for n in nodes if isinstance(n, dict) and n.get("policy")}
    with Coordinator.open(Path(coordinator)) as coord:
        return {n.site: n.policy for n in registry.list_nodes(coord.engine) if n.policy}


def methods_text(
    coordinator: str, token: str | None, request: dict[str, Any], result: Envelope
) -> str:
    return methods_paragraph(request, result, site_policies(coordinator, token))


__all__ = ["methods_text", "site_policies"]
