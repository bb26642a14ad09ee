"""Containerized execution per env: which container configs it is built for, its images
(one per revision and config), image builds, and deleting images whose revision or env went.

An image build is a build of kind `image` (queue, log, cancel, recovery as any build) with an
image row that says which revision and config it is for; the job is `image_build.run_image`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from codenv.domain.builds import BuildKind, BuildStatus
from codenv.domain.containers import ContainerConfig, ContainerSelection, image_tag
from codenv.domain.errors import CodenvError, Conflict, InvalidInput, NotFound
from codenv.jobs.liveness import queue_holder
from codenv.services.actor import UPDATE, Actor, env_for
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.containers import config_names, container_config
from codenv.services.node_settings import require_design_node
from codenv.services.views import as_utc
from codenv.storage.models import BuildRow, CodeEnvRow, ImageRow, RevisionRow

Warn = Callable[[str], None]
# What a user reads for each state of an image's build.
_STATUS = {
    BuildStatus.QUEUED: "queued",
    BuildStatus.RUNNING: "building",
    BuildStatus.SUCCEEDED: "pushed",
    BuildStatus.FAILED: "failed",
    BuildStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class ImageInfo:
    config: str
    revision: int
    status: str  # queued | building | pushed | failed | cancelled | not built | deleting
    repository: str  # HOST[:PORT]/REPO/<repository name>
    tag: str
    digest: str | None
    reference: str | None  # repository:tag@digest, once pushed
    size_bytes: int
    pushed_bytes: int  # what the last push sent (layers the registry had are not sent)
    build_id: str | None
    error: str | None
    updated_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EnvImages:
    env: str
    repository_name: str  # the env's name as an image repository (lowercase, collision-free)
    containers: str  # none | all | C1,C2
    resources: str  # init | copy | none
    selected: list[str]
    missing_configs: list[str]  # selected configs that no longer exist
    active_revision: int | None
    images: list[ImageInfo]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images"] = [image.to_dict() for image in self.images]
        return data


def selection_of(env: CodeEnvRow) -> ContainerSelection:
    return ContainerSelection.from_dict(env.containers)


def set_containers(
    app: Codenv, actor: Actor, name: str, selection: ContainerSelection
) -> EnvImages:
    """Which configs the env is built for, and what its images get of its resources. Builds
    nothing: the next update (or `images build`) does."""
    require_design_node(app, f"change the containers of code env {name!r}")
    existing = config_names(app)
    unknown = selection.missing(existing)
    if unknown:
        raise NotFound(f"no container config named {unknown[0]!r}", field="containers")
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        old = selection_of(env).to_dict()
        env.containers = selection.to_dict()
        shown = env.name
    record(app, actor, "env.containers", shown, {"old": old, "new": selection.to_dict()})
    return env_images(app, actor, shown)


def _image_info(row: ImageRow, build: BuildRow | None) -> ImageInfo:
    status = _STATUS[BuildStatus(build.status)] if build else "not built"
    if row.deleting:
        status = "deleting"
    where = f"{row.registry_host}/{row.repository}"
    updated = as_utc(row.updated_at)
    return ImageInfo(
        config=row.config,
        revision=row.revision,
        status=status,
        repository=where,
        tag=row.tag,
        digest=row.digest,
        reference=f"{where}:{row.tag}@{row.digest}" if row.digest else None,
        size_bytes=row.size_bytes,
        pushed_bytes=row.pushed_bytes,
        build_id=row.build_id,
        error=build.error if build is not None and build.status == BuildStatus.FAILED else None,
        updated_at=updated.isoformat(timespec="seconds") if updated else None,
    )


def _not_built(env: CodeEnvRow, config: ContainerConfig, revision: int) -> ImageInfo:
    return ImageInfo(
        config=config.name,
        revision=revision,
        status="not built",
        repository=f"{config.registry}/{config.image_repository(env.name)}",
        tag=image_tag(revision),
        digest=None,
        reference=None,
        size_bytes=0,
        pushed_bytes=0,
        build_id=None,
        error=None,
        updated_at=None,
    )


def _configs(app: Codenv) -> dict[str, ContainerConfig]:
    return {name: container_config(app, name) for name in config_names(app)}


def env_images(app: Codenv, actor: Actor, name: str) -> EnvImages:
    """The env's selection and its images, newest revision first; the configs it is built
    for show "not built" for the active revision until built."""
    from codenv.domain.containers import repository_name

    configs = _configs(app)
    with app.db.session() as session:
        env = env_for(session, actor, name)
        selection = selection_of(env)
        rows = session.scalars(
            select(ImageRow)
            .where(ImageRow.env_id == env.id)
            .order_by(ImageRow.revision.desc(), ImageRow.config)
        ).all()
        builds = {b.id: b for b in session.scalars(select(BuildRow).where(
            BuildRow.id.in_([row.build_id for row in rows])))}  # fmt: skip
        images = [_image_info(row, builds.get(row.build_id)) for row in rows]
        held = {(image.revision, image.config) for image in images}
        chosen = selection.chosen(list(configs))
        if env.active_revision is not None:
            images += [
                _not_built(env, configs[c], env.active_revision)
                for c in chosen
                if (env.active_revision, c) not in held
            ]
        return EnvImages(
            env=env.name,
            repository_name=repository_name(env.name),
            containers=selection.describe(),
            resources=selection.resources.value,
            selected=chosen,
            missing_configs=selection.missing(list(configs)),
            active_revision=env.active_revision,
            images=sorted(images, key=lambda i: (-i.revision, i.config)),
        )


def _queue_image(
    app: Codenv, session: Session, env: CodeEnvRow, config: ContainerConfig, revision: int, by: str
) -> str:
    """An image build's rows: the build (kind image) and the image it makes (kept across
    rebuilds of the same revision and config: its digest stays until a new push)."""
    build_id = uuid.uuid4().hex
    holder = queue_holder(app.queue)
    session.add(
        BuildRow(
            id=build_id,
            env_id=env.id,
            env_name=env.name,
            status=BuildStatus.QUEUED,
            kind=BuildKind.IMAGE,
            requested_by=by,
            holder=holder,
            revision=revision,
        )
    )
    row = session.scalar(
        select(ImageRow).where(
            ImageRow.env_id == env.id, ImageRow.revision == revision, ImageRow.config == config.name
        )
    )
    if row is None:
        row = ImageRow(env_id=env.id, env_name=env.name, revision=revision, config=config.name)
        session.add(row)
    row.registry_host, row.repository = config.registry, config.image_repository(env.name)
    row.tag, row.build_id, row.deleting = image_tag(revision), build_id, False
    return build_id


def queue_images(
    app: Codenv, env_id: int, revision: int, requested_by: str, only: str | None = None
) -> list[str]:
    """Queue the image builds of one revision: for the configs the env is built for (or
    only `only`); their ids, submitted to the queue after the commit."""
    configs = _configs(app)
    with app.db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        if env is None:
            return []
        chosen = selection_of(env).chosen(list(configs))
        if only is not None:
            chosen = [name for name in chosen if name.casefold() == only.casefold()]
        ids = [_queue_image(app, session, env, configs[c], revision, requested_by) for c in chosen]
    for build_id in ids:
        app.queue.submit(build_id)
    return ids


def build_images(app: Codenv, actor: Actor, name: str, config: str | None = None) -> list[str]:
    """`codenv images build NAME [--config C]`: the active revision's images, built again."""
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        env_id, shown, active = env.id, env.name, env.active_revision
        selection = selection_of(env)
    if active is None:
        raise Conflict(f"code env {shown!r} has never built successfully", field="name")
    chosen = selection.chosen(config_names(app))
    if config is not None and config.casefold() not in {c.casefold() for c in chosen}:
        raise InvalidInput(
            f"code env {shown!r} is not built for container config {config!r} "
            f"(it is built for: {', '.join(chosen) or 'none'}; "
            f"`codenv save {shown} --containers ...`)",
            field="config",
        )
    if not chosen:
        raise InvalidInput(
            f"code env {shown!r} is built for no container config "
            f"(`codenv save {shown} --containers all|C1,C2`)",
            field="containers",
        )
    ids = queue_images(app, env_id, active, actor.name, config)
    record(app, actor, "env.images.build", shown, {"revision": active, "builds": ids})
    return ids


def _stale(session: Session, env_id: int | None) -> list[ImageRow]:
    """Images to delete: their revision was pruned, their env deleted, or already marked."""
    pruned = select(RevisionRow.number).where(
        RevisionRow.env_id == ImageRow.env_id, RevisionRow.pruned.is_(True)
    )
    query = select(ImageRow).where(
        or_(ImageRow.deleting.is_(True), ImageRow.env_id.is_(None), ImageRow.revision.in_(pruned))
    )
    if env_id is not None:
        query = query.where(or_(ImageRow.env_id == env_id, ImageRow.env_id.is_(None)))
    return list(session.scalars(query))


def delete_stale_images(app: Codenv, warn: Warn, env_id: int | None = None) -> int:
    """Delete from their registry the images of pruned revisions and deleted envs; an image
    the registry could not delete stays marked and is tried again later. The count deleted."""
    with app.db.session() as session:
        rows = _stale(session, env_id)
        for row in rows:
            row.deleting = True
        stale = [(r.id, r.config, r.registry_host, r.repository, r.digest) for r in rows]
    if not stale:
        return 0
    # The registry client loads only when there is something to delete (start-up of
    # rollback and the like: tests/test_cli_startup.py).
    from codenv.services.image_push import delete_pushed

    deleted = 0
    for image_id, config, registry, repository, digest in stale:
        try:
            if digest:
                delete_pushed(app, config, registry, repository, digest)
        except CodenvError as error:
            warn(f"warning: deleting image {registry}/{repository}@{digest} failed: {error}")
            # Unreachable for good (its config went): forgotten, the warning says where.
            if error.field != "config":
                continue
        with app.db.session() as session:
            gone = session.get(ImageRow, image_id)
            if gone is not None:
                session.delete(gone)
        deleted += 1
    return deleted
