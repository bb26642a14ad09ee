"""What builds leave on this host's disk when their process dies or their lease is taken away:
a half-built revision (a revision directory with no revision row) and a staging directory.

A build on another host is failed by whichever reaper sees its lease expire, but only the host
that ran it has its directories: each host sweeps its own envs directory, all of it when its
reaper starts, then the envs of builds that ended since the last pass. A half-built revision
is removed while the sweep holds the env's build slot, so no build can be making it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from codenv.domain.builds import BuildStatus
from codenv.envdirs.layout import STAGING_PREFIX, EnvLayout
from codenv.services.app import Codenv
from codenv.services.slots import SlotHold
from codenv.storage import leases as lease_queries
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow


def sweep_leftovers(app: Codenv, since: datetime | None = None) -> list[Path]:
    """Remove the leftovers of finished builds in this host's envs: every env's (`since` None),
    or those of the envs whose builds failed or were cancelled since `since`. Returns them."""
    with app.db.session() as session:
        if since is None:
            envs = {
                name: env_id
                for name, env_id in session.execute(select(CodeEnvRow.name, CodeEnvRow.id))
            }
        else:
            ended = lease_queries.builds_ended_since(session, since)
            envs = {row.env_name: row.env_id for row in ended if row.env_id is not None}
    layouts = {
        env_id: EnvLayout.of(app.settings.envs_dir, name)
        for name, env_id in envs.items()
        if (app.settings.envs_dir / name).is_dir()
    }
    removed = _stale_staged(app, layouts.values())
    built = _revision_numbers(app, None if since is None else list(layouts))
    for env_id, layout in layouts.items():
        if _local_numbers(layout) - built[env_id]:
            removed += _half_built(app, env_id, layout)
    return removed


def _local_numbers(layout: EnvLayout) -> set[int]:
    if not layout.revisions_dir.is_dir():
        return set()
    return {int(path.name) for path in layout.revisions_dir.iterdir() if path.name.isdigit()}


def _revision_numbers(app: Codenv, env_ids: list[int] | None) -> defaultdict[int, set[int]]:
    """The revisions with a row of the envs `env_ids` (of every env: None)."""
    numbers: defaultdict[int, set[int]] = defaultdict(set)
    query = select(RevisionRow.env_id, RevisionRow.number)
    if env_ids is not None:
        query = query.where(RevisionRow.env_id.in_(env_ids))
    with app.db.session() as session:
        for env_id, number in session.execute(query):
            numbers[env_id].add(number)
    return numbers


def _half_built(app: Codenv, env_id: int, layout: EnvLayout) -> list[Path]:
    """The env's revision directories without a row, checked again while holding its slot (a
    build holding it may be making one: then the next pass looks again)."""
    hold = SlotHold.take(app, env_id, f"sweep-{uuid.uuid4().hex[:26]}")
    if hold is None:
        return []
    with hold:
        orphans = _local_numbers(layout) - _revision_numbers(app, [env_id])[env_id]
        for number in orphans:
            layout.remove_revision(number)
    return [layout.revision(number) for number in sorted(orphans)]


def _stale_staged(app: Codenv, layouts: Iterable[EnvLayout]) -> list[Path]:
    """Staging directories whose build ended (or is unknown): never of a build still going."""
    staged = {
        path.name.removeprefix(STAGING_PREFIX): path
        for layout in layouts
        for path in layout.root.glob(f"{STAGING_PREFIX}*")
    }
    if not staged:
        return []
    with app.db.session() as session:
        query = select(BuildRow.id, BuildRow.status).where(BuildRow.id.in_(list(staged)))
        going = {
            build_id
            for build_id, status in session.execute(query)
            if not BuildStatus(status).finished
        }
    stale = [path for build_id, path in staged.items() if build_id not in going]
    for path in stale:
        EnvLayout(path.parent).drop_staged(path.name.removeprefix(STAGING_PREFIX))
    return stale
