"""Shared state for several servers: build logs, node settings and the session key in the database

Build logs are copied into `build_log_chunks` as they are written (old builds keep their
files, read when a build has no `build_logs` row); the node's runtime settings move from
config/server.json into `node_settings` at their first read (services/node_settings_store.py).
Sessions were rows already (0005): no signing key is left to move.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_logs",
        sa.Column(
            "build_id",
            sa.String(32),
            sa.ForeignKey("builds.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "build_log_chunks",
        sa.Column(
            "build_id",
            sa.String(32),
            sa.ForeignKey("build_logs.build_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "node_settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("node_settings")
    op.drop_table("build_log_chunks")
    op.drop_table("build_logs")
