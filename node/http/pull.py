"""Pull mode: a node behind a firewall that allows no inbound connections polls the
coordinator for its requests and posts the answers back over HTTPS.

Each collected message is the exact request the coordinator would have sent (method, the
node's path, body, signature headers). It is replayed into the node's own API application
in process (:mod:`node.http.replay`), so it passes the same signature check, policy, gate,
release and audit as a pushed request, and the status code and body the API gave are
posted back. The admin routes are never replayed. The poll and the answer are signed with the
node's Ed25519 identity (``DIR/keys``), which the coordinator pinned at
``add-node --pull``; each poll carries the node's current ``NodeInfo``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.http.replay import replay
from node.service import NodeService
from schemas.errors import ErrorCode, FedpsyError
from schemas.settings import LOOPBACK
from schemas.signing import sign_headers

log = logging.getLogger(__name__)


@dataclass
class Poller:
    """Long-polls ``coordinator_url`` for ``service``'s requests and answers them through
    ``app`` (the node's API from :func:`node.http.api.create_app`)."""

    service: NodeService
    app: Any
    coordinator_url: str
    key: Ed25519PrivateKey
    client: httpx.AsyncClient
    wait: float = 25.0
    backoff_max: float = 30.0

    @property
    def _prefix(self) -> str:
        return urlsplit(self.coordinator_url).path.rstrip("/") + f"/v1/pull/{self.service.site}"

    async def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until ``stop()`` is true; a failed poll is retried with backoff."""
        delay = 0.5
        while not stop():
            try:
                await self.poll_once()
                delay = 0.5
            except (httpx.HTTPError, PollRefused) as exc:
                log.warning(
                    "poll failed",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)

    async def poll_once(self) -> bool:
        """One poll: collect at most one message, answer it; whether there was one."""
        info = await asyncio.to_thread(self.service.info)
        body = info.model_dump_json().encode("utf-8")
        wait = f"{self.wait:g}"
        response = await self._signed(
            "POST", f"{self._prefix}/next?wait={wait}", body, timeout=self.wait + 30
        )
        if response.status_code == 204:
            return False
        if response.status_code != 200:
            raise PollRefused(_problem_text(response))
        message: dict[str, Any] = response.json()
        status, text = await self.replay(message)
        answer = json.dumps({"status": status, "body": text}).encode("utf-8")
        posted = await self._signed(
            "POST", f"{self._prefix}/responses/{message['message_id']}", answer, timeout=30
        )
        if posted.status_code != 204:
            raise PollRefused(_problem_text(posted))
        return True

    async def replay(self, message: dict[str, Any]) -> tuple[int, str]:
        """The node API's answer to one collected request."""
        return await replay(
            self.app,
            str(message["method"]),
            str(message["path"]),
            dict(message["headers"]),
            str(message["body"]).encode("utf-8"),
        )

    async def _signed(self, method: str, path: str, body: bytes, timeout: float) -> httpx.Response:
        headers = sign_headers(self.key, method, path, body)
        headers["Content-Type"] = "application/json"
        parts = urlsplit(self.coordinator_url)
        url = f"{parts.scheme}://{parts.netloc}{path}"
        return await self.client.request(
            method, url, content=body, headers=headers, timeout=timeout
        )


class PollRefused(Exception):
    """The coordinator refused a poll or an answer (the node is retried with backoff)."""


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
        return f"HTTP {response.status_code} {problem.get('code')}: {problem.get('detail')}"
    except ValueError:
        return f"HTTP {response.status_code}"


def pull_client(
    coordinator_url: str,
    ca_certs: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
    key_password: str | None = None,
) -> httpx.AsyncClient:
    """The HTTPS client a pull node polls with: the coordinator's certificate checked
    against ``ca_certs`` (the consortium CA; default the system's), the node's own
    certificate presented when the coordinator asks for one. Plain HTTP only to loopback."""
    parts = urlsplit(coordinator_url)
    if parts.scheme != "https" and parts.hostname not in LOOPBACK:
        raise FedpsyError(
            f"poll the coordinator over HTTPS, not {parts.scheme}:// "
            "(plain HTTP is allowed only to this machine)",
            code=ErrorCode.TLS_REQUIRED,
        )
    context = ssl.create_default_context(cafile=str(ca_certs) if ca_certs else None)
    if client_cert is not None:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]), key_password)
    return httpx.AsyncClient(verify=context)
