"""The common data model's files, declared once: what a site loads and ``fedpsy synth`` writes.

Each :class:`CdmTable` is one ingest file (``<file>.csv`` or ``.parquet``): its columns in
file order, which of them a file must have, the columns that key a row, and the store
table and column each file column lands in (the visit file's ``visit`` is the store's
``label``). The flat observation file is the one open table: ``person_id`` and an
optional ``visit``, then one column per dictionary variable; the store keeps its values as
LONG rows (:data:`LONG_COLUMNS`). The controlled vocabularies of the MRS and event files
are here too.

What derives from this module: the node's ingest rules per column (``node.ingest``), the
input frames of the derivations (``node.cdm_variables.frames``) and the files of
``fedpsy synth``; the store's SQLAlchemy tables (``node.store.tables``) carry types and
internal columns and are checked against it by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

REGIONS: tuple[str, ...] = ("dACC", "mPFC", "OCC")
"""MRS voxel regions: dorsal anterior cingulate, medial prefrontal, occipital cortex."""

METABOLITES: tuple[str, ...] = ("Glu", "Gln", "Glx", "NAA", "GABA")
"""MRS metabolites (Glx is Glu + Gln)."""

MRS_UNITS: tuple[str, ...] = ("i.u.", "mM", "mmol/kg", "ratio")
"""Units of an MRS value (institutional units, concentrations, a ratio to the reference)."""

MRS_REFERENCES: tuple[str, ...] = ("Cr", "water")
"""What an MRS value is referenced to."""

EVENT_KINDS: tuple[str, ...] = ("relapse", "rehospitalization", "remission")
"""Kinds of dated events."""

LONG_COLUMNS: tuple[str, ...] = ("person_id", "visit", "variable", "value_num", "value_text")
"""The store's observation rows: one value per person, visit and variable (missing = absent)."""

LONG_KEY: tuple[str, ...] = ("person_id", "visit", "variable")
"""What keys a LONG observation row."""


@dataclass(frozen=True)
class CdmColumn:
    """A file column: whether a file must have it and the store column it is loaded into."""

    name: str
    required: bool = True
    stored_as: str | None = None
    """The store column when it is named differently (``None``: the same name)."""

    @property
    def store(self) -> str:
        """The store column this file column is loaded into."""
        return self.stored_as or self.name


@dataclass(frozen=True)
class CdmTable:
    """One ingest file and the store table it loads into.

    ``columns`` are the fixed file columns in file order; ``key`` names the file columns
    that identify a row. A table with ``variable_columns`` (the flat observation file)
    takes one further column per dictionary variable and is stored as LONG rows.
    """

    file: str
    table: str
    columns: tuple[CdmColumn, ...]
    key: tuple[str, ...]
    variable_columns: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The fixed file columns, in file order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """The file columns a file must have, in file order."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        """The file columns a file may leave out, in file order."""
        return tuple(c.name for c in self.columns if not c.required)

    @property
    def rename(self) -> dict[str, str]:
        """File column -> store column, for the columns named differently in the store."""
        return {c.name: c.store for c in self.columns if c.store != c.name}

    @property
    def store_columns(self) -> tuple[str, ...]:
        """The store table's CDM columns, in file order (LONG rows for variable columns)."""
        if self.variable_columns:
            return LONG_COLUMNS
        return tuple(c.store for c in self.columns)

    @property
    def store_key(self) -> tuple[str, ...]:
        """The store columns that key a row."""
        if self.variable_columns:
            return LONG_KEY
        stored = {c.name: c.store for c in self.columns}
        return tuple(stored[k] for k in self.key)


def _optional(name: str) -> CdmColumn:
    return CdmColumn(name, required=False)


PERSON = CdmTable(
    file="person",
    table="person",
    columns=(
        CdmColumn("person_id"),
        _optional("sex"),
        _optional("birth_year"),
        _optional("primary_diagnosis"),
    ),
    key=("person_id",),
)

VISIT = CdmTable(
    file="visit",
    table="visit",
    columns=(CdmColumn("person_id"), CdmColumn("visit", stored_as="label"), _optional("day")),
    key=("person_id", "visit"),
)

OBSERVATIONS = CdmTable(
    file="observations",
    table="observation",
    columns=(CdmColumn("person_id"), _optional("visit")),
    key=("person_id", "visit"),
    variable_columns=True,
)

DRUG_EXPOSURE = CdmTable(
    file="drug_exposure",
    table="drug_exposure",
    columns=(
        CdmColumn("person_id"),
        CdmColumn("drug"),
        CdmColumn("start_day"),
        _optional("end_day"),
        _optional("daily_dose_mg"),
        _optional("adherence"),
    ),
    key=("person_id", "drug", "start_day"),
)

MRS_MEASURE = CdmTable(
    file="mrs_measure",
    table="mrs_measure",
    columns=(
        CdmColumn("person_id"),
        CdmColumn("visit"),
        CdmColumn("region"),
        CdmColumn("metabolite"),
        CdmColumn("value"),
        CdmColumn("unit"),
        CdmColumn("reference"),
        _optional("crlb_pct"),
        CdmColumn("scanner_id"),
        _optional("field_strength_t"),
        _optional("te_ms"),
    ),
    key=("person_id", "visit", "region", "metabolite"),
)

EVENT = CdmTable(
    file="event",
    table="event",
    columns=(CdmColumn("person_id"), CdmColumn("kind"), CdmColumn("day")),
    key=("person_id", "kind", "day"),
)

TABLES: tuple[CdmTable, ...] = (PERSON, VISIT, OBSERVATIONS, DRUG_EXPOSURE, MRS_MEASURE, EVENT)
"""Every CDM file, in load order (persons first)."""

BY_FILE: Mapping[str, CdmTable] = {table.file: table for table in TABLES}
"""Each CDM table by its file name."""

TABLE_FILES: tuple[str, ...] = tuple(table.file for table in TABLES)
"""The file names (without suffix) of a folder as ``fedpsy synth`` writes it, in load order."""

__all__ = [
    "BY_FILE",
    "DRUG_EXPOSURE",
    "EVENT",
    "EVENT_KINDS",
    "LONG_COLUMNS",
    "LONG_KEY",
    "METABOLITES",
    "MRS_MEASURE",
    "MRS_REFERENCES",
    "MRS_UNITS",
    "OBSERVATIONS",
    "PERSON",
    "REGIONS",
    "TABLES",
    "TABLE_FILES",
    "VISIT",
    "CdmColumn",
    "CdmTable",
]
