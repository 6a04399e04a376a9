"""The routes pull nodes use on the coordinator (see :mod:`coordinator.federation.mailbox`).

``GET|POST /v1/pull/{site}/next?wait=SECONDS`` collects the next queued request (200 with
``{message_id, method, path, headers, body}``, or 204 when none came within ``wait``); a
POST's body is the node's current ``NodeInfo``. ``POST /v1/pull/{site}/responses/{id}``
with ``{"status": CODE, "body": TEXT}`` answers it. Both are signed with the node's key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from coordinator.federation.mailbox import Mailbox
from coordinator.store import registry
from schemas.errors import ErrorCode, FedpsyError


class PulledAnswer(BaseModel):
    """What a pull node posts back: the status code and body its API gave the request."""

    status: int
    body: str


def pull_router(mailbox: Mailbox) -> APIRouter:
    router = APIRouter(prefix="/v1/pull", tags=["pull nodes"])

    async def signed(site: str, request: Request) -> tuple[registry.NodeRecord, bytes]:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        node = await run_in_threadpool(
            mailbox.authenticate, site, dict(request.headers), request.method, path, body
        )
        return node, body

    async def next_message(site: str, request: Request, wait: float = 0.0) -> Response:
        node, body = await signed(site, request)
        await run_in_threadpool(mailbox.record_info, node, body)
        message: dict[str, Any] | None = await mailbox.next(site, wait, request.is_disconnected)
        if message is None:
            return Response(status_code=204)
        return JSONResponse(message)

    for method in ("GET", "POST"):  # POST carries the node's NodeInfo
        router.add_api_route(
            "/{site}/next",
            next_message,
            methods=[method],
            name=f"next_message_{method.lower()}",
            responses={204: {}, 401: {}},
        )

    @router.post("/{site}/responses/{message_id}", status_code=204, responses={401: {}, 404: {}})
    async def respond(site: str, message_id: str, request: Request) -> Response:
        _, body = await signed(site, request)
        try:
            answer = PulledAnswer.model_validate_json(body)
        except ValidationError:
            raise FedpsyError(
                'post {"status": CODE, "body": TEXT}', code=ErrorCode.REQUEST_INVALID
            ) from None
        await run_in_threadpool(mailbox.answer, site, message_id, answer.status, answer.body)
        return Response(status_code=204)

    return router
