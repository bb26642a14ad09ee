"""Import: a bundle's envs onto this node, each as exactly the lock it was exported with.

Everything is checked before anything is created: the bundle whole (digests), the format,
each env's Python minor, names and rights. Then, per env and by the import mode: an env
that already holds the same lock says which version; otherwise a new env, or a new version
of the existing one, is built by an import build (`BuildKind.IMPORT`) from the staged files.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codenv.domain import bundles
from codenv.domain.builds import BuildKind
from codenv.domain.bundles import BundledEnv, ImportMode
from codenv.domain.errors import InvalidInput, NotFound
from codenv.domain.locks import lock_key, parse_lock
from codenv.domain.names import validate_env_name
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import UPDATE, Actor, env_for, require_create
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.boxes import require_sandbox
from codenv.services.builds import enqueue_build
from codenv.services.bundle_files import BundleLimits, Unpacked, unpack_bundle
from codenv.services.envs import add_env
from codenv.services.import_input import ORIGIN
from codenv.services.interpreters import discovery
from codenv.services.plans import check_spec, file_sha256
from codenv.storage import queries

QUEUED, HELD, SKIPPED = "queued", "already held", "nothing done"


@dataclass(frozen=True)
class ImportRequest:
    as_name: str | None = None  # one-env bundles: import under another name
    offline: bool = False  # never reach the network (bundled wheels or the shared cache)
    mode: ImportMode = ImportMode.INSTALL_IF_MISSING


@dataclass
class EnvImport:
    """What the import did with one env of the bundle."""

    env: str
    action: str
    message: str
    build_id: str | None = None
    version: int | None = None
    created: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "action": self.action,
            "message": self.message,
            "build_id": self.build_id,
            "version": self.version,
            "created": self.created,
        }


@dataclass
class ImportReport:
    bundle: str
    envs: list[EnvImport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "envs": [item.to_dict() for item in self.envs]}


def _check_pythons(app: Codenv, envs: tuple[BundledEnv, ...]) -> None:
    have = discovery(app).minors()
    for env in envs:
        if env.python not in have:
            raise InvalidInput(
                f"code env {env.name!r} of the bundle needs Python {env.python}, which this "
                f"node does not have (it has {', '.join(have) or 'none'})",
                field="python",
            )


def _target_names(unpacked: Unpacked, request: ImportRequest) -> dict[str, str]:
    """Bundle env name → name on this node."""
    names = {env.name: env.name for env in unpacked.manifest.envs}
    if request.as_name is not None:
        if len(names) != 1:
            raise InvalidInput("--as takes a bundle of one code env", field="as_name")
        validate_env_name(request.as_name, field="as_name")
        names = {name: request.as_name for name in names}
    return names


def _held_by(app: Codenv, actor: Actor, name: str, lock: str) -> tuple[bool, int | None]:
    """Whether the env exists (the actor may change it), and its version holding `lock`."""
    wanted = lock_key(lock)
    with app.db.session() as session:
        if queries.env_by_name(session, name) is None:
            return False, None
        env = env_for(session, actor, name, UPDATE)
        for revision in env.revisions:
            if not revision.pruned and lock_key(bundles.portable_lock(revision.lock)[0]) == wanted:
                return True, revision.number
    return True, None


def _origin(unpacked: Unpacked, env: BundledEnv, file: Path, offline: bool) -> dict[str, Any]:
    return {
        "bundle": file.name,
        "bundle_sha256": unpacked.digest,
        "source_env": env.name,
        "source_revision": env.revision,
        "source_node": unpacked.manifest.source_node,
        "exported_at": unpacked.manifest.created_at,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "with_wheels": env.with_wheels,
        "offline": offline,
    }


def _stage(app: Codenv, source: Path, origin: dict[str, Any], digests: dict[str, str]) -> str:
    """Move the env's files where its import build finds them; the build's id. `digests`:
    the manifest's, by path in the env's directory (`wheels/NAME.whl`)."""
    build_id = uuid.uuid4().hex
    staged = app.settings.imports_dir / build_id
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, staged)
    _keep_wheels(staged / bundles.WHEELS, app.settings.bundle_wheels_dir, digests)
    (staged / ORIGIN).write_text(json.dumps(origin), "utf-8")
    return build_id


def _keep_wheels(wheels: Path, shared: Path, digests: dict[str, str]) -> None:
    """Move verified wheels into the node's one folder of bundled wheels. A wheel of the
    same name and bytes is there already: nothing to do (uv knows it); of other bytes (a
    wheel rebuilt under the same name): the newer replaces it, the lock's hashes decide."""
    shared.mkdir(parents=True, exist_ok=True)  # the install's --find-links, even when empty
    if not wheels.is_dir():
        return
    for wheel in wheels.iterdir():
        target = shared / wheel.name
        digest = digests[f"{bundles.WHEELS}/{wheel.name}"]
        if target.exists() and file_sha256(str(target)) == digest:
            wheel.unlink()
        else:
            os.replace(wheel, target)
    wheels.rmdir()


def _copy_resources(app: Codenv, source: Path, name: str) -> None:
    resources = source / bundles.RESOURCES
    if resources.is_dir():
        target = EnvLayout.of(app.settings.envs_dir, name).resources_dir
        shutil.copytree(resources, target, dirs_exist_ok=True)
        shutil.rmtree(resources)


def _plan_env(
    app: Codenv, actor: Actor, unpacked: Unpacked, env: BundledEnv, name: str, mode: ImportMode
) -> tuple[EnvImport, EnvSpec]:
    """What to do with one env (nothing is written yet), and its spec, checked on this node."""
    spec = bundles.bundled_spec(unpacked.text(env, bundles.SPEC), env.path(bundles.SPEC))
    check_spec(app, spec)
    lock = unpacked.text(env, bundles.LOCK).decode("utf-8", "replace")
    parse_lock(lock)  # InvalidInput (field lock) for a line that pins nothing
    exists, version = _held_by(app, actor, name, lock)
    if version is not None:
        message = f"version {version} of {name} already holds this bundle's lock"
        return EnvImport(name, HELD, message, version=version), spec
    if not exists and mode is ImportMode.FAIL_IF_MISSING:
        message = f"code env {name!r} does not exist on this node (FAIL_IF_MISSING)"
        raise NotFound(message, field="name")
    if mode is ImportMode.DO_NOTHING:
        what = "a new version" if exists else "a new code env"
        return EnvImport(name, SKIPPED, f"would add {what} (DO_NOTHING)"), spec
    if not exists:
        require_create(actor)
    return EnvImport(name, QUEUED, "", created=not exists), spec


def _start(
    app: Codenv,
    actor: Actor,
    unpacked: Unpacked,
    env: BundledEnv,
    plan: EnvImport,
    spec: EnvSpec,
    origin: dict[str, Any],
) -> None:
    source = unpacked.env_dir(env.name)
    if plan.created:
        add_env(app, actor, plan.env, spec)
        _copy_resources(app, source, plan.env)
    with app.db.session() as session:
        env_id = queries.require_env(session, plan.env).id
    prefix = env.path("")
    digests = {
        path.removeprefix(prefix): digest
        for path, digest in unpacked.manifest.files.items()
        if path.startswith(prefix)
    }
    build_id = _stage(app, source, origin, digests)
    plan.build_id = enqueue_build(
        app, actor, env_id, plan.env, kind=BuildKind.IMPORT, build_id=build_id
    )
    what = "new code env" if plan.created else "new version"
    plan.message = f"{what} {plan.env}: import build {plan.build_id} queued"
    record(app, actor, "env.import", plan.env, {"bundle": origin["bundle"], "build": build_id})


def import_bundle(app: Codenv, actor: Actor, file: Path, request: ImportRequest) -> ImportReport:
    limits = BundleLimits(app.settings.max_bundle_bytes, app.settings.max_zip_members)
    scratch = app.settings.imports_dir / f"unpack-{uuid.uuid4().hex}"
    unpacked = unpack_bundle(file, scratch, limits)
    try:
        manifest = unpacked.manifest
        _check_pythons(app, manifest.envs)
        names = _target_names(unpacked, request)
        plans = [
            (env, *_plan_env(app, actor, unpacked, env, names[env.name], request.mode))
            for env in manifest.envs
        ]
        if any(plan.action == QUEUED for _, plan, _ in plans):
            require_sandbox(app)
        for env, plan, spec in plans:
            if plan.action == QUEUED:
                origin = _origin(unpacked, env, file, request.offline)
                _start(app, actor, unpacked, env, plan, spec, origin)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ImportReport(file.name, [plan for _, plan, _ in plans])
