"""After a restart: jobs the previous coordinator process left unfinished.

A job's progress lives in memory while it runs (the steps in flight, the partial sums), so
a job that was ``queued`` or ``running`` when the coordinator process stopped cannot be
continued where it was. On start, ``fedpsy coordinator serve`` finishes every such job as
an ``error`` with code ``job_interrupted``, naming what each site was doing, so that a
researcher polling it gets a clear answer instead of a job that runs forever. Nothing is
applied twice at a node: a node answers each task once (by task id) and keeps its audit
entries; the researcher submits the request again as a new job.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import Engine, select

from coordinator.jobs.runner import envelope
from coordinator.store import jobs
from coordinator.store import tables as t
from schemas.envelope import FailureReason
from schemas.errors import ErrorCode

log = logging.getLogger(__name__)
UNFINISHED = ("queued", "running")


def fail_interrupted_jobs(engine: Engine) -> list[str]:
    """Finish every queued or running job as ``job_interrupted``; returns their ids."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.job.c.job_id, t.job.c.analysis, t.job.c.status, t.job.c.sites).where(
                t.job.c.status.in_(UNFINISHED)
            )
        ).all()
    finished = []
    for job_id, analysis, status, sites_json in rows:
        sites: dict[str, str] = json.loads(sites_json or "{}")
        where = ", ".join(f"{s}: {v}" for s, v in sorted(sites.items())) or "no site asked yet"
        detail = (
            f"the coordinator stopped while this job was {status} ({where}); nothing "
            "of it was kept. Submit the request again."
        )
        result = envelope(
            "error",
            analysis,
            job_id,
            reason=FailureReason(code=ErrorCode.JOB_INTERRUPTED, detail=detail),
        )
        jobs.finish_job(engine, job_id, result)
        log.warning("job interrupted by a restart", extra={"job_id": job_id, "was": status})
        finished.append(str(job_id))
    return finished
