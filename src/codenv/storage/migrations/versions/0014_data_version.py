"""The data version that server processes' read caches check, and the index of an env's last
build (newest first without a sort per env)

Every table but the unwatched ones (storage/data_version.py) gets triggers that raise the
version when it changes; a table added later must be watched by its own migration.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from codenv.storage import data_version

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

WATCHED = (
    "audit_log",
    "build_slots",
    "builds",
    "code_envs",
    "container_configs",
    "dss_futures",
    "env_grants",
    "env_requests",
    "group_members",
    "groups",
    "images",
    "interpreters",
    "node_revisions",
    "node_settings",
    "revisions",
    "users",
)


def upgrade() -> None:
    op.drop_index("ix_builds_env_created", table_name="builds")
    op.create_index("ix_builds_env_created", "builds", ["env_id", "created_at", "id"])
    op.create_table(
        data_version.TABLE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    connection = op.get_bind()
    data_version.create_version(connection)
    for table in WATCHED:
        data_version.watch(connection, table)


def downgrade() -> None:
    connection = op.get_bind()
    for table in WATCHED:
        data_version.unwatch(connection, table)
    data_version.drop_version(connection)
    op.drop_table(data_version.TABLE)
    op.drop_index("ix_builds_env_created", table_name="builds")
    op.create_index("ix_builds_env_created", "builds", ["env_id", "created_at"])
