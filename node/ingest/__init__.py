"""Ingestion: validated, all-or-nothing loading of CSV/Parquet files into the node store.

``ingest`` loads one file, or a folder as ``fedpsy synth`` writes it (person first, every
file in one transaction). One bad cell rejects everything with a report naming file, row,
column, value and rule; the store is unchanged. A file already loaded (same sha256, same
table) is skipped and reported as unchanged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from node.data.columnar import store_version
from node.data.layer_at_hand import StoreContent
from node.ingest.context import IngestContext, Progress
from node.ingest.derive_at_hand import AtHand, site_has_drug_rows
from node.ingest.files import FileOutcome, load_flat_file, load_table_file
from node.ingest.mapping import Mapping
from node.ingest.problems import Problems, fail
from node.ingest.reader import count_rows, sha256_of
from node.ingest.rederive import rederive
from node.ingest.tablespec import table_specs
from node.ingest.written import Written
from node.store import tables as t
from schemas.cdm import OBSERVATIONS, TABLE_FILES
from schemas.dictionary import Dictionary

log = logging.getLogger(__name__)
SUFFIXES = (".csv", ".parquet")
FLAT = OBSERVATIONS.file


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    files: list[FileOutcome] = field(default_factory=list)
    derived_values: int = 0
    warnings: tuple[str, ...] = ()
    """Given scale totals that disagree with their complete items (which win)."""
    content: StoreContent | None = None
    """The store's whole content after a load into a store without persons, at hand for
    the columnar layer (:func:`node.data.layer_at_hand.write_layers`); None otherwise."""

    @property
    def unchanged(self) -> bool:
        return all(f.unchanged for f in self.files)

    def as_dict(self) -> dict[str, object]:
        return {
            "files": [f.__dict__ for f in self.files],
            "derived_values": self.derived_values,
            "warnings": list(self.warnings),
        }


def files_to_load(path: Path, table: str | None) -> list[tuple[Path, str]]:
    """(file, table) pairs in load order; a folder holds files named after their tables."""
    if path.is_dir():
        if table is not None:
            raise fail(str(path), "--table applies to a single file, not a folder")
        found = {p.stem: p for p in path.iterdir() if p.suffix.lower() in SUFFIXES}
        unknown = sorted(set(found) - set(TABLE_FILES))
        if unknown:
            raise fail(
                str(path),
                f"unexpected file(s) {', '.join(unknown)}; a folder holds "
                f"{', '.join(n + '.csv' for n in TABLE_FILES)}",
            )
        if not found:
            raise fail(str(path), "no .csv or .parquet files in the folder")
        return [(found[name], name) for name in TABLE_FILES if name in found]
    if not path.exists():
        raise fail(str(path), "file not found")
    if path.suffix.lower() not in SUFFIXES:
        raise fail(path.name, "unsupported file type; use .csv or .parquet")
    if table is None:
        table = path.stem if path.stem in TABLE_FILES else FLAT
    if table == OBSERVATIONS.table:
        table = FLAT
    if table not in TABLE_FILES:
        raise fail(path.name, f"unknown table {table!r}; use one of {', '.join(TABLE_FILES)}")
    return [(path, table)]


def _batches(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.ingest_batch)).scalar() or 0)


def total_rows(plan: list[tuple[Path, str]]) -> int:
    return sum(count_rows(p) for p, _ in plan)


def ingest(
    engine: Engine,
    dictionary: Dictionary,
    path: Path,
    table: str | None = None,
    mapping: Mapping | None = None,
    progress: Progress | None = None,
    derive: bool = True,
) -> IngestReport:
    """Load ``path`` (file or folder) in one transaction; raise and roll back on any problem.

    ``derive=False`` skips recomputing derived variables (benchmarks measure it apart).
    """
    plan = files_to_load(path, table)
    mapping = mapping or Mapping()
    specs = table_specs(dictionary)
    report = IngestReport()
    with engine.begin() as conn:
        ctx = IngestContext.open(conn, dictionary, progress)
        batches = _batches(conn)
        if not ctx.persons:
            ctx.written = Written()
        if derive:
            codes = frozenset(dictionary.codes(source="derived"))
            ctx.at_hand = AtHand(codes, site_has_drug_rows(conn))
        for file, name in plan:
            digest = sha256_of(file)
            if ctx.find_batch(digest, name) is not None:
                report.files.append(FileOutcome(file.name, name, 0, 0, unchanged=True))
                ctx.tick(count_rows(file))
                continue
            batch_id = ctx.start_batch(file.name, digest, name)
            problems = Problems()
            if name == FLAT:
                outcome = load_flat_file(ctx, file, mapping, batch_id, problems)
            else:
                outcome = load_table_file(ctx, file, specs[name], mapping, batch_id, problems)
            if problems:
                raise problems.error()  # leaving the with-block rolls everything back
            ctx.finish_batch(batch_id, outcome.rows, json.dumps(outcome.__dict__))
            report.files.append(outcome)
        if derive:
            total = conn.execute(select(func.count()).select_from(t.person)).scalar() or 0
            written = None if ctx.written is None else (ctx.written, ctx.persons)
            rederived = rederive(conn, dictionary, ctx.touched, int(total), ctx.at_hand, written)
            report.derived_values, report.warnings = rederived.values, rederived.warnings
        loaded = sum(not f.unchanged for f in report.files)
        if ctx.written is not None and ctx.written.complete and _batches(conn) == batches + loaded:
            # no other writer's batch in between: the store holds exactly what was written
            report.content = ctx.written.content(store_version(conn), ctx.persons)
    log.info("ingest finished", extra={"files": len(report.files)})
    return report
