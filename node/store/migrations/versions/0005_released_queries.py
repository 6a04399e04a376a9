"""The weights of every sum released over a variable (the gate's memory of answers).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from node.store.tables import released_query

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a no-op on a fresh store (0001 creates the current metadata), adds the table to an
    # older one
    released_query.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    released_query.drop(op.get_bind(), checkfirst=True)
