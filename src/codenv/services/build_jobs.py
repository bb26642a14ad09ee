"""The build job: claim a queued build, take the env's build slot, build a revision or run the
resources init script, record the outcome. Never raises for a build that failed."""

from __future__ import annotations

import shutil
import time
import traceback

from codenv.builds.executor import BuildJob, BuildOutcome, execute
from codenv.builds.init_script import InitScriptRun, commit_env_vars, run_init_script
from codenv.builds.logs import BuildLog
from codenv.builds.resolutions import ResolutionCache
from codenv.domain.errors import CodenvError, Conflict, NotFound
from codenv.domain.plan import Plan
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.jobs.liveness import holder_alive, holder_token
from codenv.services.app import Codenv
from codenv.services.builds import log_path
from codenv.services.plans import check_spec
from codenv.services.revisions import prune_revisions
from codenv.services.runtime import env_vars, refresh_kernel
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow, utcnow

LOCK_POLL_SECONDS = 0.25


def _claim(app: Codenv, build_id: str) -> BuildRow | None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is None or row.status != "queued" or row.env_id is None:
            return None
        row.holder = holder_token()
        return row


def _update_build(app: Codenv, build_id: str, **values: object) -> None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)


def _wait_for_build_slot(app: Codenv, build: BuildRow, log: BuildLog) -> None:
    assert build.env_id is not None
    announced = False
    while not queries.take_build_slot(app.db, build.env_id, build.id, holder_token()):
        with app.db.session() as session:
            lock = queries.build_slot(session, build.env_id)
            if lock is not None and not holder_alive(lock.holder):
                session.delete(lock)
                continue
        if not announced:
            log.step("waiting", "another build of this env is running")
            announced = True
        time.sleep(LOCK_POLL_SECONDS)


def run_build(app: Codenv, build_id: str) -> None:
    """The build job. Records its own outcome; never raises for a build that failed."""
    build = _claim(app, build_id)
    if build is None:
        return
    log = BuildLog(log_path(app, build_id), lambda step: _update_build(app, build_id, step=step))
    try:
        _wait_for_build_slot(app, build, log)
        _update_build(app, build_id, status="running", started_at=utcnow())
        if build.kind == "init":
            _run_init(app, build, log)
        else:
            _build_revision(app, build, log)
    except CodenvError as error:
        _fail(app, build, log, error.message)
    except Exception as error:
        log.write(traceback.format_exc())
        _fail(app, build, log, f"internal error: {error!r}")
    finally:
        with app.db.session() as session:
            queries.release_build_slot(session, build_id)
        log.close()


def _fail(app: Codenv, build: BuildRow, log: BuildLog, message: str) -> None:
    EnvLayout.of(app.settings.envs_dir, build.env_name).staged_env_vars_file(build.id).unlink(
        missing_ok=True
    )
    unchanged = "the active revision and its env vars are unchanged"
    log.step("failed", unchanged)
    log.write(message)
    _update_build(
        app, build.id, status="failed", step="failed", error=message, finished_at=utcnow()
    )


def _succeed(app: Codenv, build: BuildRow, log: BuildLog, revision: int, message: str) -> None:
    log.step("done", message)
    _update_build(
        app, build.id, status="succeeded", step="done", revision=revision, finished_at=utcnow()
    )


def _load(app: Codenv, build: BuildRow) -> tuple[CodeEnvRow, RevisionRow | None, int]:
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        if env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        active = queries.revision(session, env.id, env.active_revision or 0)
        return env, active, queries.next_revision_number(session, env.id)


def _build_revision(app: Codenv, build: BuildRow, log: BuildLog) -> None:
    env, active, number = _load(app, build)
    spec = EnvSpec.from_dict(env.spec)
    log.step("planning", f"Python {spec.python}, revision {number}")
    checked = check_spec(app, spec)
    forced = build.upgrade_all or build.rebuild
    if active and active.plan_hash == checked.plan.hash and not forced:
        _succeed(app, build, log, active.number, f"already up to date (revision {active.number})")
        return
    for line in checked.plan.requirement_lines:
        log.write(f"    {line}")
    log.write(f"install options: {' '.join(checked.plan.install_options)}")
    if checked.plan.venv_options:
        log.write(f"venv options: {' '.join(checked.plan.venv_options)}")
    _update_build(app, build.id, revision=number)
    layout = EnvLayout.of(app.settings.envs_dir, env.name)
    job = BuildJob(
        checked.plan,
        layout,
        number,
        app.settings.builds_dir / build.id,
        active.lock if active else None,
        build.upgrade_all,
        app.settings.build_timeout_seconds,
        build_id=build.id,
        rebuild=build.rebuild,
        resolutions=ResolutionCache(
            app.settings.resolutions_dir, app.settings.resolution_ttl_seconds
        ),
        init_script=_init_script_on_update(spec),
        current_vars=env_vars(layout),
    )
    outcome = execute(job, app.installer, log)
    _activate(app, build, checked.plan, spec, number, outcome)
    layout.switch_current(number)
    if outcome.staged_env_vars is not None:
        commit_env_vars(outcome.staged_env_vars, layout)
    refresh_kernel(app, env.name, spec)
    prune_revisions(app, env.id)
    log.step("done", f"revision {number} is active ({len(outcome.installed)} packages)")


def _init_script_on_update(spec: EnvSpec) -> str:
    script = spec.resources_init_script
    return script if spec.run_init_script_on_update and script.strip() else ""


def _run_init(app: Codenv, build: BuildRow, log: BuildLog) -> None:
    """Run the resources init script now, in the active revision."""
    env, active, _ = _load(app, build)
    spec = EnvSpec.from_dict(env.spec)
    if active is None:
        raise Conflict(f"code env {env.name!r} has never built successfully", field="name")
    if not spec.resources_init_script.strip():
        raise Conflict(f"code env {env.name!r} has no resources init script", field="script")
    layout = EnvLayout.of(app.settings.envs_dir, env.name)
    run = InitScriptRun(
        spec.resources_init_script,
        layout.python(),
        layout,
        build.id,
        app.settings.builds_dir / build.id,
        env_vars(layout),
        app.settings.build_timeout_seconds,
    )
    try:
        staged = run_init_script(run, log)
    finally:
        shutil.rmtree(run.work_dir, ignore_errors=True)
    commit_env_vars(staged, layout)
    refresh_kernel(app, env.name, spec)
    _succeed(app, build, log, active.number, f"init script done (revision {active.number})")


def _activate(
    app: Codenv, build: BuildRow, plan: Plan, spec: EnvSpec, number: int, outcome: BuildOutcome
) -> None:
    """Record the revision and make it active in one unit of work (the link follows)."""
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        if env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        session.add(
            RevisionRow(
                env_id=env.id,
                number=number,
                build_id=build.id,
                plan=plan.to_dict(),
                plan_hash=plan.hash,
                spec=spec.to_dict(),
                lock=outcome.lock,
                installed=[package.to_dict() for package in outcome.installed],
                size_bytes=outcome.size_bytes,
            )
        )
        env.active_revision = number
        row = session.get(BuildRow, build.id)
        assert row is not None
        row.status, row.step, row.revision, row.finished_at = "succeeded", "done", number, utcnow()
