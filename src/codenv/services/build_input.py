"""From a queued build to the one immutable input its executor runs: the whole decision.

The saved spec is checked again (a file or an interpreter may have gone since it was saved),
planned, and compared with the active revision; then every choice the build makes is written
down: resolution policy, kept lock, reuse of a cached resolution, which editables pip
installs, the init script and its env vars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codenv.builds.executor import BuildInput
from codenv.builds.init_script import InitScript
from codenv.domain.builds import BuildKind, ResolutionPolicy
from codenv.domain.errors import NotFound
from codenv.domain.install_options import Option
from codenv.domain.plan import init_script_on_update
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.services.app import Codenv
from codenv.services.boxes import BuildDirs, build_boxes
from codenv.services.plans import check_spec, describe_options_source
from codenv.services.runtime import env_vars
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow


@dataclass(frozen=True)
class BuildRequest:
    """What the queued build row says (the job carries only its id)."""

    build_id: str
    env_id: int
    env_name: str
    kind: BuildKind
    upgrade_all: bool
    rebuild: bool
    requested_by: str = ""


@dataclass(frozen=True)
class UpToDate:
    """The plan equals the active revision's, and nothing forces a rebuild."""

    number: int


@dataclass(frozen=True)
class Prepared:
    job: BuildInput
    options: tuple[Option, ...]
    spec: EnvSpec  # as the plan was made from it (the saved spec may change meanwhile)
    options_note: str  # where the install options come from, for the build log
    # An import's bundle (file, digest, source revision): the revision records it as a version.
    origin: dict[str, Any] | None = None


def init_script_input(layout: EnvLayout, build_id: str, script: str) -> InitScript:
    return InitScript(
        text=script,
        resources_dir=layout.resources_dir,
        env_vars_file=layout.env_vars_file,
        staged_env_vars=layout.staged_env_vars_file(build_id),
        current_vars=env_vars(layout),
    )


def build_dirs(app: Codenv, request: BuildRequest, number: int) -> tuple[EnvLayout, BuildDirs]:
    """The env's layout and the directories a build of revision `number` works in."""
    layout = EnvLayout.of(app.settings.envs_dir, request.env_name)
    dirs = BuildDirs(
        work_dir=app.settings.builds_dir / request.build_id,
        target=layout.revision(number),
        resources_dir=layout.resources_dir,
        staging_dir=layout.staging_dir(request.build_id),
    )
    return layout, dirs


def prepare_build(app: Codenv, request: BuildRequest) -> Prepared | UpToDate:
    with app.db.session() as session:
        env = session.get(CodeEnvRow, request.env_id)
        if env is None:
            raise NotFound(f"code env {request.env_name!r} was deleted", field="name")
        spec = EnvSpec.from_dict(env.spec)
        active = queries.revision(session, env.id, env.active_revision or 0)
        number = queries.next_revision_number(session, env.id)
        active_hash, active_lock = (active.plan_hash, active.lock) if active else (None, "")
    checked = check_spec(app, spec)
    forced = request.upgrade_all or request.rebuild
    if active is not None and active_hash == checked.plan.hash and not forced:
        return UpToDate(active.number)
    layout, dirs = build_dirs(app, request, number)
    script = init_script_on_update(spec)
    job = BuildInput(
        build_id=request.build_id,
        plan=checked.plan,
        number=number,
        target=dirs.target,
        work_dir=dirs.work_dir,
        policy=ResolutionPolicy.choose(bool(active_lock), request.upgrade_all),
        previous_lock="" if request.upgrade_all else active_lock,
        reuse_resolution=not forced,
        pip_editables=checked.pip_editables,
        init_script=init_script_input(layout, request.build_id, script) if script else None,
        boxes=build_boxes(app, checked.plan, checked.options, checked.pip_editables, dirs),
    )
    note = describe_options_source(checked.options_source)
    return Prepared(job, checked.options, spec, note)
