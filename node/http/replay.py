"""Replaying a coordinator's signed request into the node's own API, in process.

Pull mode (:mod:`node.http.pull`) and the Flower ClientApp (:mod:`node.training.client_app`)
receive the exact request the coordinator would have sent over HTTP (method, the node's
path, signature headers, body) by another way. Replayed into the node's API application,
it passes the same signature check, policy, gate, release and audit as a pushed request.
Only the coordinator-facing routes are replayed (``/v1/tasks``, ``/v1/secagg/*``,
``/v1/info``, ``/health``); the admin routes never are.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from schemas.errors import ErrorCode, FedpsyError

log = logging.getLogger(__name__)
REPLAYED = re.compile(
    r"/health|/v1/info|/v1/tasks(/[0-9A-Za-z_-]{1,64})?"
    r"|/v1/secagg/(key|setup|unmask)"
)
APP_BASE = "http://node.http.replay"


def problem(error: FedpsyError, path: str) -> tuple[int, str]:
    """The status and RFC 9457 problem body the node's API answers ``error`` with."""
    return error.http_status, json.dumps(error.problem(path))


async def replay(
    app: Any, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, str]:
    """The node API's answer to one request (a 404 problem for anything but the
    coordinator-facing routes)."""
    if not REPLAYED.fullmatch(path.split("?", 1)[0]):
        log.warning("refused to replay", extra={"path": path})
        return problem(
            FedpsyError(f"{path} is not served to relayed requests", code=ErrorCode.NOT_FOUND), path
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=APP_BASE) as local:
        response = await local.request(method, path, headers=dict(headers), content=body)
    log.info("answered a relayed request", extra={"path": path, "status": response.status_code})
    return response.status_code, response.text


__all__ = ["REPLAYED", "problem", "replay"]
