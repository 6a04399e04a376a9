"""The node's HTTP API (FastAPI), built by a factory from an opened node.

``GET /health`` and ``GET /v1/info`` are public (no patient data); ``POST /v1/tasks`` and
``GET /v1/tasks/{id}`` need a request signed by a trusted coordinator key; ``/admin/*``
needs the node's admin token (``DIR/admin_token``) as a bearer token; the admin pages
under ``/ui`` (``node.web``) log in with the same token. Errors are RFC 9457
problem bodies (``application/problem+json``) carrying the fedpsy error ``code``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from node.http.secagg_routes import secagg_router
from node.http.signed import read_signed
from node.service import NodeService
from node.web import mount_admin_pages
from schemas import __version__
from schemas.apidocs import serve_docs
from schemas.errors import ErrorCode, FedpsyError
from schemas.problems import install_problem_handlers, problem_response
from schemas.wire import Health, NodeInfo, TaskOutcome


def _outcome_response(outcome: TaskOutcome) -> JSONResponse:
    if outcome.status in ("refused", "rejected"):
        reason = outcome.reason or {"code": ErrorCode.REFUSED.value, "detail": ""}
        exc = FedpsyError(
            reason.get("detail", ""),
            code=ErrorCode(reason.get("code", ErrorCode.REFUSED)),
            extra={"task_id": outcome.task_id, "site": outcome.site},
        )
        return problem_response(exc, f"/v1/tasks/{outcome.task_id}")
    status = 202 if outcome.status == "pending" else 200
    return JSONResponse(outcome.model_dump(mode="json"), status_code=status)


def create_app(service: NodeService, admin_token: str) -> FastAPI:
    """The node application for ``service``."""
    app = FastAPI(
        title=f"fedpsy node {service.site}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="A fedpsy site node: answers signed computation steps through "
        "its privacy gate. No endpoint returns rows.",
    )

    install_problem_handlers(app)
    serve_docs(app)

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        supplied = (authorization or "").removeprefix("Bearer ").strip()
        if not supplied or not hmac.compare_digest(supplied, admin_token):
            raise FedpsyError(
                "send the node's admin token as 'Authorization: Bearer TOKEN' "
                "(it is in DIR/admin_token)",
                code=ErrorCode.UNAUTHORIZED,
            )

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return service.health()

    @app.get("/v1/info", response_model=NodeInfo)
    def info() -> NodeInfo:
        return service.info()

    @app.post(
        "/v1/tasks",
        response_model=TaskOutcome,
        responses={202: {"model": TaskOutcome}, 401: {}, 403: {}, 422: {}},
    )
    async def submit(request: Request) -> JSONResponse:
        key, body = await read_signed(service, request)
        outcome = await run_in_threadpool(service.submit, body, key)
        return _outcome_response(outcome)

    @app.get(
        "/v1/tasks/{task_id}",
        response_model=TaskOutcome,
        responses={202: {"model": TaskOutcome}, 401: {}, 403: {}, 404: {}},
    )
    async def task(task_id: str, request: Request) -> JSONResponse:
        await read_signed(service, request)
        return _outcome_response(await run_in_threadpool(service.outcome, task_id))

    app.include_router(secagg_router(service))

    admin_dep = [Depends(admin)]

    @app.get("/admin/tasks", dependencies=admin_dep)
    def pending() -> list[dict[str, Any]]:
        return service.tasks.pending()

    @app.post("/admin/tasks/{task_id}/approve", dependencies=admin_dep)
    def approve(task_id: str) -> dict[str, Any]:
        return service.decide(task_id, approve=True).model_dump(mode="json")

    @app.post("/admin/tasks/{task_id}/reject", dependencies=admin_dep)
    def reject(task_id: str) -> dict[str, Any]:
        return service.decide(task_id, approve=False).model_dump(mode="json")

    @app.get("/admin/audit", dependencies=admin_dep)
    def audit(verify: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"entries": service.audit.entries(json=True)}
        if verify:
            out["verify"] = service.audit.verify().__dict__
        return out

    mount_admin_pages(app, service, admin_token)
    return app
