"""What the site admin pages show, read from the node: counts, batches, policy, queue, audit.

Nothing here returns patient rows: the store summary is row counts per table and the
ingest batches' reports (file, hash, rows, outcome); the queue shows each pending task's
request and exactly what would leave if the site approves it (the gated aggregate; masked
when the task uses secure aggregation, with the clear numbers it encodes shown for review
only — those stay at the node); the audit page names each entry's analysis and shows a
masked contribution by the digest of what left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from node.audit import AuditEntry
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


@dataclass(frozen=True)
class AuditRow:
    """An audit entry as the audit page shows it: with the analysis of its task and, for
    what left, a one-line summary (a masked contribution by its digest)."""

    seq: int
    at: str
    kind: str
    task_id: str | None
    analysis: str
    summary: str
    payload: dict[str, Any]
    project: str | None = None  # who asked, as the coordinator signed it into the task
    researcher: str | None = None


DIGEST_CHARS = 16


def _shown(entry: AuditEntry) -> tuple[str, dict[str, Any]]:
    """The summary line and the payload shown. A masked contribution (a secure sum's
    share) is named by the digest of the masked vector that left; the template of zeros
    the entry keeps (the shape of the answer) is left out of the page, as it reads like
    values. The log itself is unchanged."""
    if entry.kind != "released":
        return "details", entry.payload
    left = entry.payload.get("left")
    if not isinstance(left, dict) or "masked_sha256" not in left:
        return "what left", entry.payload
    masked = str(left["masked_sha256"])
    shown = {**entry.payload, "left": {k: v for k, v in left.items() if k != "template"}}
    return f"what left: masked, digest {masked[:DIGEST_CHARS]}…", shown


def _analyses(service: NodeService, entries: list[AuditEntry]) -> dict[str, str]:
    """The analysis of each task the entries name (from its ``received`` entry, or the
    task store when that entry is older than the page)."""
    found = {
        e.task_id: str(e.payload.get("analysis", ""))
        for e in entries
        if e.kind == "received" and e.task_id
    }
    for task_id in {e.task_id for e in entries if e.task_id} - set(found):
        request = service.tasks.request_of(task_id) or {}
        found[task_id] = str(request.get("analysis", ""))
    return found


def audit_view(service: NodeService, limit: int) -> dict[str, Any]:
    """The newest ``limit`` entries (newest first), the chain's verification and its head."""
    head = service.audit.head()
    since = max(0, head.seq - limit) if head else 0
    entries = service.audit.entries(since=since)
    analyses = _analyses(service, entries)
    rows = [
        AuditRow(
            e.seq,
            e.at,
            e.kind,
            e.task_id,
            analyses.get(e.task_id or "", ""),
            *_shown(e),
            e.project,
            e.researcher,
        )
        for e in reversed(entries)
    ]
    report = service.audit.verify()
    return {"entries": rows, "verify": report, "head": head, "total": head.seq if head else 0}
