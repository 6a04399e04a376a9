"""Dashboard pages that browse the consortium: overview, variable catalog, job list.
A researcher sees the variables their projects allow and the jobs they may see
(:func:`coordinator.store.jobs.visible_to`).

Person counts (per site, per variable and site) are the rounded, suppressed counts the
nodes released for the catalog (:mod:`coordinator.web.counts`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from coordinator.catalog import Counts, catalog
from coordinator.jobs.scope import visible_variables
from coordinator.store import jobs, registry
from coordinator.store.projects import projects_of
from coordinator.web.counts import cached_counts
from coordinator.web.overview import site_rows, when
from coordinator.web.rendering import coordinator, render, web_user

router = APIRouter(include_in_schema=False)
User = Annotated[str, Depends(web_user)]
TYPES = ("numeric", "integer", "binary", "categorical")


REASON_CHARS = 160


def _reason(job: jobs.Job) -> str:
    """Why a job was refused or failed, in one line (``""`` for the others)."""
    envelope = job["result"]
    reason = envelope.reason if envelope is not None else None
    if reason is None:
        return ""
    text = f"{reason.code}: {reason.detail}" if reason.detail else reason.code
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def job_rows(found: list[jobs.Job]) -> list[dict[str, Any]]:
    """Jobs with readable times, a one-line per-site state and why a job did not end ok."""
    return [
        {
            **j,
            "created": when(j["created_at"]),
            "site_states": ", ".join(f"{s}: {v}" for s, v in sorted(j["sites"].items())),
            "reason": _reason(j),
        }
        for j in found
    ]


def current_catalog(request: Request, user: str, counts: Counts | None = None) -> dict[str, Any]:
    """The catalog of the variables ``user``'s projects allow."""
    engine = coordinator(request).engine
    allowed = visible_variables(projects_of(engine, user))
    return catalog(registry.list_nodes(engine), counts, allowed)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, user: User) -> HTMLResponse:
    cat = current_catalog(request, user, await cached_counts(request))
    engine = coordinator(request).engine
    sites = await site_rows(engine, cat)
    recent = job_rows(jobs.list_jobs(engine, limit=5, viewer=user))
    return render(
        request,
        "overview.html",
        user=user,
        page="overview",
        sites=sites,
        persons=cat["persons"],
        jobs=recent,
        variables=len(cat["variables"]),
    )


@router.get("/catalog", response_class=HTMLResponse)
async def variable_catalog(
    request: Request, user: User, q: str = "", type: str = "", site: str = ""
) -> HTMLResponse:
    cat = current_catalog(request, user, await cached_counts(request))
    needle = q.strip().lower()
    shown = [
        v
        for v in cat["variables"]
        if (not needle or needle in v["code"].lower() or needle in (v["label"] or "").lower())
        and (not type or v["type"] == type)
        and (not site or site in v["sites"])
    ]
    return render(
        request,
        "catalog.html",
        user=user,
        page="catalog",
        sites=cat["sites"],
        variables=shown,
        total=len(cat["variables"]),
        q=q,
        type=type,
        site=site,
        types=TYPES,
    )


@router.get("/jobs", response_class=HTMLResponse)
def job_list(request: Request, user: User) -> HTMLResponse:
    found = job_rows(jobs.list_jobs(coordinator(request).engine, limit=100, viewer=user))
    return render(request, "jobs.html", user=user, page="jobs", jobs=found)
