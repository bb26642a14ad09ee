"""Resources kept when their env is deleted: set aside where only administrators see them.

An env's resources directory and env vars can hold data and secrets of its owner. Deleting the
env while keeping them moves both to `$CODENV_HOME/kept-resources/<env>-<UTC time>/`; a new
env of the same name (maybe another user's) starts empty, and inherits them only when an
administrator adopts them into it explicitly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codenv.domain.errors import Conflict, NotFound
from codenv.envdirs.layout import EnvLayout, disk_usage
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.storage import queries

_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class KeptResources:
    id: str
    env: str
    kept_at: str
    size_bytes: int
    env_vars: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _root(app: Codenv) -> Path:
    return app.settings.home / "kept-resources"


def set_aside(app: Codenv, layout: EnvLayout) -> str | None:
    """Move the env's resources and env vars out of its directory; the id, or None if none."""
    parts = [p for p in (layout.resources_dir, layout.env_vars_file) if os.path.lexists(p)]
    if not parts:
        return None
    kept_id = f"{layout.root.name}-{datetime.now(UTC).strftime(_STAMP)}"
    target = _root(app) / kept_id
    suffix = 1
    while target.exists():
        suffix += 1
        target = _root(app) / f"{kept_id}-{suffix}"
    target.mkdir(parents=True, mode=0o700)
    for part in parts:
        os.replace(part, target / part.name)
    return target.name


def _info(path: Path) -> KeptResources:
    env, _, stamp = path.name.rpartition("-")
    if not stamp.endswith("Z"):  # a suffix against collisions: `<env>-<time>-2`
        env, _, stamp = env.rpartition("-")
    kept_at = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).isoformat()
    return KeptResources(
        id=path.name,
        env=env,
        kept_at=kept_at,
        size_bytes=disk_usage(path),
        env_vars=(path / "resources_env.json").exists(),
    )


def list_kept(app: Codenv, actor: Actor) -> list[KeptResources]:
    require_admin(actor, "see the resources of deleted code envs")
    if not _root(app).is_dir():
        return []
    return [_info(path) for path in sorted(_root(app).iterdir()) if path.is_dir()]


def _kept_path(app: Codenv, kept_id: str) -> Path:
    path = _root(app) / kept_id
    if "/" in kept_id or kept_id in ("", ".", "..") or not path.is_dir():
        raise NotFound(f"no kept resources named {kept_id!r}", field="kept")
    return path


def adopt_kept(app: Codenv, actor: Actor, kept_id: str, env_name: str) -> None:
    """Give an env the kept resources (and env vars), when it has none of its own."""
    require_admin(actor, "give the resources of a deleted code env to another env")
    source = _kept_path(app, kept_id)
    with app.db.session() as session:
        name = queries.require_env(session, env_name).name
    layout = EnvLayout.of(app.settings.envs_dir, name)
    if layout.resources_dir.exists() and any(layout.resources_dir.iterdir()):
        raise Conflict(f"code env {name!r} has resources of its own already", field="name")
    layout.root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(layout.resources_dir, ignore_errors=True)
    for part in ("resources", "resources_env.json"):
        if os.path.lexists(source / part):
            os.replace(source / part, layout.root / part)
    source.rmdir()
    record(app, actor, "resources.adopt", name, {"kept": kept_id})


def drop_kept(app: Codenv, actor: Actor, kept_id: str) -> None:
    require_admin(actor, "delete the resources of a deleted code env")
    shutil.rmtree(_kept_path(app, kept_id))
    record(app, actor, "resources.drop", kept_id, {})
