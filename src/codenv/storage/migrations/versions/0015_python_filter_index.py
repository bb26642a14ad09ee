"""The env list's Python filter gets its index (the spec's "python", as storage.spec_fields
writes it in the filter)

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

EXPRESSIONS = {"sqlite": "json_extract(spec, '$.python')", "postgresql": "(spec ->> 'python')"}


def upgrade() -> None:
    expression = EXPRESSIONS[op.get_bind().dialect.name]
    op.create_index("ix_code_envs_python", "code_envs", [sa.text(expression)])


def downgrade() -> None:
    op.drop_index("ix_code_envs_python", table_name="code_envs")
