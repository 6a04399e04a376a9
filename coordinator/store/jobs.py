"""Jobs: the request, per-site progress, the result envelope, timings.

A site's progress is a short state the federation reports as it goes (``running STEP``,
``waiting for approval``, ``answered STEP``, ``refused (CODE)``, ``failed (CODE)``); when
the job finishes, its envelope settles every site: a site left out is ``left out (CODE)``,
a site that refused or failed keeps that, and one still marked as busy is ``stopped when
the job ended``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, TypedDict

from sqlalchemy import Engine, insert, select, update

from coordinator.store import tables as t
from schemas.envelope import Envelope
from schemas.errors import CATALOG, EXIT_REFUSED, known_code

BUSY = ("running ", "waiting ")


class Job(TypedDict):
    """A job as the store keeps it: the request, per-site progress, the result envelope
    (``None`` until the job finished), timings."""

    job_id: str
    user: str | None
    analysis: str
    status: str  # queued|running|ok|refused|error
    sites: dict[str, str]
    request: dict[str, Any]
    result: Envelope | None
    created_at: float
    started_at: float | None
    finished_at: float | None


def create_job(engine: Engine, job_id: str, user: str | None, request: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(t.job).values(
                job_id=job_id,
                user_name=user,
                analysis=str(request.get("analysis", "?")),
                request=json.dumps(request),
                status="queued",
                sites="{}",
                created_at=time.time(),
            )
        )


def set_site_status(engine: Engine, job_id: str, site: str, status: str) -> None:
    set_sites_status(engine, job_id, {site: status})


def set_sites_status(engine: Engine, job_id: str, statuses: Mapping[str, str]) -> None:
    """Record the sites' latest statuses; the job is running from the first."""
    with engine.begin() as conn:
        raw = conn.execute(select(t.job.c.sites).where(t.job.c.job_id == job_id)).scalar()
        sites = json.loads(raw or "{}")
        sites.update(statuses)
        conn.execute(
            update(t.job)
            .where(t.job.c.job_id == job_id)
            .values(
                sites=json.dumps(sites),
                status="running",
                started_at=t.job.c.started_at if raw != "{}" else time.time(),
            )
        )


def failure_state(code: str) -> str:
    """A failed site's state: ``refused (CODE)`` when a privacy rule said no, else
    ``failed (CODE)``."""
    known = known_code(code)
    refused = known is not None and CATALOG[known].exit_code == EXIT_REFUSED
    return f"{'refused' if refused else 'failed'} ({code})"


def settled_states(sites: Mapping[str, str], answer: Envelope) -> dict[str, str]:
    """Each site's last state once the job ended with ``answer``."""
    out = dict(sites)
    failed = answer.reason.sites if answer.reason is not None else None
    for site, code in (failed or {}).items():
        out[site] = failure_state(code)
    for site, code in (answer.dropped_sites or {}).items():
        out[site] = f"left out ({code})"
    for site, state in out.items():
        if state.startswith(BUSY):
            out[site] = "stopped when the job ended"
    return out


def finish_job(engine: Engine, job_id: str, envelope: Envelope | Mapping[str, Any]) -> None:
    """Store a job's envelope (an envelope's JSON object is read as one) and settle each
    site's state from it."""
    answer = Envelope.model_validate(envelope)
    with engine.begin() as conn:
        raw = conn.execute(select(t.job.c.sites).where(t.job.c.job_id == job_id)).scalar()
        sites = settled_states(json.loads(raw or "{}"), answer)
        conn.execute(
            update(t.job)
            .where(t.job.c.job_id == job_id)
            .values(
                status=answer.status,
                result=json.dumps(answer.to_dict()),
                sites=json.dumps(sites),
                finished_at=time.time(),
            )
        )


def get_job(engine: Engine, job_id: str) -> Job | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.job).where(t.job.c.job_id == job_id)).mappings().first()
    return None if row is None else _public(dict(row))


def list_jobs(engine: Engine, limit: int = 50) -> list[Job]:
    with engine.connect() as conn:
        rows = (
            conn.execute(select(t.job).order_by(t.job.c.created_at.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [_public(dict(r)) for r in rows]


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it, its envelope as the envelope's JSON object."""
    envelope = job["result"]
    return {**job, "result": None if envelope is None else envelope.to_dict()}


def _public(row: dict[str, Any]) -> Job:
    return {
        "job_id": row["job_id"],
        "user": row["user_name"],
        "analysis": row["analysis"],
        "status": row["status"],
        "sites": json.loads(row["sites"] or "{}"),
        "request": json.loads(row["request"]),
        "result": Envelope.model_validate(json.loads(row["result"])) if row["result"] else None,
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }
