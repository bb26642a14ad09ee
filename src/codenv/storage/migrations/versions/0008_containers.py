"""Containerized execution: container configs, images, each env's selection

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("code_envs") as batch_op:
        batch_op.add_column(sa.Column("containers", sa.JSON(), nullable=True))
    op.create_table(
        "container_configs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False, unique=True),
        sa.Column("base", sa.String(512), nullable=False),
        sa.Column("registry_host", sa.String(256), nullable=False),
        sa.Column("repository", sa.String(256), nullable=False),
        sa.Column("insecure", sa.Boolean(), nullable=False),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("env_path", sa.String(256), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "env_id",
            sa.Integer(),
            sa.ForeignKey("code_envs.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("env_name", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("config", sa.String(64), nullable=False),
        sa.Column("registry_host", sa.String(256), nullable=False),
        sa.Column("repository", sa.String(512), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("build_id", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(80), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("pushed_bytes", sa.BigInteger(), nullable=False),
        sa.Column("layer_digests", sa.JSON(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_images_env_revision", "images", ["env_id", "revision"])
    op.create_index("ix_images_build_id", "images", ["build_id"])
    op.create_index("ix_images_deleting", "images", ["deleting"])


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("container_configs")
    with op.batch_alter_table("code_envs") as batch_op:
        batch_op.drop_column("containers")
