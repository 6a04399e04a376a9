"""Histogram intervals released per cohort and variable (the gate's interval memory).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from node.store.tables import released_interval

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a no-op on a fresh store (0001 creates the current metadata), adds the table to an
    # older one
    released_interval.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    released_interval.drop(op.get_bind(), checkfirst=True)
