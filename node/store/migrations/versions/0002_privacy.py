"""Differential privacy ledger and used secure aggregation sessions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from node.store.tables import dp_ledger, secagg_session

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates every table of the current metadata on a fresh store; checkfirst keeps
    # this revision a no-op there and adds the tables to a store made before them.
    bind = op.get_bind()
    dp_ledger.create(bind, checkfirst=True)
    secagg_session.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    secagg_session.drop(bind, checkfirst=True)
    dp_ledger.drop(bind, checkfirst=True)
