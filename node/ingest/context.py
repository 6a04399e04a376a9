"""State shared by the files of one ingest transaction: known persons, touched persons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, func, insert, select, update

from node.ingest.derive_at_hand import AtHand
from node.ingest.problems import Problem, Problems
from node.ingest.written import Written
from node.store import tables as t
from schemas.dictionary import Dictionary

Progress = Callable[[int], None]


@dataclass
class IngestContext:
    """One ingest transaction."""

    conn: Connection
    dictionary: Dictionary
    progress: Progress | None = None
    persons: dict[str, int] = field(default_factory=dict)
    next_row_id: int = 1
    touched: set[str] = field(default_factory=set)
    """Persons whose derived variables are recomputed from the store at the end."""
    at_hand: AtHand | None = None
    """Persons derived during the load from the values at hand (None: no derivation)."""
    written: Written | None = None
    """The rows written, when the store held no person before (for the columnar layer)."""

    @classmethod
    def open(
        cls, conn: Connection, dictionary: Dictionary, progress: Progress | None = None
    ) -> IngestContext:
        rows = conn.execute(select(t.person.c.person_id, t.person.c.row_id)).all()
        persons = {pid: rid for pid, rid in rows}
        top = max(persons.values(), default=0)
        return cls(conn, dictionary, progress, persons, top + 1)

    def unknown_persons(
        self, file: str, ids: Iterable[tuple[int, str]], problems: Problems
    ) -> None:
        """Record a problem for each row naming a person the store does not hold."""
        for row, pid in ids:
            if pid not in self.persons:
                problems.add(
                    Problem(
                        file,
                        row,
                        "person_id",
                        pid,
                        "unknown person: load the person file (or a flat file "
                        "naming the person) first",
                    )
                )

    def create_persons(self, ids: Iterable[str], batch_id: int) -> None:
        """Create persons seen for the first time (sex and birth year unknown)."""
        new = []
        for pid in ids:
            if pid not in self.persons:
                self.persons[pid] = self.next_row_id
                new.append({"person_id": pid, "row_id": self.next_row_id, "batch_id": batch_id})
                self.next_row_id += 1
        for start in range(0, len(new), 5000):
            self.conn.execute(insert(t.person), new[start : start + 5000])

    def find_batch(self, sha256: str, table_name: str) -> int | None:
        row = self.conn.execute(
            select(t.ingest_batch.c.batch_id).where(
                t.ingest_batch.c.sha256 == sha256,
                t.ingest_batch.c.table_name == table_name,
                t.ingest_batch.c.outcome == "loaded",
            )
        ).first()
        return None if row is None else int(row[0])

    def start_batch(self, file_name: str, sha256: str, table_name: str) -> int:
        next_id = (self.conn.execute(select(func.max(t.ingest_batch.c.batch_id))).scalar() or 0) + 1
        self.conn.execute(
            insert(t.ingest_batch).values(
                batch_id=next_id,
                file_name=file_name,
                sha256=sha256,
                table_name=table_name,
                rows=0,
                outcome="loading",
                loaded_at=now_iso(),
                report="",
            )
        )
        return int(next_id)

    def finish_batch(self, batch_id: int, rows: int, report: str) -> None:
        self.conn.execute(
            update(t.ingest_batch)
            .where(t.ingest_batch.c.batch_id == batch_id)
            .values(rows=rows, outcome="loaded", report=report)
        )

    def tick(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
