"""What each ingestible table looks like: its columns, their rules and its key.

Which columns a file has, which are required, its key and the store columns it is loaded
into come from :mod:`schemas.cdm`; the rules of each column (patterns, ranges, choices)
are the node's and live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Table

from node.cdm_variables.drugs import load_ddd_table
from node.ingest.rules import (
    ID_PATTERN,
    LABEL_PATTERN,
    Rule,
    choice_rule,
    number_rule,
    pattern_rule,
    variable_rule,
)
from node.store import tables as t
from schemas import cdm
from schemas.dictionary import Dictionary


@dataclass(frozen=True)
class TableSpec:
    """An ingestible table: required and optional columns, key columns, target table."""

    name: str
    table: Table
    required: dict[str, Rule]
    optional: dict[str, Rule] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)  # file column -> table column

    @property
    def columns(self) -> dict[str, Rule]:
        return {**self.required, **self.optional}


def column_rules(dictionary: Dictionary) -> dict[str, dict[str, Rule]]:
    """The rule of every column of every table file, by file name and column."""
    pid = pattern_rule(ID_PATTERN, "person id: 1-64 letters, digits, '.', '_' or '-'")
    visit = pattern_rule(LABEL_PATTERN, "visit label: 1-32 letters, digits, '_' or '-'")
    day = number_rule(integer=True, lo=-36500, hi=36500, required=True)
    var = dictionary.get
    return {
        "person": {
            "person_id": pid,
            **{c: variable_rule(var(c)) for c in ("sex", "birth_year", "primary_diagnosis")},
        },
        "visit": {
            "person_id": pid,
            "visit": visit,
            "day": number_rule(integer=True, lo=-36500, hi=36500),
        },
        "drug_exposure": {
            "person_id": pid,
            "drug": choice_rule(list(load_ddd_table()["drug"]), required=True, fold_case=True),
            "start_day": day,
            "end_day": number_rule(integer=True, lo=-36500, hi=36500),
            "daily_dose_mg": number_rule(lo=0, hi=100000),
            "adherence": number_rule(lo=0, hi=1),
        },
        "mrs_measure": {
            "person_id": pid,
            "visit": visit,
            "region": choice_rule(cdm.REGIONS, required=True, fold_case=True),
            "metabolite": choice_rule(cdm.METABOLITES, required=True, fold_case=True),
            "value": number_rule(lo=0, required=True),
            "unit": choice_rule(cdm.MRS_UNITS, required=True, fold_case=True),
            "reference": choice_rule(cdm.MRS_REFERENCES, required=True, fold_case=True),
            "crlb_pct": number_rule(lo=0, hi=1000),
            "scanner_id": pattern_rule(
                ID_PATTERN, "scanner id: 1-64 letters, digits, '.', '_' or '-'"
            ),
            "field_strength_t": number_rule(lo=0.1, hi=21),
            "te_ms": number_rule(lo=0, hi=1000),
        },
        "event": {
            "person_id": pid,
            "kind": choice_rule(cdm.EVENT_KINDS, required=True, fold_case=True),
            "day": day,
        },
    }


def _spec(table: cdm.CdmTable, rules: Mapping[str, Rule]) -> TableSpec:
    """The spec of ``table``: required columns first, then optional ones, each in file order."""
    unruled = [c for c in table.names if c not in rules]
    unknown = [c for c in rules if c not in table.names]
    if unruled or unknown:
        raise ValueError(
            f"table {table.file}: no rule for column(s) {unruled}, rules for unknown {unknown}"
        )
    return TableSpec(
        table.file,
        t.metadata.tables[table.table],
        {c: rules[c] for c in table.required},
        {c: rules[c] for c in table.optional},
        key=table.key,
        rename=table.rename,
    )


def table_specs(dictionary: Dictionary) -> dict[str, TableSpec]:
    """Specs for every table file (flat observation files are handled separately)."""
    rules = column_rules(dictionary)
    return {
        table.file: _spec(table, rules[table.file])
        for table in cdm.TABLES
        if not table.variable_columns
    }
