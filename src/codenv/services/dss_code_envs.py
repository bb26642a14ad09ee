"""Use cases the DSS-compatible API needs that no other service offers as one call.

Each one composes the existing services (and their permission checks): an env's settings as
one read, applying a settings change field by field with each field's own right, the env's
logs as files, its usages, the default interpreter of a create that names none, and creating
an env from a package set (DSS's "preset"). No rule is decided here that another service
already decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codenv.domain.errors import NotFound, PermissionDenied
from codenv.domain.spec import EnvSpec, SetRef, SpecChanges
from codenv.envdirs.kernels import kernel_name
from codenv.services import builds, envs, logs, permissions, resources
from codenv.services.access_views import EnvPermissions
from codenv.services.actor import Actor, env_for
from codenv.services.app import Codenv
from codenv.services.log_store import log_states
from codenv.services.resources import InitScript
from codenv.services.views import BuildInfo, EnvInfo, UpdateResult
from codenv.storage import queries

# A log is read whole by DSS clients; beyond this its end is cut (and said so).
MAX_LOG_BYTES = 16 << 20


@dataclass(frozen=True)
class EnvSettings:
    """Everything an env's settings page shows, as the caller may see it."""

    info: EnvInfo
    permissions: EnvPermissions
    # None when the caller may not change the env (reading the script needs that right).
    init_script: InitScript | None
    # The active revision's packages ({"name", "version"}); empty before the first build.
    actual: list[dict[str, Any]]
    # The active revision's Python version (3.X.Y), None before the first build.
    python_version: str | None
    kernel: str | None


def env_settings(app: Codenv, actor: Actor, name: str) -> EnvSettings:
    info = envs.show_env(app, actor, name)
    script = None
    if info.capabilities.may_update:
        script = resources.get_init_script(app, actor, name)
    actual, python_version = _active(app, actor, name)
    return EnvSettings(
        info=info,
        permissions=permissions.get_permissions(app, actor, name),
        init_script=script,
        actual=actual,
        python_version=python_version,
        kernel=kernel_of(info),
    )


def kernel_of(info: EnvInfo) -> str | None:
    """The env's Jupyter kernel name, when its spec asks for Jupyter support."""
    return kernel_name(info.name) if info.spec.get("install_jupyter_support") else None


def _active(app: Codenv, actor: Actor, name: str) -> tuple[list[dict[str, Any]], str | None]:
    # The recorded list of the active revision, without listing the live env again (the
    # settings read does that once, through show_env's drift check).
    with app.db.session() as session:
        env = env_for(session, actor, name)
        row = queries.revision(session, env.id, env.active_revision or 0)
        if row is None:
            return [], None
        packages = [dict(package) for package in row.installed]
        version = str(row.plan["python_version"])
    return sorted(packages, key=lambda package: str(package["name"]).lower()), version


@dataclass(frozen=True)
class PermissionChange:
    owner: str | None = None
    usable_by_all: bool | None = None
    grants: tuple[tuple[str, str], ...] | None = None

    @property
    def empty(self) -> bool:
        return self.owner is None and self.usable_by_all is None and self.grants is None


@dataclass(frozen=True)
class ScriptChange:
    script: str | None = None
    run_on_update: bool | None = None
    run_on_api_node: bool | None = None

    @property
    def empty(self) -> bool:
        return self.script is None and self.run_on_update is None and self.run_on_api_node is None


@dataclass(frozen=True)
class SettingsChange:
    """What a settings save changes, part by part (an empty part is left alone)."""

    spec: SpecChanges | None = None
    script: ScriptChange = field(default_factory=ScriptChange)
    permissions: PermissionChange = field(default_factory=PermissionChange)


def apply_settings(app: Codenv, actor: Actor, name: str, change: SettingsChange) -> None:
    """Each part through its own service and its own right. The rights are all checked
    before anything is saved, so a refused part leaves the others unsaved too."""
    capabilities = envs.show_env(app, actor, name).capabilities
    if (change.spec is not None or not change.script.empty) and not capabilities.may_update:
        raise PermissionDenied(f"you may not change code env {name!r}", field="specPackageList")
    if not change.permissions.empty and not capabilities.may_manage_users:
        raise PermissionDenied(
            f"you may not change the permissions of code env {name!r}", field="permissions"
        )
    if change.spec is not None:
        envs.save_spec(app, actor, name, change.spec)
    if not change.script.empty:
        resources.set_init_script(
            app,
            actor,
            name,
            script=change.script.script,
            run_on_update=change.script.run_on_update,
            run_on_api_node=change.script.run_on_api_node,
        )
    if not change.permissions.empty:
        grants = change.permissions.grants
        permissions.set_permissions(
            app,
            actor,
            name,
            owner=change.permissions.owner,
            usable_by_all=change.permissions.usable_by_all,
            grants=list(grants) if grants is not None else None,
        )


def default_python(app: Codenv) -> str:
    """The Python of a create that names none: the newest installed version that is not
    deprecated (the newest of all when every one is)."""
    from codenv.services.interpreters import discovery

    found = discovery(app).found
    if not found:
        raise NotFound("no Python interpreter is installed on this node", field="python")
    supported = [item for item in found if not item.deprecated] or list(found)
    return max(supported, key=lambda item: item.version_info).minor


def set_jupyter_support(app: Codenv, actor: Actor, name: str, active: bool) -> UpdateResult:
    """Save the option when it changes, then update (at once "up to date" when nothing
    changed since the active revision)."""
    spec = envs.show_env(app, actor, name).spec
    if bool(spec.get("install_jupyter_support")) != active:
        envs.save_spec(app, actor, name, SpecChanges(install_jupyter_support=active))
    return builds.request_update(app, actor, name)


@dataclass(frozen=True)
class LogFile:
    build: BuildInfo
    size: int
    modified_ms: int


def env_logs(app: Codenv, actor: Actor, name: str) -> list[LogFile]:
    """One log per build of the env that wrote one, newest first: stored in the database, or
    in its file for a build logged before logs were."""
    listed = builds.list_builds(app, actor, name)
    stored = log_states(app.db, [build.id for build in listed])
    found: list[LogFile] = []
    for build in listed:
        if build.id in stored:
            state = stored[build.id]
            found.append(LogFile(build, state.size, state.modified_ms))
            continue
        try:
            stat = builds.log_path(app, build.id).stat()
        except FileNotFoundError:
            continue
        found.append(LogFile(build, stat.st_size, int(stat.st_mtime * 1000)))
    return found


def env_log(app: Codenv, actor: Actor, name: str, build_id: str) -> str:
    """The log of one of the env's builds, whole (up to MAX_LOG_BYTES)."""
    owned = {build.id for build in builds.list_builds(app, actor, name)}
    if build_id not in owned:
        raise NotFound(f"code env {name!r} has no build log {build_id!r}", field="log")
    parts: list[str] = []
    offset = read = 0
    while read < MAX_LOG_BYTES:
        text, offset = logs.read_log(app, actor, build_id, offset)
        if not text:
            return "".join(parts)
        parts.append(text)
        read += len(text)
    parts.append(f"\n[log cut at {MAX_LOG_BYTES} bytes]\n")
    return "".join(parts)


def env_usages(app: Codenv, actor: Actor, name: str) -> list[dict[str, Any]]:
    """codenv has no projects: no env is used by one. The env must exist for the caller."""
    permissions.get_permissions(app, actor, name)
    return []


def delete_everything(app: Codenv, actor: Actor, name: str) -> None:
    """Delete as DSS does: the env and everything of it, resources included."""
    envs.delete_env(app, actor, name, delete_resources=True)


@dataclass(frozen=True)
class PresetOutcome:
    env: str
    created: bool
    build_id: str | None
    message: str


def create_from_set(
    app: Codenv,
    actor: Actor,
    name: str,
    ref: str,
    *,
    python: str | None,
    allow_update: bool,
) -> PresetOutcome:
    """An env with package set `ref` (`id` or `id:variant`), or, when `name` exists and
    `allow_update`, the set added to it and the env updated."""
    parsed = SetRef.parse(ref)
    app.catalog.get(parsed.id).lines(parsed.variant)  # an unknown set or variant: refused
    with app.db.session() as session:
        exists = queries.env_by_name(session, name) is not None
    if not exists or not allow_update:
        spec = EnvSpec(python=python or default_python(app), package_sets=(parsed,))
        created = envs.create_env(app, actor, name, spec)
        return PresetOutcome(created.env, True, created.build_id, f"code env {name!r} created")
    current = envs.show_env(app, actor, name).spec.get("package_sets", [])
    if ref not in current:
        removed = tuple(text for text in current if SetRef.parse(text).id == parsed.id)
        changes = SpecChanges(add_sets=(ref,), remove_sets=removed, python=python)
        envs.save_spec(app, actor, name, changes)
    update = builds.request_update(app, actor, name)
    return PresetOutcome(update.env, False, update.build_id, update.message)
