"""The build job: claim a queued build, take the env's build slot, build a revision or run
the resources init script, record the outcome. Never raises for a build that failed."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import replace

from codenv.backends.base import Run
from codenv.builds.executor import BuildOutcome, execute
from codenv.builds.init_script import run_init_script
from codenv.builds.logs import BuildLog
from codenv.domain.builds import BuildKind, BuildStatus, check_transition
from codenv.domain.errors import BuildCancelled, CodenvError, Conflict, NotFound
from codenv.domain.install_options import parse_options, to_tokens
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.jobs.liveness import holder_token
from codenv.sandbox import SandboxPolicy
from codenv.services.activation import settle_env
from codenv.services.app import Codenv
from codenv.services.boxes import BuildDirs, require_sandbox, script_box
from codenv.services.build_input import (
    BuildRequest,
    Prepared,
    UpToDate,
    init_script_input,
    prepare_build,
)
from codenv.services.import_input import prepare_import
from codenv.services.leases import BuildWatch, claim, free_stale_slot
from codenv.services.log_store import open_build_log
from codenv.services.node_settings import OFF, sandbox_mode
from codenv.services.slots import lease_until
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow, utcnow

Box = SandboxPolicy | None
SLOT_POLL_SECONDS = 0.25


def _claim(app: Codenv, build_id: str) -> BuildRequest | None:
    """The build, claimed by this process (None: not claimable, e.g. a redelivered task)."""
    if not claim(app, build_id):
        return None
    with app.db.session() as session:
        row = session.get_one(BuildRow, build_id)
        assert row.env_id is not None  # a claim needs an env
        kind = BuildKind(row.kind)
        return BuildRequest(
            row.id, row.env_id, row.env_name, kind, row.upgrade_all, row.rebuild, row.requested_by
        )


def _update_build(app: Codenv, build_id: str, **values: object) -> None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)


def _move(app: Codenv, build_id: str, status: BuildStatus, **values: object) -> None:
    """Change the build's state by a named transition (Conflict when it may not)."""
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is None:
            return
        row.status = check_transition(row.status, status)
        for key, value in values.items():
            setattr(row, key, value)


def _wait_for_build_slot(
    app: Codenv, build: BuildRequest, log: BuildLog, watch: BuildWatch
) -> None:
    announced = False
    holder = holder_token()
    while not queries.take_build_slot(
        app.db, build.env_id, build.build_id, holder, lease_until(app)
    ):
        if free_stale_slot(app, build.env_id):
            continue
        if watch.event.is_set():
            raise BuildCancelled(
                watch.lost or "the build was cancelled while it waited for another build"
            )
        if not announced:
            log.step("waiting", "another build of this env is running")
            announced = True
        time.sleep(SLOT_POLL_SECONDS)
    watch.holds_slot = True


def _start(app: Codenv, build_id: str) -> None:
    """Running, if still this process's claim (another may hold it if this one's expired)."""
    with app.db.session() as session:
        row = session.get_one(BuildRow, build_id)
        if row.holder != holder_token():
            raise BuildCancelled("another worker claimed this build after this one's lease expired")
        row.status = check_transition(row.status, BuildStatus.RUNNING)
        row.started_at = utcnow()


def run_build(app: Codenv, build_id: str) -> None:
    """The build job. Records its own outcome; never raises for a build that failed."""
    build = _claim(app, build_id)
    if build is None:
        return
    log = open_build_log(app, build_id)
    built: int | None = None  # a new revision, whose images are queued once the slot is free
    with BuildWatch(app, build_id) as watch:
        try:
            _wait_for_build_slot(app, build, log, watch)
            _start(app, build_id)
            run = Run(log, app.settings.build_timeout_seconds, watch.event)
            if build.kind is BuildKind.INIT:
                _run_init(app, build, log, run)
            elif build.kind is BuildKind.IMAGE:
                _build_image(app, build, log, run)
            else:
                built = _build_revision(app, build, log, run)
        except CodenvError as error:
            _end(app, build, log, *_outcome(watch, error))
        except Exception as error:
            log.write(traceback.format_exc())
            _end(app, build, log, BuildStatus.FAILED, f"internal error: {error!r}")
        finally:
            if watch.holds_slot:  # a slot of this build id held by another claimer stays
                with app.db.session() as session:
                    queries.release_build_slot(session, build_id)
            shutil.rmtree(app.settings.imports_dir / build_id, ignore_errors=True)
            if built is not None:
                _queue_images(app, build, built, log)
            log.close()


def _outcome(watch: BuildWatch, error: CodenvError) -> tuple[BuildStatus, str]:
    # A lost lease stops the build as a cancel does (however its steps fail when stopped),
    # but it failed: no one cancelled it.
    if watch.lost:
        return BuildStatus.FAILED, watch.lost
    if isinstance(error, BuildCancelled):
        return BuildStatus.CANCELLED, error.message
    return BuildStatus.FAILED, error.message


def _has_active(app: Codenv, env_id: int) -> bool:
    with app.db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        return env is not None and env.active_revision is not None


def _end(
    app: Codenv, build: BuildRequest, log: BuildLog, status: BuildStatus, message: str
) -> None:
    """A build that ends without a new revision: nothing of the env changed."""
    layout = EnvLayout.of(app.settings.envs_dir, build.env_name)
    layout.drop_staged(build.build_id)
    unchanged = (
        "the active revision and its env vars are unchanged"
        if _has_active(app, build.env_id)
        else "the env has no active revision yet"
    )
    log.step(status.value, unchanged)
    log.write(message)
    with app.db.session() as session:
        row = session.get(BuildRow, build.build_id)
        # Not a build reaped, or claimed again by another worker, meanwhile.
        if (
            row is not None
            and row.holder == holder_token()
            and not BuildStatus(row.status).finished
        ):
            row.status = check_transition(row.status, status)
            row.step, row.error, row.finished_at = status.value, message, utcnow()


def _reporter(app: Codenv, build_id: str, log: BuildLog) -> Callable[[str, str], None]:
    def report(stage: str, detail: str) -> None:
        log.step(stage, detail)
        _update_build(app, build_id, step=stage)

    return report


def _build_revision(app: Codenv, build: BuildRequest, log: BuildLog, run: Run) -> int | None:
    """The new revision's number (None: already up to date)."""
    log.step("planning", f"code env {build.env_name}")
    prepared = (
        prepare_import(app, build) if build.kind is BuildKind.IMPORT else prepare_build(app, build)
    )
    if isinstance(prepared, UpToDate):
        message = f"already up to date (revision {prepared.number})"
        log.step("done", message)
        _move(app, build.build_id, BuildStatus.SUCCEEDED, step="done",
              revision=prepared.number, finished_at=utcnow())  # fmt: skip
        return None
    job = prepared.job
    log.write(f"Python {job.plan.python_version}, revision {job.number}")
    for line in job.plan.requirement_lines:
        log.write(f"    {line}")
    tokens = " ".join(to_tokens(prepared.options))
    log.write(f"install options ({prepared.options_note}): {tokens}")
    if job.plan.venv_options:
        log.write(f"venv options: {' '.join(job.plan.venv_options)}")
    _update_build(app, build.build_id, revision=job.number)
    run = Run(run.log, run.timeout, run.cancelled, prepared.options)
    outcome = execute(job, app.tools, run, _reporter(app, build.build_id, log))
    count = len(outcome.installed)
    log.step(
        "done", f"revision {job.number} is active ({count} package{'' if count == 1 else 's'})"
    )
    _commit_revision(app, build, prepared, outcome)
    settle_env(app, build.env_id, log.write)
    return job.number


def _queue_images(app: Codenv, build: BuildRequest, number: int, log: BuildLog) -> None:
    """The new revision's images, for the configs the env is built for: builds of their own,
    so that an image that fails never fails (nor delays) the revision."""
    from codenv.services.images import queue_images

    try:
        ids = queue_images(app, build.env_id, number, build.requested_by or "codenv")
    except CodenvError as error:
        log.write(f"warning: the image builds could not be queued: {error.message}")
        return
    if ids:
        log.write(f"image builds queued: {', '.join(ids)} (`codenv images {build.env_name}`)")


def _build_image(app: Codenv, build: BuildRequest, log: BuildLog, run: Run) -> None:
    from codenv.services.image_build import run_image

    report = _reporter(app, build.build_id, log)

    def checked(stage: str, detail: str) -> None:
        if run.cancelled.is_set():
            raise BuildCancelled("the image build was cancelled")
        report(stage, detail)

    run_image(app, build.build_id, run, checked)


def _commit_revision(
    app: Codenv, build: BuildRequest, prepared: Prepared, outcome: BuildOutcome
) -> None:
    """One transaction: the revision row, the env's active revision, the build's success."""
    job = prepared.job
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        row = session.get(BuildRow, build.build_id)
        if env is None or row is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        session.add(
            RevisionRow(
                env_id=env.id,
                number=job.number,
                build_id=build.build_id,
                plan=job.plan.to_dict(),
                plan_hash=job.plan.hash,
                spec=prepared.spec.to_dict(),
                lock=outcome.lock,
                installed=[package.to_dict() for package in outcome.installed],
                warnings=list(outcome.warnings),
                size_bytes=outcome.size_bytes,
                origin=prepared.origin,
            )
        )
        if prepared.origin is not None:
            # The env's spec is the newest version's: what `show` compares the active one with.
            env.spec = prepared.spec.to_dict()
        env.active_revision, env.settled = job.number, False
        row.status = check_transition(row.status, BuildStatus.SUCCEEDED)
        row.step, row.revision, row.finished_at = "done", job.number, utcnow()


def _init_box(app: Codenv, build: BuildRequest, layout: EnvLayout, active: int) -> Box:
    if sandbox_mode(app) == OFF:
        return None
    require_sandbox(app)
    with app.db.session() as session:
        row = queries.revision(session, build.env_id, active)
        plan = row.plan if row else {}
    interpreter = plan.get("interpreter") or str(layout.python(active))
    options = parse_options(tuple(plan.get("install_options", ())))
    build_id = build.build_id
    dirs = BuildDirs(
        work_dir=app.settings.builds_dir / build_id,
        target=layout.revision(active),
        resources_dir=layout.resources_dir,
        staging_dir=layout.staging_dir(build_id),
    )
    return script_box(app, interpreter, dirs, options)


def _run_init(app: Codenv, build: BuildRequest, log: BuildLog, run: Run) -> None:
    """Run the resources init script now, in the active revision."""
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        if env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        spec, active = EnvSpec.from_dict(env.spec), env.active_revision
    if active is None:
        raise Conflict(f"code env {build.env_name!r} has never built successfully", field="name")
    if not spec.resources_init_script.strip():
        raise Conflict(f"code env {build.env_name!r} has no resources init script", field="script")
    layout = EnvLayout.of(app.settings.envs_dir, build.env_name)
    script = init_script_input(layout, build.build_id, spec.resources_init_script)
    work_dir = app.settings.builds_dir / build.build_id
    work_dir.mkdir(parents=True, exist_ok=True)
    boxed = replace(run, box=_init_box(app, build, layout, active))
    log.step("init script", f"running the resources init script in {script.resources_dir}")
    try:
        run_init_script(script, layout.python(active), work_dir, boxed)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    log.step("done", f"init script done (revision {active})")
    with app.db.session() as session:
        row = session.get(BuildRow, build.build_id)
        env = session.get(CodeEnvRow, build.env_id)
        if row is None or env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        row.status = check_transition(row.status, BuildStatus.SUCCEEDED)
        row.step, row.revision, row.finished_at = "done", active, utcnow()
        env.settled = False
    settle_env(app, build.env_id, log.write)
