"""The node's secure aggregation routes, mounted by :func:`node.http.api.create_app`.

``GET /v1/secagg/key`` is public (a public key signed by the node's identity);
``POST /v1/secagg/setup`` and ``POST /v1/secagg/unmask`` need a request signed by a
trusted coordinator key, like tasks. Errors are problem bodies via the app's handlers.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from node.http.signed import read_signed
from node.service import NodeService
from schemas.secagg.wire import KeyBundle, SetupAnswer, UnmaskAnswer

SECAGG = "/v1/secagg"


def secagg_router(service: NodeService) -> APIRouter:
    router = APIRouter(prefix=SECAGG, tags=["secure aggregation"])

    @router.get("/key", response_model=KeyBundle)
    def key() -> KeyBundle:
        return service.secagg_key()

    @router.post("/setup", response_model=SetupAnswer, responses={401: {}, 409: {}, 422: {}})
    async def setup(request: Request) -> SetupAnswer:
        key, body = await read_signed(service, request)
        return await run_in_threadpool(service.secagg_setup, body, key)

    @router.post("/unmask", response_model=UnmaskAnswer, responses={401: {}, 409: {}, 422: {}})
    async def unmask(request: Request) -> UnmaskAnswer:
        key, body = await read_signed(service, request)
        return await run_in_threadpool(service.secagg_unmask, body, key)

    return router
