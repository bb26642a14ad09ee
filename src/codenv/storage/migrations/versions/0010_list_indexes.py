"""Indexes for the lists' filters and sorts (pages of envs, builds, requests, the audit log)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_code_envs_owner_name", "code_envs", ["owner", "name_key"]),
    ("ix_code_envs_created", "code_envs", ["created_at", "id"]),
    ("ix_builds_env_created", "builds", ["env_id", "created_at"]),
    ("ix_builds_env_kind", "builds", ["env_id", "kind"]),
    ("ix_env_requests_status", "env_requests", ["status", "id"]),
    ("ix_audit_log_action", "audit_log", ["action", "id"]),
    ("ix_audit_log_target", "audit_log", ["target", "id"]),
    ("ix_audit_log_actor", "audit_log", ["actor", "id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    # The owner filter compares case-insensitively.
    op.create_index("ix_code_envs_owner_key", "code_envs", [sa.text("lower(owner)")])


def downgrade() -> None:
    op.drop_index("ix_code_envs_owner_key", table_name="code_envs")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
