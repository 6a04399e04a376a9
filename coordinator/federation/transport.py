"""How the coordinator reaches nodes: TLS verification, client certificate, HTTPS only.

Built from :class:`coordinator.settings.CoordinatorSettings`. With a consortium CA
configured, every node connection is verified against that CA (chain and host name) and a
plain ``http://`` node URL is refused at the transport, before any byte is sent.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cache

import httpx

from coordinator.settings import CoordinatorSettings
from schemas.errors import ErrorCode, FedpsyError
from schemas.tls import client_context


class PlainHttpRefused(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Mounted for ``http://`` when TLS is configured: every request fails, clearly."""

    def _refuse(self, request: httpx.Request) -> httpx.UnsupportedProtocol:
        return httpx.UnsupportedProtocol(
            f"plain HTTP to {request.url.scheme}://{request.url.netloc.decode()} is refused: "
            "the coordinator is configured for TLS; register the node with an https:// URL",
            request=request,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise self._refuse(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self._refuse(request)


@dataclass(frozen=True)
class NodeTransport:
    """Client options for node connections (default: system trust store, http allowed)."""

    verify: ssl.SSLContext | bool = True
    https_only: bool = False

    def _mounts(self) -> dict[str, PlainHttpRefused] | None:
        return {"http://": PlainHttpRefused()} if self.https_only else None

    def _context(self) -> ssl.SSLContext | bool:
        # loading the system's CA bundle costs milliseconds of CPU: once per process,
        # not once per job
        return _system_trust() if self.verify is True else self.verify

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self._context(), mounts=self._mounts())

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self._context(), mounts=self._mounts())

    def check_url(self, url: str) -> None:
        """Refuse a node URL that this transport would refuse (for ``add-node``)."""
        if self.https_only and not url.lower().startswith("https://"):
            raise FedpsyError(
                f"{url}: plain HTTP is refused because the coordinator has a "
                "consortium CA configured; use the node's https:// URL",
                code=ErrorCode.TLS_REQUIRED,
            )


@cache
def _system_trust() -> ssl.SSLContext:
    """The context httpx builds for ``verify=True`` (its CA bundle), built once."""
    return httpx.create_ssl_context()


def node_transport(settings: CoordinatorSettings) -> NodeTransport:
    """The transport ``settings`` ask for."""
    if settings.nodes_ca is None:
        return NodeTransport()
    certfile, keyfile = settings.nodes_client_cert or (None, None)
    context = client_context(
        settings.nodes_ca, certfile, keyfile, settings.key_password, "coordinator → nodes TLS"
    )
    return NodeTransport(verify=context, https_only=True)
