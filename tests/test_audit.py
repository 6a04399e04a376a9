"""The hash-chained audit log on both backends: appends chain, verify names the first break."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import Engine, delete, select, update

from node.audit import GENESIS_HASH, Anchor, AuditLog, canonical_json, entry_hash
from node.store.tables import audit_entry


def filled(engine: Engine, n: int = 6) -> AuditLog:
    log = AuditLog(engine)
    for i in range(1, n + 1):
        log.append("request" if i % 2 else "decision", f"task-{i}", {"i": i, "what": "ü"})
    return log


def test_append_chains_entries_from_the_genesis_hash(store_engine: Engine) -> None:
    log = AuditLog(store_engine)
    assert log.head() is None
    assert log.verify().ok and log.verify().checked == 0
    first = log.append("request", "t1", {"b": 2, "a": [1.5, None, "x"]})
    second = log.append("node.start", None, {})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.entry_hash
    payload = '{"a":[1.5,null,"x"],"b":2}'
    expected = "\n".join([GENESIS_HASH, "1", first.at, "request", "t1", payload])
    assert first.entry_hash == hashlib.sha256(expected.encode()).hexdigest()
    with store_engine.connect() as conn:
        assert (
            conn.execute(select(audit_entry.c.payload).where(audit_entry.c.seq == 1)).scalar()
            == payload
        )
    assert log.head() == Anchor(2, second.entry_hash)
    assert log.verify().ok and log.verify().checked == 2


def test_entries_and_json(store_engine: Engine) -> None:
    log = filled(store_engine)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[2].payload == {"i": 3, "what": "ü"}
    as_json = log.entries(since=4, json=True)
    assert [e["seq"] for e in as_json] == [5, 6]
    assert json.loads(json.dumps(as_json)) == as_json
    assert as_json[0]["task_id"] == "task-5" and as_json[0]["payload"]["i"] == 5
    assert [e.seq for e in log.entries(since=1, limit=2)] == [2, 3]


def test_the_api_is_append_only() -> None:
    public = {name for name in dir(AuditLog) if not name.startswith("_")}
    assert public == {"append", "append_all", "entries", "head", "verify"}


def test_bad_kinds_task_ids_and_payloads_are_rejected(store_engine: Engine) -> None:
    log = AuditLog(store_engine)
    for kind in ("Request", "re\nquest", "", "x" * 40):
        with pytest.raises(ValueError):
            log.append(kind, None, {})
    for task_id in ("", "a\nb", "x" * 65):
        with pytest.raises(ValueError):
            log.append("request", task_id, {})
    with pytest.raises(ValueError, match="plain JSON"):
        log.append("request", None, {"x": float("nan")})
    with pytest.raises(ValueError, match="plain JSON"):
        log.append("request", None, {"x": object()})
    assert log.head() is None


def test_verify_catches_an_edited_payload(store_engine: Engine) -> None:
    log = filled(store_engine)
    with store_engine.begin() as conn:
        conn.execute(
            update(audit_entry)
            .where(audit_entry.c.seq == 4)
            .values(payload='{"i":4,"what":"nothing left"}')
        )
    report = log.verify()
    assert (report.ok, report.first_broken_seq, report.checked) == (False, 4, 3)
    assert report.reason is not None and "entry 4" in report.reason


def test_verify_catches_an_edit_with_a_recomputed_hash_at_the_next_entry(
    store_engine: Engine,
) -> None:
    log = filled(store_engine)
    row = log.entries()[2]
    forged = canonical_json({"i": 3, "what": "forged"})
    digest = entry_hash(row.prev_hash, 3, row.at, row.kind, row.task_id, forged)
    with store_engine.begin() as conn:
        conn.execute(
            update(audit_entry)
            .where(audit_entry.c.seq == 3)
            .values(payload=forged, entry_hash=digest)
        )
    report = log.verify()
    assert (report.ok, report.first_broken_seq) == (False, 4)
    assert report.reason is not None and "chain" in report.reason


@pytest.mark.parametrize("gone", [1, 3, 6])
def test_verify_catches_a_deleted_entry(store_engine: Engine, gone: int) -> None:
    log = filled(store_engine)
    anchor = log.head()
    with store_engine.begin() as conn:
        conn.execute(delete(audit_entry).where(audit_entry.c.seq == gone))
    if gone == 6:  # the newest entry: only an anchor kept elsewhere can tell
        assert log.verify().ok
        report = log.verify(anchor=anchor)
    else:
        report = log.verify()
        assert report.reason is not None and f"entry {gone} is missing" in report.reason
    assert (report.ok, report.first_broken_seq, report.checked) == (False, gone, gone - 1)


def test_verify_catches_two_swapped_entries(store_engine: Engine) -> None:
    log = filled(store_engine)
    columns = ("at", "kind", "task_id", "payload", "prev_hash", "entry_hash")
    with store_engine.begin() as conn:
        rows = {
            r.seq: {c: getattr(r, c) for c in columns}
            for r in conn.execute(select(audit_entry).where(audit_entry.c.seq.in_([2, 3])))
        }
        conn.execute(update(audit_entry).where(audit_entry.c.seq == 2).values(**rows[3]))
        conn.execute(update(audit_entry).where(audit_entry.c.seq == 3).values(**rows[2]))
    report = log.verify()
    assert (report.ok, report.first_broken_seq, report.checked) == (False, 2, 1)


def test_swapped_payloads_alone_are_caught_too(store_engine: Engine) -> None:
    log = filled(store_engine)
    with store_engine.begin() as conn:
        p4, p5 = (
            conn.execute(select(audit_entry.c.payload).where(audit_entry.c.seq == s)).scalar_one()
            for s in (4, 5)
        )
        conn.execute(update(audit_entry).where(audit_entry.c.seq == 4).values(payload=p5))
        conn.execute(update(audit_entry).where(audit_entry.c.seq == 5).values(payload=p4))
    assert log.verify().first_broken_seq == 4


def test_an_anchor_catches_a_rewritten_tail(store_engine: Engine) -> None:
    log = filled(store_engine, 3)
    anchor = log.head()
    assert anchor is not None and log.verify(anchor=anchor).ok
    with store_engine.begin() as conn:
        conn.execute(delete(audit_entry).where(audit_entry.c.seq == 3))
    log.append("request", "replacement", {})  # a consistent chain, but not the one we saw
    assert log.verify().ok
    report = log.verify(anchor=anchor)
    assert (report.ok, report.first_broken_seq) == (False, 3)


def test_concurrent_appends_get_consecutive_numbers(store_engine: Engine) -> None:
    log = AuditLog(store_engine)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(8):
                log.append("request", f"w{worker}-{i}", {"worker": worker, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = log.verify()
    assert report.ok and report.checked == 32
    assert sorted(e.task_id or "" for e in log.entries()) == sorted(
        f"w{w}-{i}" for w in range(4) for i in range(8)
    )
