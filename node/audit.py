"""The node's audit log: append-only and hash-chained, in the ``audit_entry`` table.

Every request, decision and exactly what left the node is appended as one entry. Entry
``seq`` (1, 2, …) stores the hash of entry ``seq-1`` (64 zeros for the first) and its own
hash::

    entry_hash = sha256(prev_hash \\n seq \\n at \\n kind \\n task_id \\n payload)

where ``payload`` is the canonical JSON text stored in the row (sorted keys, no spaces,
UTF-8) and a missing ``task_id`` is the empty string. ``kind`` and ``task_id`` cannot
hold a newline and the other fields have fixed formats, so the encoding is unambiguous.
This is the hash chain of Schneier and Kelsey (*Secure audit logs to support computer
forensics*, ACM TISSEC 2(2), 1999) without the evolving MAC key.

:meth:`AuditLog.verify` walks the chain and names the first entry that is wrong: an
edited entry fails its own hash; a deleted entry leaves a gap in ``seq``; entries moved
to other positions fail their hash (``seq`` is hashed) or break the chain. What a chain
alone cannot show is a rewrite of the whole tail with fresh hashes, or deleting the
newest entries: keep a copy of :meth:`AuditLog.head` elsewhere (the node's admin page
and ``fedpsy node audit`` print it) and pass it back as ``anchor`` to detect both.

The class has no update or delete: the log only grows. Appends take the table's write
lock before reading the newest entry (``node.store.locking``), so concurrent appends from the
API and the CLI get consecutive numbers and a consistent chain.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from sqlalchemy import Connection, Engine, Row, insert, select

from node.store.locking import locked
from node.store.tables import audit_entry

GENESIS_HASH = "0" * 64
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
TASK_ID_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
PAGE = 1000


def canonical_json(payload: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 kept, NaN/inf refused."""
    try:
        return jsonlib.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit payload is not plain JSON: {exc}") from exc


def entry_hash(
    prev_hash: str, seq: int, at: str, kind: str, task_id: str | None, payload_json: str
) -> str:
    """The hash an entry with these fields must carry."""
    fields = (prev_hash, str(seq), at, kind, task_id or "", payload_json)
    return hashlib.sha256("\n".join(fields).encode("utf-8")).hexdigest()


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds (27 characters)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """An entry to append: its kind and payload."""

    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    """One entry as stored (``payload`` parsed from its canonical JSON)."""

    seq: int
    at: str
    kind: str
    task_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str
    project: str | None = None
    researcher: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Asker:
    """Who a task came from, as the coordinator signed it into the task."""

    project: str | None
    researcher: str | None

    def payload(self) -> dict[str, str | None]:
        return {"project": self.project, "researcher": self.researcher}


def _asker_of(row: Row[Any]) -> tuple[str | None, str | None]:
    """The (project, researcher) an entry's hashed payload names (its columns must agree)."""
    payload = jsonlib.loads(row.payload)
    return (payload.get("project"), payload.get("researcher"))


@dataclass(frozen=True)
class Anchor:
    """A remembered (seq, entry_hash) of the log, kept outside the store."""

    seq: int
    entry_hash: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`AuditLog.verify`.

    ``checked``: entries found intact before the first broken one (all when ``ok``);
    ``first_broken_seq``: the first ``seq`` that is wrong or missing; ``reason``: why.
    """

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


class AuditLog:
    """The append-only audit log of one node store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(
        self,
        kind: str,
        task_id: str | None,
        payload: dict[str, Any],
        asker: Asker | None = None,
        conn: Connection | None = None,
    ) -> AuditEntry:
        """Add an entry after the newest one and return it. ``asker``: the project and
        researcher a task came from; they go into the hashed payload and their own columns.
        ``conn``: a transaction holding the table's lock (:func:`locked`) to append in,
        with what else it writes; else the entry is a transaction of its own."""
        if conn is None:
            with locked(self._engine, audit_entry) as own:
                return self.append(kind, task_id, payload, asker, own)
        if asker is not None:
            payload = {**payload, **asker.payload()}
        if not KIND_PATTERN.fullmatch(kind):
            raise ValueError(f"audit kind {kind!r} must match {KIND_PATTERN.pattern}")
        if task_id is not None and not TASK_ID_PATTERN.fullmatch(task_id):
            raise ValueError("audit task_id must be 1-64 printable characters")
        payload_json = canonical_json(payload)
        last = conn.execute(
            select(audit_entry.c.seq, audit_entry.c.entry_hash)
            .order_by(audit_entry.c.seq.desc())
            .limit(1)
        ).first()
        seq, prev = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.entry_hash)
        at = utc_now()
        digest = entry_hash(prev, seq, at, kind, task_id, payload_json)
        who = (None, None) if asker is None else (asker.project, asker.researcher)
        conn.execute(
            insert(audit_entry).values(
                seq=seq,
                at=at,
                kind=kind,
                task_id=task_id,
                payload=payload_json,
                prev_hash=prev,
                entry_hash=digest,
                project=who[0],
                researcher=who[1],
            )
        )
        return AuditEntry(seq, at, kind, task_id, jsonlib.loads(payload_json), prev, digest, *who)

    def append_all(
        self,
        entries: list[Entry],
        task_id: str | None,
        asker: Asker | None = None,
        conn: Connection | None = None,
    ) -> list[AuditEntry]:
        """:meth:`append` each of ``entries`` in order, in one transaction (``conn``'s,
        else its own)."""
        if conn is None:
            with locked(self._engine, audit_entry) as own:
                return self.append_all(entries, task_id, asker, own)
        return [self.append(e.kind, task_id, e.payload, asker, conn) for e in entries]

    def head(self) -> Anchor | None:
        """The newest entry's (seq, hash); None while the log is empty."""
        with self._engine.connect() as conn:
            last = conn.execute(
                select(audit_entry.c.seq, audit_entry.c.entry_hash)
                .order_by(audit_entry.c.seq.desc())
                .limit(1)
            ).first()
        return None if last is None else Anchor(last.seq, last.entry_hash)

    def _rows(self, since: int = 0) -> Iterator[Row[Any]]:
        """Rows in ``seq`` order after ``since``, read a page at a time."""
        while True:
            with self._engine.connect() as conn:
                page = conn.execute(
                    select(audit_entry)
                    .where(audit_entry.c.seq > since)
                    .order_by(audit_entry.c.seq)
                    .limit(PAGE)
                ).all()
            yield from page
            if len(page) < PAGE:
                return
            since = page[-1].seq

    def verify(self, anchor: Anchor | None = None) -> VerifyReport:
        """Walk the chain from the first entry; report the first entry that is wrong.

        With ``anchor`` (an earlier :meth:`head`), also require that entry to be present
        with the same hash, which catches deleted or rewritten newest entries.
        """
        expected, prev, checked = 1, GENESIS_HASH, 0
        for row in self._rows():
            if row.seq != expected:
                why = f"entry {expected} is missing (the next entry is {row.seq})"
                return VerifyReport(False, checked, expected, why)
            if row.prev_hash != prev:
                why = f"entry {row.seq} does not follow entry {row.seq - 1} (chain broken)"
                return VerifyReport(False, checked, row.seq, why)
            stored = (row.prev_hash, row.seq, row.at, row.kind, row.task_id, row.payload)
            if entry_hash(*stored) != row.entry_hash:
                why = f"entry {row.seq} does not match its hash (edited or moved)"
                return VerifyReport(False, checked, row.seq, why)
            if _asker_of(row) != (row.project, row.researcher):
                why = f"entry {row.seq}: project or researcher differ from its hashed payload"
                return VerifyReport(False, checked, row.seq, why)
            if anchor is not None and row.seq == anchor.seq and row.entry_hash != anchor.entry_hash:
                why = f"entry {row.seq} differs from the anchor kept outside the store"
                return VerifyReport(False, checked, row.seq, why)
            prev, expected, checked = row.entry_hash, expected + 1, checked + 1
        if anchor is not None and anchor.seq >= expected:
            why = f"the log ends at entry {expected - 1} but the anchor names entry {anchor.seq}"
            return VerifyReport(False, checked, expected, why)
        return VerifyReport(True, checked)

    @overload
    def entries(
        self, *, since: int = 0, limit: int | None = None, json: Literal[False] = False
    ) -> list[AuditEntry]: ...

    @overload
    def entries(
        self, *, since: int = 0, limit: int | None = None, json: Literal[True]
    ) -> list[dict[str, Any]]: ...

    def entries(
        self, *, since: int = 0, limit: int | None = None, json: bool = False
    ) -> list[AuditEntry] | list[dict[str, Any]]:
        """Entries after ``since`` in order (at most ``limit``); plain dicts with ``json``."""
        found: list[AuditEntry] = []
        for row in self._rows(since):
            if limit is not None and len(found) >= limit:
                break
            found.append(
                AuditEntry(
                    row.seq,
                    row.at,
                    row.kind,
                    row.task_id,
                    jsonlib.loads(row.payload),
                    row.prev_hash,
                    row.entry_hash,
                    row.project,
                    row.researcher,
                )
            )
        if json:
            return [entry.to_json() for entry in found]
        return found
