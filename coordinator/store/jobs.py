"""Jobs: the request, per-site progress, the result envelope, timings."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Engine, insert, select, update

from coordinator.store import tables as t


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
    with engine.begin() as conn:
        raw = conn.execute(select(t.job.c.sites).where(t.job.c.job_id == job_id)).scalar()
        sites = json.loads(raw or "{}")
        sites[site] = status
        conn.execute(
            update(t.job)
            .where(t.job.c.job_id == job_id)
            .values(
                sites=json.dumps(sites),
                status="running",
                started_at=t.job.c.started_at if raw != "{}" else time.time(),
            )
        )


def finish_job(engine: Engine, job_id: str, envelope: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(t.job)
            .where(t.job.c.job_id == job_id)
            .values(status=envelope["status"], result=json.dumps(envelope), finished_at=time.time())
        )


def get_job(engine: Engine, job_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.job).where(t.job.c.job_id == job_id)).mappings().first()
    return None if row is None else _public(dict(row))


def list_jobs(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = (
            conn.execute(select(t.job).order_by(t.job.c.created_at.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [_public(dict(r)) for r in rows]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": row["job_id"],
        "user": row["user_name"],
        "analysis": row["analysis"],
        "status": row["status"],
        "sites": json.loads(row["sites"] or "{}"),
        "request": json.loads(row["request"]),
        "result": json.loads(row["result"]) if row["result"] else None,
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }
