"""The dashboard's "Data quality" page: the latest data-quality report (or a chosen job's)
as completeness heat maps, SMDs per site and the flags, each flag with its suggested
request to open in the builder or run at once; the report and the flags download as CSV,
the whole result as JSON.

Everything shown comes from the job's stored envelope: what the sites' gates let leave.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coordinator.store import jobs
from coordinator.web.overview import when
from coordinator.web.plots_quality import quality_plots
from coordinator.web.rendering import coordinator, render, secure, web_user

router = APIRouter(include_in_schema=False)
User = Annotated[str, Depends(web_user)]
REPORT_COLUMNS = (
    "variable",
    "visit",
    "site",
    "n",
    "completeness",
    "mean",
    "sd",
    "smd",
    "implausible",
    "shares",
    "suppressed",
)
FLAG_COLUMNS = ("site", "variable", "visit", "rule", "value", "threshold", "suggestion")


def _report_job(request: Request, user: str, job_id: str) -> jobs.Job | None:
    """The chosen job if it is a finished data-quality report ``user`` may see, else the
    latest such."""
    engine = coordinator(request).engine
    if job_id:
        found = jobs.get_job(engine, job_id, viewer=user)
        candidates = [found] if found is not None else []
    else:
        candidates = jobs.list_jobs(engine, limit=200, viewer=user)
    for job in candidates:
        envelope = job["result"]
        if job["analysis"] == "data_quality" and envelope is not None and envelope.status == "ok":
            return job
    return None


def _result(job: jobs.Job) -> dict[str, Any]:
    envelope = job["result"]
    assert envelope is not None
    result: dict[str, Any] = envelope.to_dict()["result"]
    return result


def report_rows(result: dict[str, Any]) -> list[list[Any]]:
    """The report in long form, one row per variable, visit and site."""
    rows = []
    for code, visits in result["report"].items():
        for visit, cells in visits.items():
            for site, cell in cells.items():
                shares = cell.get("shares")
                rows.append(
                    [code, visit, site]
                    + [cell.get(c) for c in REPORT_COLUMNS[3:9]]
                    + [json.dumps(shares) if shares is not None else None]
                    + [" ".join(cell.get("suppressed") or [])]
                )
    return rows


def _flags(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for flag in result["flags"]:
        suggestion = flag.get("suggestion")
        builder = (
            "/analyses/new?" + urlencode({"analysis": suggestion["analysis"]})
            if suggestion
            else None
        )
        out.append({**flag, "builder": builder, "request": suggestion})
    return out


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, user: User, job: str = "") -> HTMLResponse:
    found = _report_job(request, user, job)
    result = _result(found) if found is not None else None
    return render(
        request,
        "quality.html",
        user=user,
        page="quality",
        job=found,
        created=when(found["created_at"]) if found is not None else None,
        result=result,
        plots=quality_plots(result, found["request"]) if found and result else [],
        flags=_flags(result) if result else [],
    )


def _csv(columns: tuple[str, ...], rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return secure(Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers))


@router.get("/quality/{job_id}/{name}.csv")
def quality_csv(request: Request, user: User, job_id: str, name: str) -> Response:
    found = _report_job(request, user, job_id)
    if found is None or name not in ("report", "flags"):
        return render(
            request, "missing.html", status_code=404, user=user, page="quality", what=name
        )
    result = _result(found)
    if name == "report":
        return _csv(REPORT_COLUMNS, report_rows(result), f"fedpsy-{job_id}-quality.csv")
    rows = [
        [f[c] if c != "suggestion" else json.dumps(f[c]) for c in FLAG_COLUMNS]
        for f in result["flags"]
    ]
    return _csv(FLAG_COLUMNS, rows, f"fedpsy-{job_id}-flags.csv")
