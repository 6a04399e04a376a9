"""The differencing guard remembers, with each row set, the variable summed over it and the
digest of the cohort definition that selected the rows.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a fresh store has the column from 0001 (the current metadata); an older one gets it,
    # its remembered cohorts becoming count sets ("")
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("answered_cohort")}
    for name in ("variable", "definition"):
        if name not in columns:
            op.add_column(
                "answered_cohort",
                sa.Column(name, sa.String(64), nullable=False, server_default=""),
            )


def downgrade() -> None:
    op.drop_column("answered_cohort", "definition")
    op.drop_column("answered_cohort", "variable")
