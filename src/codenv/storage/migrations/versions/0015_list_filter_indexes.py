"""Indexes for the env list's Python and name prefix filters (written as storage.indexed
writes the filters: an index on an expression serves only that expression)

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PYTHON = {"sqlite": "json_extract(spec, '$.python')", "postgresql": "(spec ->> 'python')"}


def upgrade() -> None:
    op.create_index(
        "ix_code_envs_python", "code_envs", [sa.text(PYTHON[op.get_bind().dialect.name])]
    )
    # PostgreSQL serves a LIKE prefix from a btree only through this operator class, unless
    # the database's collation is C; SQLite's GLOB is served by the names' unique index.
    op.create_index(
        "ix_code_envs_name_prefix",
        "code_envs",
        ["name_key"],
        postgresql_ops={"name_key": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_code_envs_name_prefix", table_name="code_envs")
    op.drop_index("ix_code_envs_python", table_name="code_envs")
