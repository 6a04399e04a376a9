"""Coordinator tables (SQLAlchemy 2 Core). SQLite in the coordinator directory by default.

The schema is made by the Alembic migrations in ``coordinator/store/migrations``: a change
here needs a new revision there (the tests compare the migrated schema with these tables).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

node = Table(
    "node",
    metadata,
    Column("site", String(32), primary_key=True),
    Column("url", Text, nullable=False),  # empty for a pull node
    Column("mode", String(8), nullable=False, default="push"),  # push|pull
    Column("public_key", Text, nullable=False),  # pinned PEM from /v1/info
    Column("fingerprint", String(64), nullable=False),
    Column("dictionary_hash", String(64), nullable=False),
    Column("variable_hashes", Text, nullable=False),  # JSON {code: hash}
    Column("added_at", Float, nullable=False),
    Column("last_seen", Float, nullable=True),
    Column("policy", Text, nullable=True),  # JSON: the node's public policy, as last seen
)

job = Table(
    "job",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("user_name", String(64), nullable=True),
    Column("analysis", String(32), nullable=False),
    Column("project", String(64), nullable=True),  # None: asked with no project (operator)
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
    Column("project", String(64), nullable=True),  # the project it was trained under
)

message = Table(  # the mailbox of pull nodes: signed requests queued, their answers
    "pull_message",
    metadata,
    Column("message_id", String(32), primary_key=True),
    Column("site", String(32), nullable=False, index=True),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),  # the node path that was signed
    Column("headers", Text, nullable=False),  # JSON: the signature headers
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),  # queued|delivered|answered|expired
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

pull_nonce = Table(  # nonces of requests pull nodes signed (replay protection)
    "pull_nonce",
    metadata,
    Column("nonce", String(32), primary_key=True),
    Column("seen_at", Float, nullable=False),
)

project = Table(  # a study under one data-access agreement: what its researchers may ask
    "project",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("analyses", Text, nullable=True),  # JSON list; NULL: every analysis
    Column("variables", Text, nullable=True),  # JSON list of codes or sections; NULL: all
    Column("sites", Text, nullable=True),  # JSON list; NULL: every site
    Column("created_at", Float, nullable=False),
)

project_member = Table(  # the researchers of each project
    "project_member",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("added_at", Float, nullable=False),
)
