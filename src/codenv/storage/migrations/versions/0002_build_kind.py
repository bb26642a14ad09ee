"""builds.kind: an update (a new revision) or an init (the resources init script, run now)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="update")
        )


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch_op:
        batch_op.drop_column("kind")
