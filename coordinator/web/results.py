"""A job's page (live per-site progress, then tables and plots) and its downloads.

Everything shown or offered for download comes from the job's stored result envelope,
which is what the coordinator received from the sites: a value a site's gate refused never
reached it. Downloads: ``/jobs/{id}/result.json`` (the envelope),
``/jobs/{id}/tables/{name}.csv`` and ``/jobs/{id}/plots/{name}.csv|.json`` (a plot's data).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coordinator.store import jobs, registry
from coordinator.web.overview import when
from coordinator.web.plots import find_plot, plots_for
from coordinator.web.rendering import coordinator, render, secure, web_user
from coordinator.web.tables import find_table, tables_for
from schemas.envelope import Envelope
from schemas.methods import methods_paragraph

router = APIRouter(include_in_schema=False)
User = Annotated[str, Depends(web_user)]
FINISHED = ("ok", "refused", "error")


def _job(request: Request, user: str, job_id: str) -> jobs.Job | None:
    """The job if ``user`` may see it (else None: the page says there is none)."""
    return jobs.get_job(coordinator(request).engine, job_id, viewer=user)


def _json(envelope: Envelope | None) -> dict[str, Any]:
    """An envelope's JSON object, which the tables and plots are made of (``{}``: none)."""
    return {} if envelope is None else envelope.to_dict()


def _download(content: str, media_type: str, filename: str) -> Response:
    return secure(
        Response(
            content,
            media_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    )


def _missing(request: Request, user: str, what: str) -> HTMLResponse:
    return render(request, "missing.html", status_code=404, user=user, page="jobs", what=what)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, user: User, job_id: str) -> HTMLResponse:
    job = _job(request, user, job_id)
    if job is None:
        return _missing(request, user, f"job {job_id}")
    envelope = job["result"] if job["status"] in FINISHED else None
    return render(
        request,
        "job.html",
        user=user,
        page="jobs",
        job=job,
        envelope=envelope,
        finished=envelope is not None,
        created=when(job["created_at"]),
        tables=tables_for(_json(envelope), job["request"]),
        plots=plots_for(_json(envelope), job["request"]),
        methods=_methods(request, job["request"], envelope),
    )


def _methods(request: Request, asked: dict[str, Any], envelope: Envelope | None) -> str | None:
    """A finished job's methods paragraph, with the sites' policies as last seen."""
    if envelope is None or envelope.status != "ok":
        return None
    nodes = registry.list_nodes(coordinator(request).engine)
    return methods_paragraph(asked, envelope, {n.site: n.policy for n in nodes if n.policy})


@router.get("/jobs/{job_id}/result.json")
def result_json(request: Request, user: User, job_id: str) -> Response:
    job = _job(request, user, job_id)
    if job is None or job["result"] is None:
        return _missing(request, user, f"a result of job {job_id}")
    return _download(
        json.dumps(job["result"].to_dict(), indent=2), "application/json", f"fedpsy-{job_id}.json"
    )


@router.get("/jobs/{job_id}/tables/{name}.csv")
def table_csv(request: Request, user: User, job_id: str, name: str) -> Response:
    job = _job(request, user, job_id)
    table = find_table(_json(job["result"]), job["request"], name) if job else None
    if table is None:
        return _missing(request, user, f"table {name} of job {job_id}")
    return _download(table.to_csv(), "text/csv; charset=utf-8", f"fedpsy-{job_id}-{name}.csv")


@router.get("/jobs/{job_id}/plots/{name}.{fmt}")
def plot_data(request: Request, user: User, job_id: str, name: str, fmt: str) -> Response:
    job = _job(request, user, job_id)
    found = find_plot(_json(job["result"]), job["request"], name) if job else None
    if found is None or fmt not in ("csv", "json"):
        return _missing(request, user, f"plot {name} of job {job_id}")
    if fmt == "json":
        return _download(
            json.dumps(found.rows, indent=2), "application/json", f"fedpsy-{job_id}-{name}.json"
        )
    columns: list[str] = []
    for row in found.rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(found.rows)
    return _download(out.getvalue(), "text/csv; charset=utf-8", f"fedpsy-{job_id}-{name}.csv")
