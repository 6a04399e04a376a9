"""Coordinator tables (SQLAlchemy 2 Core). SQLite in the coordinator directory by default."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

node = Table(
    "node",
    metadata,
    Column("site", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("public_key", Text, nullable=False),  # pinned PEM from /v1/info
    Column("fingerprint", String(64), nullable=False),
    Column("dictionary_hash", String(64), nullable=False),
    Column("variable_hashes", Text, nullable=False),  # JSON {code: hash}
    Column("added_at", Float, nullable=False),
    Column("last_seen", Float, nullable=True),
)

job = Table(
    "job",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("user_name", String(64), nullable=True),
    Column("analysis", String(32), nullable=False),
    Column("request", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued|running|ok|refused|error
    Column("sites", Text, nullable=False, default="{}"),  # JSON per-site status
    Column("result", Text, nullable=True),  # JSON envelope
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
)

user = Table(
    "user",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

model = Table(
    "model",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("job_id", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("request", Text, nullable=False),  # JSON, the train request
    Column("sites", Text, nullable=False),  # JSON {site: {"n": rows}}
    Column("app_hash", String(64), nullable=False),
    Column("metrics", Text, nullable=False),  # JSON
    Column("model", Text, nullable=False),  # JSON: spec, design, weights
    Column("created_at", Float, nullable=False),
)
