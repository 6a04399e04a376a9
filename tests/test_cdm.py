"""The CDM files are declared once (:mod:`schemas.cdm`); every other place that names their
columns agrees with it: the store tables, the ingest specs, the derivations' input frames
and the files ``fedpsy synth`` writes."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import Table, UniqueConstraint

from fedpsy.synth import generate
from fedpsy.synth import writer as synth_writer
from fedpsy.synth.tables import OBSERVATION_COLUMNS
from node import ingest as node_ingest
from node.cdm_variables import derive_all
from node.cdm_variables.frames import FRAME_TABLES, INPUT_COLUMNS, OUTPUT_COLUMNS
from node.cdm_variables.mrs import MRS_VALUE_VARIABLES
from node.cdm_variables.outcomes import EVENT_KINDS as OUTCOME_KINDS
from node.cdm_variables.scales import GIVEN_TOTALS
from node.ingest.files import flat_rules
from node.ingest.tablespec import table_specs
from node.store import tables as t
from schemas import cdm
from schemas.dictionary import load_dictionary

DICT = load_dictionary()
FIXED = [table for table in cdm.TABLES if not table.variable_columns]

# store columns that are the node's own bookkeeping, not CDM columns
INTERNAL = {"row_id", "batch_id", "exposure_id", "cpz_eq_mg", "measure_id", "event_id"}
VOCABULARIES = {
    "region": cdm.REGIONS,
    "metabolite": cdm.METABOLITES,
    "unit": cdm.MRS_UNITS,
    "reference": cdm.MRS_REFERENCES,
    "kind": cdm.EVENT_KINDS,
}


def _store(table: cdm.CdmTable) -> Table:
    return t.metadata.tables[table.table]


def _keys(store: Table) -> list[set[str]]:
    """The column sets of the primary key and of every unique constraint."""
    keys = [{c.name for c in store.primary_key.columns}]
    keys += [
        {c.name for c in constraint.columns}
        for constraint in store.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return keys


def test_tables_are_declared_once_in_load_order() -> None:
    assert cdm.TABLE_FILES == (
        "person",
        "visit",
        "observations",
        "drug_exposure",
        "mrs_measure",
        "event",
    )
    assert [cdm.BY_FILE[name] for name in cdm.TABLE_FILES] == list(cdm.TABLES)
    assert [table.variable_columns for table in cdm.TABLES].count(True) == 1
    for table in cdm.TABLES:
        assert len(set(table.names)) == len(table.names), table.file
        assert set(table.key) <= set(table.names), table.file
        assert sorted(table.required + table.optional) == sorted(table.names), table.file
        assert "person_id" in table.required, table.file
    assert cdm.VISIT.rename == {"visit": "label"}
    assert cdm.VISIT.store_key == ("person_id", "label")
    assert cdm.OBSERVATIONS.store_columns == cdm.LONG_COLUMNS


@pytest.mark.parametrize("table", cdm.TABLES, ids=lambda table: table.file)
def test_store_table_has_every_cdm_column_under_its_store_name(table: cdm.CdmTable) -> None:
    store = _store(table)
    names = [c.name for c in store.columns]
    assert set(table.store_columns) <= set(names)
    assert set(names) - set(table.store_columns) <= INTERNAL
    assert set(table.store_key) in _keys(store)
    if not table.variable_columns:
        for column in table.columns:
            # a column a file must have is never empty in the store, and the reverse
            assert store.c[column.store].nullable is not column.required, column.name


def test_store_counts_the_cdm_tables_in_load_order() -> None:
    assert tuple(table.table for table in cdm.TABLES) == t.CDM_TABLES


def test_ingest_specs_are_the_cdm_tables() -> None:
    specs = table_specs(DICT)
    assert list(specs) == [table.file for table in FIXED]
    for table in FIXED:
        spec = specs[table.file]
        assert spec.name == table.file
        assert spec.table is _store(table)
        assert tuple(spec.required) == table.required
        assert tuple(spec.optional) == table.optional
        assert spec.key == table.key
        assert spec.rename == table.rename
        for column, choices in VOCABULARIES.items():
            if column in spec.columns:
                rule = spec.columns[column]
                assert not rule(pd.Series(list(choices))).bad.any()
                assert rule(pd.Series([c.upper() for c in choices])).values.tolist() == list(
                    choices
                )
                assert rule(pd.Series(["none of these"])).bad.all()


def test_ingest_reads_the_cdm_files() -> None:
    assert node_ingest.TABLE_FILES == cdm.TABLE_FILES
    assert cdm.OBSERVATIONS.file == node_ingest.FLAT
    rules = flat_rules(SimpleNamespace(dictionary=DICT))
    fixed = list(rules)[: len(cdm.OBSERVATIONS.names)]
    assert fixed == list(cdm.OBSERVATIONS.names)
    person_columns = [c for c in cdm.PERSON.names if c not in cdm.PERSON.key]
    assert person_columns == DICT.codes(source="person")
    assert set(GIVEN_TOTALS) <= set(DICT.codes(source="derived"))
    assert set(rules) - set(fixed) == {
        *DICT.codes(source="observation"),
        *person_columns,
        *GIVEN_TOTALS,
    }


def test_derivation_inputs_are_the_cdm_tables_store_columns() -> None:
    frames = list(inspect.signature(derive_all).parameters)[: len(FRAME_TABLES)]
    assert frames == list(FRAME_TABLES)
    assert sorted(FRAME_TABLES.values(), key=cdm.TABLES.index) == list(cdm.TABLES)
    for frame, table in FRAME_TABLES.items():
        assert INPUT_COLUMNS[frame] == table.store_columns
        assert set(INPUT_COLUMNS[frame]) <= {c.name for c in _store(table).columns}
    assert OUTPUT_COLUMNS == cdm.LONG_COLUMNS
    assert "label" in INPUT_COLUMNS["visits"]
    assert set(OUTCOME_KINDS) <= set(cdm.EVENT_KINDS)
    assert {v.split("_")[0] for v in MRS_VALUE_VARIABLES} == {r.lower() for r in cdm.REGIONS}
    assert set(MRS_VALUE_VARIABLES) <= set(DICT.codes(source="derived"))


def test_synth_writes_the_cdm_files(tmp_path: Path) -> None:
    assert {table.file: table.names for table in cdm.TABLES} == synth_writer.TABLES
    fixed = cdm.OBSERVATIONS.names
    assert OBSERVATION_COLUMNS[: len(fixed)] == fixed
    (folder,) = generate(1, 60, 5, tmp_path).values()
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted(cdm.TABLE_FILES)
    for table in cdm.TABLES:
        frame = pd.read_csv(folder / f"{table.file}.csv", dtype=str, keep_default_na=False)
        expected = OBSERVATION_COLUMNS if table.variable_columns else table.names
        assert tuple(frame.columns) == expected, table.file
        for column, choices in VOCABULARIES.items():
            if column in table.names:
                assert set(frame[column]) <= set(choices), (table.file, column)
