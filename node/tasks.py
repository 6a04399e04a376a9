"""Tasks the node has received: their status and what left (or would leave)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from node.store import tables as t
from schemas.errors import ErrorCode
from schemas.receipts import Receipt
from schemas.wire import TaskOutcome

GUARD_KEY = "guard"
"""Key of a pending task's stored row sets for the differencing guard (stays at the node,
never shown as what would leave)."""
RECEIPT_KEY = "receipt"


class TaskStore:
    """The ``task`` table."""

    def __init__(self, engine: Engine, site: str) -> None:
        self._engine = engine
        self._site = site

    def get(self, task_id: str) -> TaskOutcome | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(t.task).where(t.task.c.task_id == task_id)).mappings().first()
        return None if row is None else self._outcome(dict(row))

    def stored_of(self, task_id: str) -> dict[str, Any]:
        """What was stored for the task (what left or would leave, and node-only parts)."""
        with self._engine.connect() as conn:
            raw = conn.execute(select(t.task.c.result).where(t.task.c.task_id == task_id)).scalar()
        return dict(json.loads(raw)) if raw else {}

    def request_of(self, task_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            raw = conn.execute(select(t.task.c.request).where(t.task.c.task_id == task_id)).scalar()
        return None if raw is None else dict(json.loads(raw))

    def save(
        self,
        task_id: str,
        step: str,
        status: str,
        request: dict[str, Any],
        result: dict[str, Any] | None,
        receipt: Receipt | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Store a task (in ``conn``'s transaction, else in its own); an answered one with
        the receipt of what left."""
        if receipt is not None:
            result = (result or {}) | {RECEIPT_KEY: receipt.model_dump(mode="json")}
        if conn is None:
            with self._engine.begin() as own:
                self.save(task_id, step, status, request, result, None, own)
            return
        now = time.time()
        conn.execute(
            insert(t.task).values(
                task_id=task_id,
                step=step,
                status=status,
                request=json.dumps(request),
                result=None if result is None else json.dumps(result),
                created_at=now,
                decided_at=None if status == "pending" else now,
            )
        )

    def decide(self, task_id: str, status: str, conn: Connection | None = None) -> None:
        """Record the site's decision on a pending task (in ``conn``'s transaction, else in
        its own)."""
        if conn is None:
            with self._engine.begin() as own:
                self.decide(task_id, status, own)
            return
        conn.execute(
            update(t.task)
            .where(t.task.c.task_id == task_id)
            .values(status=status, decided_at=time.time())
        )

    def answer(
        self, task_id: str, stored: dict[str, Any], receipt: Receipt, conn: Connection
    ) -> None:
        """Mark an approved task answered, the receipt of what left kept with what was
        ``stored`` for it, in ``conn``'s transaction."""
        result = stored | {RECEIPT_KEY: receipt.model_dump(mode="json")}
        conn.execute(
            update(t.task)
            .where(t.task.c.task_id == task_id)
            .values(status="answered", decided_at=time.time(), result=json.dumps(result))
        )

    def pending(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t.task).where(t.task.c.status == "pending").order_by(t.task.c.created_at)
                )
                .mappings()
                .all()
            )
        return [
            {
                "task_id": r["task_id"],
                "step": r["step"],
                "request": json.loads(r["request"]),
                "would_leave": _shown(r["result"]),
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    def _outcome(self, row: dict[str, Any]) -> TaskOutcome:
        stored = json.loads(row["result"]) if row["result"] else {}
        status = row["status"]
        if status == "answered":
            return TaskOutcome(
                task_id=row["task_id"],
                site=self._site,
                status="answered",
                rows=stored.get("rows"),
                result=stored.get("result"),
                receipt=stored.get(RECEIPT_KEY),
            )
        if status == "refused":
            return TaskOutcome(
                task_id=row["task_id"], site=self._site, status=status, reason=stored.get("reason")
            )
        if status == "rejected":
            return TaskOutcome(
                task_id=row["task_id"],
                site=self._site,
                status=status,
                reason={
                    "code": ErrorCode.APPROVAL_REJECTED.value,
                    "detail": "the site rejected this request",
                },
            )
        return TaskOutcome(task_id=row["task_id"], site=self._site, status="pending")


def _shown(stored: str | None) -> dict[str, Any] | None:
    """A pending task's stored answer without the node-only guard sets."""
    if not stored:
        return None
    return {k: v for k, v in json.loads(stored).items() if k != GUARD_KEY}
