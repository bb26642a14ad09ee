"""The managed resources directory: init script and its options, env vars, files.

Reading needs the right to use the env; writing (files, the script, which runs code on the
server) needs the right to update it, and so does reading the script (it may hold secrets;
even then, credentials in its URLs are shown masked). Writes are bounded by the node's limits:
the env's resources quota, and what one zip may unpack to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codenv.domain.builds import BuildKind
from codenv.domain.limits import check_path_size
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.envdirs.layout import EnvLayout
from codenv.resources import files
from codenv.services.actor import UPDATE, USE, Actor, env_for
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.builds import enqueue_build
from codenv.services.envs import save_spec
from codenv.services.node_settings import require_design_node
from codenv.services.runtime import env_vars


@dataclass(frozen=True)
class InitScript:
    env: str
    script: str
    run_on_update: bool
    run_on_api_node: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "env": self.env,
            "script": self.script,
            "run_on_update": self.run_on_update,
            "run_on_api_node": self.run_on_api_node,
        }


def _layout(app: Codenv, actor: Actor, name: str, *, write: bool) -> tuple[EnvLayout, EnvSpec]:
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE if write else USE)
        return EnvLayout.of(app.settings.envs_dir, env.name), EnvSpec.from_dict(env.spec)


def require_files_write(app: Codenv, actor: Actor, name: str, path: str = "") -> None:
    """Check the right to write files, and the size of the path to write to, before anything
    is received (uploads can be large)."""
    _layout(app, actor, name, write=True)
    check_path_size(path)


def get_init_script(app: Codenv, actor: Actor, name: str) -> InitScript:
    """The script (masked) and its options, for those who may change it."""
    layout, spec = _layout(app, actor, name, write=True)
    return InitScript(
        layout.root.name,
        mask_secrets(spec.resources_init_script),
        spec.run_init_script_on_update,
        spec.run_init_script_on_api_node,
    )


def set_init_script(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    script: str | None = None,
    run_on_update: bool | None = None,
    run_on_api_node: bool | None = None,
) -> InitScript:
    """Save the script and its options (the spec changes; nothing runs until an update).

    Lines sent back as they were shown (credentials masked) keep their stored credentials."""
    require_design_node(app, f"change the init script of code env {name!r}")
    changes = SpecChanges(
        resources_init_script=script,
        run_init_script_on_update=run_on_update,
        run_init_script_on_api_node=run_on_api_node,
    )
    spec = save_spec(app, actor, name, changes)
    return InitScript(
        name,
        spec.resources_init_script,
        spec.run_init_script_on_update,
        spec.run_init_script_on_api_node,
    )


def run_init_script_now(app: Codenv, actor: Actor, name: str) -> str:
    """Queue a build that runs the init script in the active revision; returns its id."""
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        env_id, env_name = env.id, env.name
    build_id = enqueue_build(app, actor, env_id, env_name, kind=BuildKind.INIT)
    record(app, actor, "env.init_script.run", env_name, {"build": build_id})
    return build_id


def resource_env_vars(app: Codenv, actor: Actor, name: str) -> dict[str, str]:
    layout, _ = _layout(app, actor, name, write=False)
    return env_vars(layout)


def list_files(app: Codenv, actor: Actor, name: str, path: str = "") -> list[files.Entry]:
    layout, _ = _layout(app, actor, name, write=False)
    layout.resources_dir.mkdir(parents=True, exist_ok=True)
    return files.list_dir(layout.resources_dir, path)


def put_files(
    app: Codenv, actor: Actor, name: str, source: Path, dest: str | None = None, *, unzip: bool
) -> list[files.Entry]:
    layout, _ = _layout(app, actor, name, write=True)
    layout.resources_dir.mkdir(parents=True, exist_ok=True)
    limits = _write_limits(app)
    if unzip:
        written = files.put_zip(layout.resources_dir, source, dest or "", limits=limits)
    else:
        written = [files.put_file(layout.resources_dir, source, dest, limits=limits)]
    details = {"dest": dest or "", "unzip": unzip, "entries": len(written)}
    record(app, actor, "env.resources.put", layout.root.name, details)
    return written


def _write_limits(app: Codenv) -> files.WriteLimits:
    settings = app.settings
    return files.WriteLimits(
        unzip_bytes=settings.max_unzip_bytes,
        zip_members=settings.max_zip_members,
        quota=settings.resources_quota_bytes,
    )


def get_file(app: Codenv, actor: Actor, name: str, path: str, dest: Path) -> Path:
    layout, _ = _layout(app, actor, name, write=False)
    return files.get_file(layout.resources_dir, path, dest)


def remove_file(app: Codenv, actor: Actor, name: str, path: str) -> None:
    layout, _ = _layout(app, actor, name, write=True)
    files.remove(layout.resources_dir, path)
    record(app, actor, "env.resources.remove", layout.root.name, {"path": path})
