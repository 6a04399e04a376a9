"""Every audit entry of a task names who asked: the project and the researcher the
coordinator signed into the task (empty for entries of older tasks and of the site's own
actions).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a fresh store has the columns from 0001 (the current metadata); an older one gets them
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("audit_entry")}
    for name in ("project", "researcher"):
        if name not in columns:
            op.add_column("audit_entry", sa.Column(name, sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_entry", "researcher")
    op.drop_column("audit_entry", "project")
