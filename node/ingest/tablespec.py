"""What each ingestible table looks like: its columns, their rules and its key."""

from __future__ import annotations

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
from schemas.dictionary import Dictionary

REGIONS = ("dACC", "mPFC", "OCC")
METABOLITES = ("Glu", "Gln", "Glx", "NAA", "GABA")
MRS_UNITS = ("i.u.", "mM", "mmol/kg", "ratio")
EVENT_KINDS = ("relapse", "rehospitalization", "remission")
TABLE_FILES = ("person", "visit", "observations", "drug_exposure", "mrs_measure", "event")
"""Ingest order of the files of a folder as ``fedpsy synth`` writes it."""


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


def table_specs(dictionary: Dictionary) -> dict[str, TableSpec]:
    """Specs for every table file (flat observation files are handled separately)."""
    pid = pattern_rule(ID_PATTERN, "person id: 1-64 letters, digits, '.', '_' or '-'")
    visit = pattern_rule(LABEL_PATTERN, "visit label: 1-32 letters, digits, '_' or '-'")
    day = number_rule(integer=True, lo=-36500, hi=36500, required=True)
    var = dictionary.get
    return {
        "person": TableSpec(
            "person",
            t.person,
            {"person_id": pid},
            {c: variable_rule(var(c)) for c in ("sex", "birth_year", "primary_diagnosis")},
            key=("person_id",),
        ),
        "visit": TableSpec(
            "visit",
            t.visit,
            {"person_id": pid, "visit": visit},
            {"day": number_rule(integer=True, lo=-36500, hi=36500)},
            key=("person_id", "visit"),
            rename={"visit": "label"},
        ),
        "drug_exposure": TableSpec(
            "drug_exposure",
            t.drug_exposure,
            {
                "person_id": pid,
                "drug": choice_rule(list(load_ddd_table()["drug"]), required=True, fold_case=True),
                "start_day": day,
            },
            {
                "end_day": number_rule(integer=True, lo=-36500, hi=36500),
                "daily_dose_mg": number_rule(lo=0, hi=100000),
                "adherence": number_rule(lo=0, hi=1),
            },
            key=("person_id", "drug", "start_day"),
        ),
        "mrs_measure": TableSpec(
            "mrs_measure",
            t.mrs_measure,
            {
                "person_id": pid,
                "visit": visit,
                "region": choice_rule(REGIONS, required=True, fold_case=True),
                "metabolite": choice_rule(METABOLITES, required=True, fold_case=True),
                "value": number_rule(lo=0, required=True),
                "unit": choice_rule(MRS_UNITS, required=True, fold_case=True),
                "reference": choice_rule(("Cr", "water"), required=True, fold_case=True),
                "scanner_id": pattern_rule(
                    ID_PATTERN, "scanner id: 1-64 letters, digits, '.', '_' or '-'"
                ),
            },
            {
                "crlb_pct": number_rule(lo=0, hi=1000),
                "field_strength_t": number_rule(lo=0.1, hi=21),
                "te_ms": number_rule(lo=0, hi=1000),
            },
            key=("person_id", "visit", "region", "metabolite"),
        ),
        "event": TableSpec(
            "event",
            t.event,
            {
                "person_id": pid,
                "kind": choice_rule(EVENT_KINDS, required=True, fold_case=True),
                "day": day,
            },
            key=("person_id", "kind", "day"),
        ),
    }
