"""env_locks becomes build_slots (the per-env build mutex); builds.cancel_requested;
code_envs.settled (the disk agrees with the active revision)

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
    op.rename_table("env_locks", "build_slots")
    with op.batch_alter_table("builds") as batch_op:
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("code_envs") as batch_op:
        batch_op.add_column(
            sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_index("ix_code_envs_settled", ["settled"])


def downgrade() -> None:
    with op.batch_alter_table("code_envs") as batch_op:
        batch_op.drop_index("ix_code_envs_settled")
        batch_op.drop_column("settled")
    with op.batch_alter_table("builds") as batch_op:
        batch_op.drop_column("cancel_requested")
    op.rename_table("build_slots", "env_locks")
