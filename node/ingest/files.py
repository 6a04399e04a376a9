"""Loading one file (a table file or a flat observation file) inside the ingest transaction.

Every cell is checked; problems are collected over the whole file (first 20 listed, all
counted) and, if there are any, the caller's transaction is rolled back: the store is left
exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingT
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Table

from node.cdm_variables.drugs import add_cpz
from node.cdm_variables.scales import GIVEN_TOTALS
from node.ingest.context import IngestContext
from node.ingest.mapping import Mapping
from node.ingest.melt import PersonValues, to_long
from node.ingest.persons import PERSON_COLUMNS, Given, check_person_columns, write_person_columns
from node.ingest.problems import Problem, Problems
from node.ingest.reader import check_file, iter_chunks
from node.ingest.rules import ID_PATTERN, LABEL_PATTERN, Rule, pattern_rule, variable_rule
from node.ingest.tablespec import TableSpec
from node.ingest.upsert import insert_new, upsert
from node.store import tables as t
from schemas.cdm import LONG_KEY, OBSERVATIONS, VISIT

DEFAULT_VISIT = "baseline"


@dataclass(frozen=True)
class FileOutcome:
    """What loading one file did."""

    file: str
    table: str
    rows: int
    values: int
    unchanged: bool = False


def _check_columns(
    file: str,
    header: list[str],
    rules: MappingT[str, Rule],
    required: set[str],
    problems: Problems,
    hint: str,
) -> None:
    for col in sorted(required - set(header)):
        problems.add(Problem(file, None, col, None, "required column is missing"))
    for col in header:
        if col not in rules:
            problems.add(Problem(file, None, col, None, f"unknown column; {hint}"))


def _validate(
    file: str, frame: pd.DataFrame, first_row: int, rules: MappingT[str, Rule], problems: Problems
) -> dict[str, pd.Series]:
    parsed: dict[str, pd.Series] = {}
    for col, rule in rules.items():
        if col not in frame.columns:
            continue
        checked = rule(frame[col])
        parsed[col] = checked.values
        bad = np.flatnonzero(checked.bad)
        for idx in bad[:20]:
            problems.add(
                Problem(file, first_row + int(idx), col, str(frame[col].iloc[idx]), checked.rule)
            )
        problems.total += max(len(bad) - 20, 0)
    return parsed


class SeenKeys:
    """The keys of the rows read so far, as 64-bit hashes (one small integer a row, not
    the keys' text); a chunk whose keys are all new is checked without a loop. Two
    different keys share a hash with odds of about rows² / 2⁶⁵: a file refused for a
    duplicate it does not have, never a duplicate let through."""

    def __init__(self) -> None:
        self.hashes: set[int] = set()

    def check(self, file: str, keys: pd.DataFrame, first_row: int, problems: Problems) -> None:
        """Add a problem for each row whose key an earlier row had."""
        text = keys.iloc[:, 0].astype(str)
        for col in keys.columns[1:]:
            text = text + "\x1f" + keys[col].astype(str)
        hashes = pd.util.hash_array(text.to_numpy(dtype=object)).tolist()
        if len(set(hashes)) == len(hashes) and self.hashes.isdisjoint(hashes):
            self.hashes.update(hashes)
            return
        for idx, (digest, key) in enumerate(
            zip(hashes, keys.itertuples(index=False, name=None), strict=True)
        ):
            if digest in self.hashes:
                problems.add(
                    Problem(
                        file,
                        first_row + idx,
                        ", ".join(keys.columns),
                        " / ".join(map(str, key)),
                        "duplicate key",
                    )
                )
            else:
                self.hashes.add(digest)


def load_table_file(
    ctx: IngestContext,
    path: Path,
    spec: TableSpec,
    mapping: Mapping,
    batch_id: int,
    problems: Problems,
) -> FileOutcome:
    file = path.name
    if ctx.written is not None:
        ctx.written.give_up()  # the layer is read back from the store
    header = [mapping.columns.get(c, c) for c in check_file(path)]
    _check_columns(
        file,
        header,
        spec.columns,
        set(spec.required),
        problems,
        f"table {spec.name} has columns {', '.join(spec.columns)}",
    )
    if problems:
        return FileOutcome(file, spec.name, 0, 0)
    seen = SeenKeys()
    rows = 0
    for chunk in iter_chunks(path):
        frame = mapping.apply(chunk.frame)
        parsed = pd.DataFrame(_validate(file, frame, chunk.first_row, spec.columns, problems))
        if "end_day" in parsed and "start_day" in parsed:
            bad = np.flatnonzero((parsed["end_day"] < parsed["start_day"]).to_numpy())
            for idx in bad[:20]:
                problems.add(
                    Problem(
                        file,
                        chunk.first_row + int(idx),
                        "end_day",
                        str(frame["end_day"].iloc[idx]),
                        "end_day >= start_day",
                    )
                )
        if problems:
            ctx.tick(len(frame))
            continue
        seen.check(file, parsed[list(spec.key)], chunk.first_row, problems)
        pids = parsed["person_id"]
        if spec.name == "person":
            fresh = [p for p in pids if p not in ctx.persons]
            ctx.create_persons(fresh, batch_id)
        else:
            ctx.unknown_persons(
                file, ((chunk.first_row + i, p) for i, p in enumerate(pids)), problems
            )
        if problems:
            ctx.tick(len(frame))
            continue
        parsed = parsed.rename(columns=spec.rename)
        if spec.name == "person":
            parsed["row_id"] = [ctx.persons[p] for p in pids]
        if spec.name == "drug_exposure":
            parsed = add_cpz(parsed)
        parsed["batch_id"] = batch_id
        key = tuple(spec.rename.get(k, k) for k in spec.key)
        upsert(ctx.conn, spec.table, parsed, key)
        ctx.touched.update(pids)
        rows += len(parsed)
        ctx.tick(len(frame))
    return FileOutcome(file, spec.name, rows, rows * (len(spec.columns) - len(spec.key)))


def _write(
    ctx: IngestContext, table: Table, rows: pd.DataFrame, key: tuple[str, ...], new: list[str]
) -> None:
    """Insert the rows of the persons ``new`` to the store as new keys, upsert the rest."""
    fresh = rows["person_id"].isin(new).to_numpy()
    if fresh.all():
        insert_new(ctx.conn, table, rows)
        return
    insert_new(ctx.conn, table, rows[fresh])
    upsert(ctx.conn, table, rows[~fresh], key)


def flat_rules(ctx: IngestContext) -> dict[str, Rule]:
    """Rules of a flat file's fixed columns (:data:`schemas.cdm.OBSERVATIONS`), then one per
    person-table column, observation variable and scale total a site may give."""
    fixed: dict[str, Rule] = {
        "person_id": pattern_rule(ID_PATTERN, "person id: 1-64 letters, digits, '.', '_' or '-'"),
        "visit": pattern_rule(
            LABEL_PATTERN, "visit label: 1-32 letters, digits, '_' or '-'", required=False
        ),
    }
    rules = {c: fixed[c] for c in OBSERVATIONS.names}
    for code in (*PERSON_COLUMNS, *ctx.dictionary.codes(source="observation"), *GIVEN_TOTALS):
        rules[code] = variable_rule(ctx.dictionary.get(code))
    return rules


def _flat_hint(ctx: IngestContext, header: list[str], file: str, problems: Problems) -> None:
    for col in header:
        var = ctx.dictionary.variables.get(col)
        if var is not None and var.source == "derived" and col not in GIVEN_TOTALS:
            problems.add(
                Problem(
                    file,
                    None,
                    col,
                    None,
                    "derived variable: it is computed at the node, remove the column "
                    f"(of the derived scores a file may give only {', '.join(GIVEN_TOTALS)})",
                )
            )


def load_flat_file(
    ctx: IngestContext, path: Path, mapping: Mapping, batch_id: int, problems: Problems
) -> FileOutcome:
    file = path.name
    header = [mapping.columns.get(c, c) for c in check_file(path)]
    rules = flat_rules(ctx)
    _flat_hint(ctx, header, file, problems)
    if problems:
        return FileOutcome(file, OBSERVATIONS.table, 0, 0)
    _check_columns(
        file,
        header,
        rules,
        set(OBSERVATIONS.required),
        problems,
        "not a dictionary variable (add it with --dictionary extra.yaml, rename it "
        "with --mapping, or drop it)",
    )
    if problems:
        return FileOutcome(file, OBSERVATIONS.table, 0, 0)
    person_columns = [c for c in header if c in PERSON_COLUMNS]
    variables = [c for c in header if c not in (*OBSERVATIONS.names, *PERSON_COLUMNS)]
    person_level = {c for c in variables if ctx.dictionary.get(c).level == "person"}
    seen = SeenKeys()
    person_values: PersonValues = {}
    given: Given = {}
    rows = values = 0
    for chunk in iter_chunks(path):
        frame = mapping.apply(chunk.frame)
        parsed = _validate(file, frame, chunk.first_row, rules, problems)
        visit = parsed.get("visit")
        visits = (
            visit.fillna(DEFAULT_VISIT)
            if visit is not None
            else pd.Series(DEFAULT_VISIT, index=frame.index)
        )
        keys = pd.DataFrame({"person_id": parsed["person_id"], "visit": visits})
        if not problems:
            seen.check(file, keys, chunk.first_row, problems)
        if problems:
            ctx.tick(len(frame))
            continue
        pids = keys["person_id"].to_numpy(dtype=object)
        long = to_long(
            file,
            pids,
            keys["visit"].to_numpy(dtype=object),
            parsed,
            variables,
            person_level,
            person_values,
            chunk.first_row,
            problems,
        )
        person_rows = check_person_columns(
            ctx, file, keys["person_id"], parsed, person_columns, chunk.first_row, given, problems
        )
        if problems:
            ctx.tick(len(frame))
            continue
        persons = list(dict.fromkeys(pids.tolist()))
        new = [p for p in persons if p not in ctx.persons]
        ctx.create_persons(new, batch_id)
        write_person_columns(ctx, person_rows)
        visits_seen = keys.rename(columns=VISIT.rename).drop_duplicates()
        _write(ctx, t.visit, visits_seen, VISIT.store_key, new)  # day unknown yet
        long["batch_id"] = batch_id
        _write(ctx, t.observation, long, LONG_KEY, new)
        if ctx.written is not None:
            ctx.written.observations(long, ctx.persons)
            ctx.written.visit_rows(visits_seen)
            ctx.written.person_rows(person_rows)
        if ctx.at_hand is not None:
            derived = ctx.at_hand.derive(ctx.conn, new, long, visits_seen, person_rows)
            if ctx.written is not None and derived is not None:
                ctx.written.observations(derived, ctx.persons, derived=True)
            ctx.touched.update(set(persons) - set(new))
        else:
            ctx.touched.update(persons)
        rows += len(frame)
        values += len(long) + sum(int(parsed[c].notna().sum()) for c in person_columns)
        ctx.tick(len(frame))
    return FileOutcome(file, OBSERVATIONS.table, rows, values)
