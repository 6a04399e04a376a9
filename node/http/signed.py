"""Reading a request signed by a trusted coordinator key at the node's HTTP boundary."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from node.service import NodeService


async def read_signed(service: NodeService, request: Request) -> tuple[str, bytes]:
    """The body of a request signed by a trusted coordinator key, and that key's
    fingerprint (the signature covers the path with its query string)."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    key = await run_in_threadpool(
        service.authenticate, dict(request.headers), request.method, path, body
    )
    return key, body
