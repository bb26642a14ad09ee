"""Making a revision active: first the commit, then the disk made to agree with it.

The database is the source of truth. A build (or a rollback) commits in one transaction the
revision row, the env's active revision and its own success, and marks the env unsettled.
Settling then switches `current`, puts staged env vars in force, refreshes the kernelspec,
prunes old revisions and refreshes one kernelspec per kept imported version: each step is
idempotent, a step that fails is a warning (never a failed build: the commit stands), and
start-up reconciliation settles every env left unsettled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from codenv.builds.init_script import commit_env_vars
from codenv.domain.builds import BuildStatus
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import STAGING_PREFIX, EnvLayout
from codenv.services.app import Codenv
from codenv.services.images import delete_stale_images
from codenv.services.runtime import refresh_kernel, refresh_version_kernels
from codenv.services.views import as_utc
from codenv.storage.models import BuildRow, CodeEnvRow

Warn = Callable[[str], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _staged_files(layout: EnvLayout) -> dict[str, Path]:
    """Staged env-vars files by the id of the build that wrote them."""
    if not layout.root.is_dir():
        return {}
    found = {}
    for directory in layout.root.glob(f"{STAGING_PREFIX}*"):
        build_id = directory.name.removeprefix(STAGING_PREFIX)
        found[build_id] = layout.staged_env_vars_file(build_id)
    return found


def _settle_env_vars(app: Codenv, layout: EnvLayout) -> None:
    """Put the newest finished-and-succeeded build's staged env vars in force; drop the rest.

    Files of builds still running are theirs: left alone.
    """
    staged = _staged_files(layout)
    if not staged:
        return
    with app.db.session() as session:
        rows = session.scalars(select(BuildRow).where(BuildRow.id.in_(staged))).all()
        states = {row.id: (row.status, as_utc(row.finished_at)) for row in rows}
    succeeded = {b: at or _EPOCH for b, (status, at) in states.items() if status == "succeeded"}
    newest = max(succeeded, key=succeeded.__getitem__, default=None)
    for build_id, path in staged.items():
        status = states.get(build_id, (BuildStatus.FAILED, None))[0]
        if build_id == newest:
            commit_env_vars(path, layout.env_vars_file)
            layout.drop_staged(build_id)
        elif BuildStatus(status).finished:
            layout.drop_staged(build_id)


def _step(warn: Warn, what: str, action: Callable[[], object]) -> bool:
    try:
        action()
    except Exception as error:  # any failure of a step is a warning, by design
        warn(f"warning: {what} failed ({error}); it is done again at the next start-up")
        return False
    return True


def settle_env(app: Codenv, env_id: int, warn: Warn) -> None:
    """Make the disk agree with the env's active revision; mark it settled when all went well."""
    with app.db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        if env is None:
            return
        name, active, spec = env.name, env.active_revision, EnvSpec.from_dict(env.spec)
    layout = EnvLayout.of(app.settings.envs_dir, name)
    if active is not None and not layout.revision(active).exists():
        # Another host built it (a worker, the design node of a sync node on one database):
        # that host settles it; marking it settled here would leave that host's `current`
        # behind. This host's copy is `codenv sync`'s to make.
        return

    def switch() -> None:
        if active is None or layout.current_number() == active:
            return
        if layout.revision(active).exists():
            layout.switch_current(active)

    done = [
        _step(warn, "switching `current`", switch),
        _step(warn, "putting the env vars in force", lambda: _settle_env_vars(app, layout)),
        _step(warn, "refreshing the Jupyter kernelspec", lambda: refresh_kernel(app, name, spec)),
        _step(warn, "pruning old revisions", lambda: prune_revisions(app, env_id)),
        _step(
            warn,
            "deleting the images of pruned revisions",
            lambda: delete_stale_images(app, warn, env_id),
        ),
        _step(
            warn,
            "refreshing the versions' Jupyter kernelspecs",
            lambda: refresh_version_kernels(app, env_id),
        ),
    ]
    if all(done):
        with app.db.session() as session:
            row = session.get(CodeEnvRow, env_id)
            if row is not None and row.active_revision == active:
                row.settled = True


def prune_revisions(app: Codenv, env_id: int) -> list[int]:
    """Remove the directories of revisions past the retention, newest kept first.

    The retention is for revisions built here: imported ones (versions) are kept until
    removed by name (`revisions.remove_revision`), as notebooks and jobs may pin them."""
    pruned: list[int] = []
    with app.db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        if env is None:
            return pruned
        layout = EnvLayout.of(app.settings.envs_dir, env.name)
        kept = [
            r
            for r in env.revisions
            if not r.pruned and r.origin is None and r.number != env.active_revision
        ]
        for row in sorted(kept, key=lambda r: r.number, reverse=True)[app.settings.retention :]:
            layout.remove_revision(row.number)
            row.pruned = True
            pruned.append(row.number)
    return pruned


def unsettled_envs(app: Codenv) -> list[int]:
    with app.db.session() as session:
        return list(session.scalars(select(CodeEnvRow.id).where(CodeEnvRow.settled.is_(False))))
