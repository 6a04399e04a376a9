"""The researcher API of a running coordinator (FastAPI).

Every ``/v1`` endpoint needs a researcher token (``Authorization: Bearer TOKEN``, created
with ``fedpsy coordinator add-user``; the dashboard's login cookie also works).
``POST /v1/analyses`` queues a job and returns its id (or, with ``?wait=true``, the result
envelope); ``GET /v1/analyses/{id}`` shows its per-site progress and result. The dashboard
(``coordinator.web``) is served by the same application.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

import httpx
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse

from coordinator.catalog import catalog, site_counts
from coordinator.federation.mailbox import Mailbox
from coordinator.http.pull_api import pull_router
from coordinator.service import Coordinator
from coordinator.store import jobs, models, registry
from coordinator.store.projects import projects_of
from coordinator.web.app import mount_dashboard
from coordinator.web.session import request_token
from schemas import __version__
from schemas.apidocs import serve_docs
from schemas.errors import ErrorCode, FedpsyError
from schemas.problems import install_problem_handlers

CATALOG_TTL_S = 600.0


def researcher(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The researcher a bearer token (or the dashboard's cookie) belongs to (401 otherwise)."""
    token = request_token(request, authorization)
    coordinator: Coordinator = request.app.state.coordinator
    return registry.user_for_token(coordinator.engine, token)


User = Annotated[str, Depends(researcher)]


def create_app(coordinator: Coordinator) -> FastAPI:
    app = FastAPI(
        title="fedpsy coordinator",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Researcher API: submit analyses, follow jobs, browse the "
        "catalog. Only aggregates that every site allowed are shown.",
    )
    app.state.coordinator = coordinator
    app.state.catalog_counts = None
    mount_dashboard(app)
    app.include_router(pull_router(Mailbox(coordinator.engine)))  # nodes that poll
    running: set[asyncio.Task[Any]] = set()

    install_problem_handlers(app)
    serve_docs(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post("/v1/analyses", status_code=202)
    async def submit(
        user: User, request: Annotated[dict[str, Any], Body()], wait: bool = False
    ) -> JSONResponse:
        coordinator.authorize(request, user)  # forbidden (403) before anything is queued
        job_id = uuid.uuid4().hex
        await asyncio.to_thread(jobs.create_job, coordinator.engine, job_id, user, request)
        if wait:
            result = await coordinator.run(request, user, job_id)
            return JSONResponse(result.to_dict(), status_code=200)
        task = asyncio.create_task(coordinator.run(request, user, job_id))
        running.add(task)
        task.add_done_callback(running.discard)
        return JSONResponse({"job_id": job_id, "status": "queued"}, status_code=202)

    @app.get("/v1/analyses")
    def job_list(user: User) -> list[dict[str, Any]]:
        return [jobs.job_json(j) for j in jobs.list_jobs(coordinator.engine)]

    @app.get("/v1/analyses/{job_id}")
    def job(user: User, job_id: str) -> dict[str, Any]:
        found = jobs.get_job(coordinator.engine, job_id)
        if found is None:
            raise FedpsyError(f"no job {job_id!r}", code=ErrorCode.NOT_FOUND)
        return jobs.job_json(found)

    @app.get("/v1/keys")
    def keys() -> dict[str, Any]:
        """Public keys, for checking results (``fedpsy verify``): the coordinator's and
        the one pinned for each site. No token needed: they are public."""
        return {
            "coordinator": coordinator.dir.public_key.read_text(encoding="ascii"),
            "sites": {n.site: n.public_key for n in registry.list_nodes(coordinator.engine)},
        }

    @app.get("/v1/projects")
    def my_projects(user: User) -> list[dict[str, Any]]:
        """The researcher's projects and what each allows."""
        return [p.to_dict() for p in projects_of(coordinator.engine, user)]

    @app.get("/v1/models")
    def model_list(user: User, limit: int = 100) -> list[dict[str, Any]]:
        return models.list_models(coordinator.engine, max(1, min(limit, 1000)))

    @app.get("/v1/models/{model_id}")
    def model(user: User, model_id: str) -> dict[str, Any]:
        return models.get_model(coordinator.engine, model_id)

    @app.get("/v1/nodes")
    def nodes(user: User) -> list[dict[str, Any]]:
        return [
            {
                "site": n.site,
                "url": n.url,
                "mode": n.mode,
                "fingerprint": n.fingerprint,
                "dictionary_hash": n.dictionary_hash,
                "last_seen": n.last_seen,
                "policy": n.policy,
            }
            for n in registry.list_nodes(coordinator.engine)
        ]

    @app.get("/v1/catalog")
    async def variables(user: User, counts: bool = True) -> dict[str, Any]:
        nodes = registry.list_nodes(coordinator.engine)
        if not counts:
            return catalog(nodes)
        cached = app.state.catalog_counts
        if cached is None or time.monotonic() - cached[0] > CATALOG_TTL_S:
            async with httpx.AsyncClient() as client:
                cached = (time.monotonic(), await site_counts(coordinator.key, nodes, client))
            app.state.catalog_counts = cached
        return catalog(nodes, cached[1])

    return app
