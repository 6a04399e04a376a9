"""CDM v1 tables and the node's own bookkeeping tables (SQLAlchemy 2 Core).

Person ids are pseudonymous strings; days are integer offsets from the person's index
date; no names and no dates of birth are stored. Person-level variables live in
``observation`` under the visit label :data:`PERSON_LEVEL`.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

PERSON_LEVEL = "_person"
"""Visit label under which person-level variables (trs, education_years, …) are stored."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ingest_batch = Table(
    "ingest_batch",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("table_name", String(32), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # loaded | unchanged
    Column("loaded_at", String(32), nullable=False),  # ISO 8601 UTC
    Column("report", Text, nullable=False, default=""),
    Index("ix_ingest_batch_sha256", "sha256"),
)

person = Table(
    "person",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("sex", String(8), nullable=True),
    Column("birth_year", Integer, nullable=True),
    Column("primary_diagnosis", String(16), nullable=True),
    Column("row_id", Integer, nullable=False, unique=True),  # dense internal id (bitsets)
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
)

visit = Table(
    "visit",
    metadata,
    Column("person_id", String(64), ForeignKey("person.person_id"), primary_key=True),
    Column("label", String(32), primary_key=True),
    Column("day", Integer, nullable=True),
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
)

observation = Table(
    "observation",
    metadata,
    # key order (variable, visit, person): frames read by variable and visit, and loading
    # in key order keeps inserts cheap; one index serves both
    Column("variable", String(64), primary_key=True),
    Column("visit", String(32), primary_key=True),
    Column("person_id", String(64), ForeignKey("person.person_id"), primary_key=True),
    Column("value_num", Float, nullable=True),
    Column("value_text", Text, nullable=True),
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
)

drug_exposure = Table(
    "drug_exposure",
    metadata,
    Column("exposure_id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), ForeignKey("person.person_id"), nullable=False),
    Column("drug", String(64), nullable=False),  # INN, lower case
    Column("start_day", Integer, nullable=False),
    Column("end_day", Integer, nullable=True),
    Column("daily_dose_mg", Float, nullable=True),
    Column("adherence", Float, nullable=True),  # fraction 0..1
    Column("cpz_eq_mg", Float, nullable=True),  # derived from the shipped DDD table
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
    UniqueConstraint("person_id", "drug", "start_day", name="uq_drug_exposure_key"),
)

mrs_measure = Table(
    "mrs_measure",
    metadata,
    Column("measure_id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), ForeignKey("person.person_id"), nullable=False),
    Column("visit", String(32), nullable=False),
    Column("region", String(16), nullable=False),
    Column("metabolite", String(16), nullable=False),
    Column("value", Float, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("reference", String(16), nullable=False),  # Cr | water
    Column("crlb_pct", Float, nullable=True),
    Column("scanner_id", String(64), nullable=False),
    Column("field_strength_t", Float, nullable=True),
    Column("te_ms", Float, nullable=True),
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
    UniqueConstraint("person_id", "visit", "region", "metabolite", name="uq_mrs_measure_key"),
)

event = Table(
    "event",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), ForeignKey("person.person_id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("day", Integer, nullable=False),
    Column("batch_id", Integer, ForeignKey("ingest_batch.batch_id"), nullable=True),
    UniqueConstraint("person_id", "kind", "day", name="uq_event_key"),
)

# ---- privacy-gate bookkeeping (never leaves the node) ---------------------------

nonce = Table(
    "nonce",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False),  # unix seconds
)

answered_cohort = Table(
    "answered_cohort",
    metadata,
    Column("cohort_id", Integer, primary_key=True, autoincrement=True),
    Column("dictionary_hash", String(64), nullable=False),
    # the variable whose values an answer summed over these rows; "" for counts
    Column("variable", String(64), nullable=False, server_default=""),
    # digest of the cohort definition (cohort and visit) the rows were selected by
    Column("definition", String(64), nullable=False, server_default=""),
    Column("size", Integer, nullable=False),
    Column("bits", LargeBinary, nullable=False),  # bitset over person.row_id
)

released_interval = Table(
    "released_interval",
    metadata,
    Column("interval_id", Integer, primary_key=True, autoincrement=True),
    Column("dictionary_hash", String(64), nullable=False),
    Column("variable", String(64), nullable=False),
    Column("cohort", String(64), nullable=False),  # sha256 of the rows' bitset
    Column("edges", Text, nullable=False),  # JSON list of every edge released so far
    UniqueConstraint("dictionary_hash", "variable", "cohort"),
)

released_query = Table(
    "released_query",
    metadata,
    Column("query_id", Integer, primary_key=True, autoincrement=True),
    Column("dictionary_hash", String(64), nullable=False),
    Column("variable", String(64), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of rows and weights
    Column("bits", LargeBinary, nullable=False),  # bitset over person.row_id
    Column("columns", Integer, nullable=False),
    Column("weights", LargeBinary, nullable=False),  # zlib of float32 rows × columns
    UniqueConstraint("dictionary_hash", "variable", "digest"),
)

task = Table(
    "task",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("step", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending|answered|refused|rejected
    Column("request", Text, nullable=False),  # JSON of the signed task
    Column("result", Text, nullable=True),  # JSON of what would leave / left
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
)

audit_entry = Table(
    "audit_entry",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("task_id", String(64), nullable=True),
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("project", String(64), nullable=True),  # who asked (also in the hashed payload)
    Column("researcher", String(64), nullable=True),
)

dp_ledger = Table(
    "dp_ledger",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("at", Float, nullable=False),  # unix seconds
    Column("mechanism", String(32), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("sigma", Float, nullable=False),
    Column("sensitivity", Float, nullable=False),
)

secagg_session = Table(
    "secagg_session",
    metadata,
    Column("session_id", String(64), primary_key=True),  # each session id is accepted once
    Column("created_at", Float, nullable=False),
)

CDM_TABLES = ("person", "visit", "observation", "drug_exposure", "mrs_measure", "event")
"""The tables ``fedpsy node status`` counts, in load order."""
