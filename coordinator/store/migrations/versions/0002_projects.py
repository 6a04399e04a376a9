"""Projects: what each study's researchers may ask (analyses, variables, sites), and who
its researchers are. Every store gets the project ``default``, open to everything, with
every existing researcher as a member, so set-ups made before projects keep working. Each
node keeps the public part of its policy as last seen (for a result's methods paragraph).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # a store that already has the tables (e.g. one stamped again at the baseline) keeps them
    existing = set(sa.inspect(bind).get_table_names())
    if "project" not in existing:
        op.create_table(
            "project",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("description", sa.Text, nullable=False),
            sa.Column("analyses", sa.Text, nullable=True),
            sa.Column("variables", sa.Text, nullable=True),
            sa.Column("sites", sa.Text, nullable=True),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if "project_member" not in existing:
        op.create_table(
            "project_member",
            sa.Column("project", sa.String(64), primary_key=True),
            sa.Column("user_name", sa.String(64), primary_key=True),
            sa.Column("added_at", sa.Float, nullable=False),
        )
    if "policy" not in {c["name"] for c in sa.inspect(bind).get_columns("node")}:
        op.add_column("node", sa.Column("policy", sa.Text, nullable=True))
    now = time.time()
    if bind.execute(sa.text("SELECT name FROM project WHERE name = 'default'")).first() is None:
        bind.execute(
            sa.text(
                "INSERT INTO project (name, description, created_at) "
                "VALUES ('default', 'open to every analysis, variable and site', :now)"
            ),
            {"now": now},
        )
    members = set(
        bind.execute(
            sa.text("SELECT user_name FROM project_member WHERE project = 'default'")
        ).scalars()
    )
    for user in bind.execute(sa.text('SELECT name FROM "user"')).scalars().all():
        if user not in members:
            bind.execute(
                sa.text(
                    "INSERT INTO project_member (project, user_name, added_at) "
                    "VALUES ('default', :user, :now)"
                ),
                {"user": user, "now": now},
            )


def downgrade() -> None:
    with op.batch_alter_table("node") as batch:
        batch.drop_column("policy")
    op.drop_table("project_member")
    op.drop_table("project")
