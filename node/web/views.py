"""What the site admin pages show, read from the node: counts, batches, policy, queue, audit.

Nothing here returns patient rows: the store summary is row counts per table and the
ingest batches' reports (file, hash, rows, outcome); the queue shows each pending task's
request and exactly what would leave if the site approves it (the gated aggregate; masked
when the task uses secure aggregation, with the clear numbers it encodes shown for review
only — those stay at the node).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from node.auth.trust import list_trusted
from node.service import NodeService
from node.status import store_status
from node.store import tables as t

RECENT_BATCHES = 20


def _parsed(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def store_summary(service: NodeService) -> dict[str, Any]:
    """Site identity, rows per table, trusted keys and the latest ingest batches."""
    node = service.node
    status = store_status(node.engine, service.site, node.dictionary.hash)
    b = t.ingest_batch.c
    with node.engine.connect() as conn:
        batches = (
            conn.execute(
                select(
                    b.batch_id,
                    b.file_name,
                    b.sha256,
                    b.table_name,
                    b.rows,
                    b.outcome,
                    b.loaded_at,
                    b.report,
                )
                .order_by(b.batch_id.desc())
                .limit(RECENT_BATCHES)
            )
            .mappings()
            .all()
        )
    return {
        **status,
        "dictionary_version": node.dictionary.version,
        "trusted": [k.fingerprint for k in list_trusted(node.dir.root)],
        "batches": [{**dict(r), "report": _parsed(r["report"])} for r in batches],
    }


@dataclass(frozen=True)
class PendingTask:
    task_id: str
    job_id: str
    analysis: str
    step: str
    visit: str
    cohort: Any
    received: str
    request: dict[str, Any]
    leaving: Any
    review: Any


def pending_tasks(service: NodeService) -> list[PendingTask]:
    out = []
    for task in service.tasks.pending():
        request = task["request"]
        step = request.get("step") or {}
        stored = task["would_leave"] or {}
        out.append(
            PendingTask(
                task_id=task["task_id"],
                job_id=str(request.get("job_id", "")),
                analysis=str(request.get("analysis", "?")),
                step=str(task["step"]),
                visit=str(step.get("visit", "")),
                cohort=step.get("cohort"),
                received=_iso(task["created_at"]),
                request=request,
                leaving={k: v for k, v in stored.items() if k in ("rows", "result")},
                review=stored.get("review"),
            )
        )
    return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def audit_view(service: NodeService, limit: int) -> dict[str, Any]:
    """The newest ``limit`` entries (newest first), the chain's verification and its head."""
    head = service.audit.head()
    since = max(0, head.seq - limit) if head else 0
    entries = service.audit.entries(since=since)
    report = service.audit.verify()
    return {
        "entries": list(reversed(entries)),
        "verify": report,
        "head": head,
        "total": head.seq if head else 0,
    }
