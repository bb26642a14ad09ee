"""Build leases: the worker and host that claimed a build, and when its claim expires

Builds that ran get their worker and host from their holder token (`host:pid:start`). A
build running at the upgrade and every build slot get a lease that ends now: a process of an
older codenv never renews it, so the reaper frees them at once (upgrade when no build runs).
Queued builds stay unclaimed: they never expire.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BUILDS = sa.table(
    "builds",
    sa.column("id", sa.String),
    sa.column("holder", sa.String),
    sa.column("status", sa.String),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("worker", sa.String),
    sa.column("host", sa.String),
    sa.column("lease_expires_at", sa.DateTime(timezone=True)),
)
SLOTS = sa.table("build_slots", sa.column("lease_expires_at", sa.DateTime(timezone=True)))


def _identity(token: str) -> dict[str, str] | None:
    """What codenv records now for the holder `host:pid:start` of an older codenv."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    host, pid = parts[0][:255], parts[1]
    return {"worker": f"codenv-{pid}@{host}"[:128], "host": host}


def _fill_builds(now: datetime) -> None:
    connection = op.get_bind()
    ran = connection.execute(
        sa.select(BUILDS.c.id, BUILDS.c.holder).where(
            BUILDS.c.holder != "", BUILDS.c.started_at.is_not(None)
        )
    ).all()
    values = [{"key": key, **found} for key, token in ran if (found := _identity(token))]
    if values:
        connection.execute(
            BUILDS.update()
            .where(BUILDS.c.id == sa.bindparam("key"))
            .values(worker=sa.bindparam("worker"), host=sa.bindparam("host")),
            values,
        )
    connection.execute(
        BUILDS.update().where(BUILDS.c.status == "running").values(lease_expires_at=now)
    )


def upgrade() -> None:
    now = datetime.now(UTC)
    op.add_column("builds", sa.Column("worker", sa.String(length=128), nullable=True))
    op.add_column("builds", sa.Column("host", sa.String(length=255), nullable=True))
    op.add_column("builds", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.create_index("ix_builds_status_lease", "builds", ["status", "lease_expires_at"])
    op.create_index("ix_builds_finished", "builds", ["finished_at"])
    _fill_builds(now)
    op.add_column("build_slots", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.get_bind().execute(SLOTS.update().values(lease_expires_at=now))
    # SQLite makes a column NOT NULL by copying the table, reflected with its foreign key's
    # table: SQLAlchemy then warns (on every new home) that it skips code_envs' expression
    # index, which the copy of build_slots does not need.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        with op.batch_alter_table("build_slots") as batch_op:
            batch_op.alter_column(
                "lease_expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
            )


def downgrade() -> None:
    with op.batch_alter_table("build_slots") as batch_op:
        batch_op.drop_column("lease_expires_at")
    with op.batch_alter_table("builds") as batch_op:
        batch_op.drop_index("ix_builds_finished")
        batch_op.drop_index("ix_builds_status_lease")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("host")
        batch_op.drop_column("worker")
