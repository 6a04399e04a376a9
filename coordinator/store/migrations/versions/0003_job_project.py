"""Jobs and models record the project they ran under, so that a researcher sees only the
jobs they submitted or of their projects, and the models of their projects. An existing
job gets the project its request named, else its researcher's only project (a set-up
using only ``default``: ``default``), else none (then only its researcher sees it); an
existing model gets its training job's project.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _named(raw: str) -> str | None:
    try:
        name = json.loads(raw).get("project")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def upgrade() -> None:
    bind = op.get_bind()
    # a store adopted at the baseline got its missing tables as they are defined now
    for table in ("job", "model"):
        if "project" not in {c["name"] for c in sa.inspect(bind).get_columns(table)}:
            op.add_column(table, sa.Column("project", sa.String(64), nullable=True))
    memberships: dict[str, list[str]] = {}
    for project, user in bind.execute(sa.text("SELECT project, user_name FROM project_member")):
        memberships.setdefault(user, []).append(project)
    jobs = bind.execute(sa.text("SELECT job_id, user_name, request FROM job")).all()
    for job_id, user, request in jobs:
        only = memberships.get(user or "", [])
        project = _named(request) or (only[0] if len(only) == 1 else None)
        if project is not None:
            bind.execute(
                sa.text("UPDATE job SET project = :project WHERE job_id = :job_id"),
                {"project": project, "job_id": job_id},
            )
    bind.execute(
        sa.text(
            "UPDATE model SET project = "
            "(SELECT job.project FROM job WHERE job.job_id = model.job_id)"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("model") as batch:
        batch.drop_column("project")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("project")
