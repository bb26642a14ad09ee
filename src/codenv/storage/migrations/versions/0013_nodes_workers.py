"""Execution nodes and workers: what each node holds, which workers run

`nodes` and `node_revisions` are written by `codenv sync` on each execution node, `workers`
by the heartbeat of each `codenv worker`; `codenv status` reads them. New tables only.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pythons", sa.JSON(), nullable=False),
        sa.Column("poll_seconds", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "node_revisions",
        sa.Column(
            "node",
            sa.String(128),
            sa.ForeignKey("nodes.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "env_id",
            sa.Integer(),
            sa.ForeignKey("code_envs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("wanted", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_node_revisions_env_id", "node_revisions", ["env_id"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workers_last_seen_at", "workers", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_last_seen_at", table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_node_revisions_env_id", table_name="node_revisions")
    op.drop_table("node_revisions")
    op.drop_table("nodes")
