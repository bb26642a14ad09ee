"""Use cases on code envs: create, save, show, list, delete."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from codenv.domain.builds import BuildStatus, check_transition
from codenv.domain.errors import AlreadyExists, Conflict
from codenv.domain.names import name_key, validate_env_name
from codenv.domain.spec import EnvSpec, SpecChanges, apply_changes, base_packages
from codenv.domain.spec_masking import keep_secrets, masked_spec, shown_spec
from codenv.envdirs import kernels
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import FULL, UPDATE, Actor, env_for, require_create
from codenv.services.app import Codenv
from codenv.services.audit import record, spec_changes, spec_details
from codenv.services.kept_resources import set_aside
from codenv.services.node_settings import require_design_node
from codenv.services.read_cache import reader_key
from codenv.services.runtime import drop_version_kernels
from codenv.services.slots import wait_for_ending_build
from codenv.services.views import BuildInfo, Capabilities, EnvInfo, plain
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow, utcnow


@dataclass(frozen=True)
class Created:
    env: str
    build_id: str

    def to_dict(self) -> dict[str, str]:
        return {"env": self.env, "build_id": self.build_id}


def check_new_name(app: Codenv, name: str) -> None:
    """A valid name that no env has (compared case-insensitively)."""
    validate_env_name(name)
    with app.db.session() as session:
        if queries.env_by_name(session, name) is not None:
            raise AlreadyExists(f"a code env named {name!r} already exists", field="name")


def create_env(
    app: Codenv, actor: Actor, name: str, spec: EnvSpec, *, owner: str | None = None
) -> Created:
    """Validate everything first: a refused env leaves nothing behind.

    The env's owner is the actor, or `owner` (an approved request's requester)."""
    # Builds, plans, interpreters and installers load where they are used: `codenv list`
    # needs none of them (start-up time, tests/test_cli_startup.py).
    from codenv.services.boxes import require_sandbox
    from codenv.services.builds import enqueue_build
    from codenv.services.plans import check_spec

    require_design_node(app, "create a code env")
    require_create(actor)
    check_new_name(app, name)
    check_spec(app, spec)
    require_sandbox(app)
    env_id = add_env(app, actor, name, spec, owner=owner)
    return Created(name, enqueue_build(app, actor, env_id, name))


def add_env(
    app: Codenv, actor: Actor, name: str, spec: EnvSpec, *, owner: str | None = None
) -> int:
    """The env's row (its spec checked by the caller), audited; its id."""
    try:
        with app.db.session() as session:
            env = CodeEnvRow(
                name=name,
                name_key=name_key(name),
                owner=owner or actor.name,
                spec=spec.to_dict(),
                active_revision=None,
            )
            session.add(env)
    except IntegrityError as error:
        raise AlreadyExists(f"a code env named {name!r} already exists", field="name") from error
    details = {"owner": env.owner, "spec": spec_details(env.spec)}
    record(app, actor, "env.create", name, details)
    # Left on disk by an env deleted before resources were set aside: never inherited.
    set_aside(app, EnvLayout.of(app.settings.envs_dir, name))
    return env.id


def save_spec(app: Codenv, actor: Actor, name: str, changes: SpecChanges) -> EnvSpec:
    """Change the saved spec without building (Save); nothing is saved unless it validates.

    Lines and options sent back as they were shown (credentials masked) keep their stored
    credentials. Returns the saved spec as the caller may see it: masked."""
    from codenv.services.plans import check_spec

    require_design_node(app, f"change the spec of code env {name!r}")
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        old, stored = env.spec, EnvSpec.from_dict(env.spec)
    spec = keep_secrets(apply_changes(stored, changes), stored)
    check_spec(app, spec)
    with app.db.session() as session:
        queries.require_env(session, name).spec = spec.to_dict()
    record(app, actor, "env.save", env.name, spec_changes(old, spec.to_dict()))
    return shown_spec(spec)


LAST_UPDATE_FAILED = "ready · last update failed"


def env_status(active_revision: int | None, last: BuildInfo | None, spec_differs: bool) -> str:
    """What a user may rely on: an env whose last update failed still runs its active
    revision ("ready · last update failed"); only one that never built is "failed"."""
    if last and not last.finished:
        return "building"
    if active_revision is None:
        return "failed" if last and last.status == "failed" else "not built"
    if last and last.status == "failed":
        return LAST_UPDATE_FAILED
    return "out of date" if spec_differs else "ready"


def _info(
    app: Codenv,
    actor: Actor,
    env: CodeEnvRow,
    active: RevisionRow | None,
    last_row: BuildRow | None,
    base: list[str],
) -> EnvInfo:
    last = BuildInfo.of(last_row) if last_row else None
    spec_differs = active is not None and active.spec != env.spec
    return EnvInfo(
        name=env.name,
        owner=env.owner,
        status=env_status(env.active_revision, last, spec_differs),
        spec=masked_spec(env.spec),
        base_packages=base,
        python=env.spec["python"],
        interpreter=active.plan["interpreter"] if active else None,
        active_revision=env.active_revision,
        spec_differs=spec_differs,
        size_bytes=active.size_bytes if active else 0,
        path=str(EnvLayout.of(app.settings.envs_dir, env.name).root),
        created_at=env.created_at.isoformat(timespec="seconds"),
        last_build=last,
        capabilities=Capabilities.of(actor, env),
    )


def _base_names(app: Codenv, spec: EnvSpec) -> list[str]:
    from codenv.services.plans import core_requirement

    version, line, _wheel = core_requirement(app)
    base = base_packages(spec, version, line, app.settings.seed_packages)
    return [package.requirement for package in base]


def show_env(app: Codenv, actor: Actor, name: str) -> EnvInfo:
    """The env, its active revision and last build: 4 queries (env, grants, revision, build)
    after the data version's, none when read again at the same version; then its live
    packages against the record (`live_drift`, a listing of the live env, read every time)."""
    from codenv.services.installed import live_drift
    from codenv.services.plans import options_source

    info, spec, recorded = app.reads.read(
        ("show", reader_key(actor), name), lambda: _stored_env(app, actor, name)
    )
    # Out of the unit of work: they open their own (a second connection held per request
    # exhausted the pool under 100 clients: every request waited for the pool's timeout).
    base = _base_names(app, spec)
    info = replace(info, base_packages=base, options_source=options_source(app, spec).to_dict())
    if info.active_revision is None or recorded is None:
        return info
    python = EnvLayout.of(app.settings.envs_dir, info.name).python(info.active_revision)
    drift = live_drift(app, python, recorded)
    return replace(info, drift=plain(drift) if drift and drift.drifted else None)


def _stored_env(
    app: Codenv, actor: Actor, name: str
) -> tuple[EnvInfo, EnvSpec, list[dict[str, Any]] | None]:
    """What `show` reads of the database: the env's view, spec and recorded packages."""
    with app.db.session() as session:
        env = env_for(session, actor, name)
        number = env.active_revision
        active = queries.revision(session, env.id, number) if number else None
        last = queries.last_build(session, env.id)
        info = _info(app, actor, env, active, last, [])
        recorded = list(active.installed) if active else None
        return info, EnvSpec.from_dict(env.spec), recorded


def list_envs(app: Codenv, actor: Actor) -> list[EnvInfo]:
    """Every env the actor may use, by name: 2 queries whatever their number (see
    `services.listing`, which also pages and filters them); never the live env."""
    from codenv.services.env_listing import all_envs

    return all_envs(app, actor)


def delete_env(app: Codenv, actor: Actor, name: str, *, delete_resources: bool) -> str | None:
    """Delete the env, its revisions and kernelspecs; its queued builds are cancelled.

    Its resources are deleted too, or set aside for administrators (the id is returned): a new
    env of the same name never inherits them by itself."""
    with app.db.session() as session:
        env_id = env_for(session, actor, name, FULL).id
    # Before the unit of work below: its snapshot would not see the slot released meanwhile.
    wait_for_ending_build(app, env_id)
    with app.db.session() as session:
        env = env_for(session, actor, name, FULL)
        if queries.build_slot(session, env.id) is not None:
            raise Conflict(f"code env {name!r} is being built; delete it when the build ends")
        for build in queries.builds_of(session, env.id, limit=None):
            if build.status == BuildStatus.QUEUED:
                build.status = check_transition(build.status, BuildStatus.CANCELLED)
                build.step, build.finished_at = BuildStatus.CANCELLED.value, utcnow()
                build.error = f"cancelled: code env {env.name!r} was deleted"
        layout = EnvLayout.of(app.settings.envs_dir, env.name)
        session.delete(env)
    kept = None if delete_resources else set_aside(app, layout)
    details = {"delete_resources": delete_resources, "kept": kept}
    record(app, actor, "env.delete", env.name, details)
    for part in (layout.current, layout.revisions_dir):
        if part.is_symlink():
            part.unlink()
        else:
            shutil.rmtree(part, ignore_errors=True)
    kernels.remove_kernelspec(app.settings.kernels_dir, layout.root.name)
    kernels.uninstall_kernelspec(
        app.settings.kernels_dir, layout.root.name, kernels.jupyter_user_kernels_dir(os.environ)
    )
    drop_version_kernels(app, layout.root.name)
    if delete_resources:
        shutil.rmtree(layout.root, ignore_errors=True)
    else:
        _remove_if_empty(layout)
    _delete_images(app, actor, env.name)
    return kept


def _delete_images(app: Codenv, actor: Actor, name: str) -> None:
    """The deleted env's images go from their registries; what a registry refused stays
    marked and is tried again (start-up, the next settle), and is audited."""
    from codenv.services.images import delete_stale_images

    failures: list[str] = []
    deleted = delete_stale_images(app, failures.append)
    if deleted or failures:
        record(app, actor, "env.images.delete", name, {"deleted": deleted, "failed": failures})


def _remove_if_empty(layout: EnvLayout) -> None:
    try:
        layout.root.rmdir()
    except OSError:
        return
