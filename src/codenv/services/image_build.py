"""The image build job: one revision of an env, for one container config, as an OCI image
pushed to the config's registry. No container engine: codenv installs the revision's lock at
the env's path in the image (a sandbox binds a scratch directory there), brings the
interpreter at its own path, writes the layers itself and pushes them.

Layers, bottom up: the base image's; the interpreter's; one per large distribution, largest
first (envs sharing numpy share its layer, in the registry and on nodes); the resources dir
(by the env's choice); a small head layer (dist-info, scripts, small packages). Nothing of the
local revision is touched: a failed image build leaves it as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from codenv.backends.base import LogSink, Run
from codenv.builds.executor import StageReporter
from codenv.builds.init_script import InitScript, run_init_script
from codenv.core_package.codenv_runtime.resources import load_env_vars_file
from codenv.domain.builds import BuildStatus, check_transition
from codenv.domain.containers import ContainerConfig, ContainerResources
from codenv.domain.errors import Conflict, NotFound
from codenv.domain.install_options import parse_options
from codenv.envdirs.layout import EnvLayout
from codenv.images.layers import Layer, blob_path, write_blob, write_layer
from codenv.images.oci import OCI_CONFIG, image_config, image_manifest
from codenv.images.registry import RegistryClient
from codenv.images.venv_layers import LayerSpec, interpreter_layer, tree_layer, venv_layers
from codenv.services.app import Codenv
from codenv.services.boxes import image_box
from codenv.services.containers import container_config
from codenv.services.image_push import (
    REGISTRY_TIMEOUT,
    base_blob_sources,
    endpoint,
    layer_opener,
    layer_sources,
    load_base,
    mount_sources,
    push_image,
)
from codenv.services.images import selection_of
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, ImageRow, utcnow


@dataclass(frozen=True)
class ImageJob:
    """What one image build reads from the database, once."""

    build_id: str
    env_name: str
    revision: int
    config: ContainerConfig
    resources: ContainerResources
    plan: dict[str, Any]
    lock: str
    init_script: str
    repository: str
    tag: str


def _load(app: Codenv, build_id: str) -> ImageJob:
    from sqlalchemy import select

    with app.db.session() as session:
        image = session.scalar(select(ImageRow).where(ImageRow.build_id == build_id))
        env = session.get(CodeEnvRow, image.env_id) if image and image.env_id else None
        if image is None or env is None:
            raise NotFound("the image's code env was deleted", field="name")
        revision = queries.revision(session, env.id, image.revision)
        if revision is None or revision.pruned:
            raise Conflict(
                f"revision {image.revision} of {env.name!r} was pruned", field="revision"
            )
        config_name = image.config
        make = partial(
            ImageJob,
            build_id=build_id,
            env_name=env.name,
            revision=image.revision,
            resources=selection_of(env).resources,
            plan=dict(revision.plan),
            lock=revision.lock,
            init_script=str(revision.spec.get("resources_init_script", "")),
            repository=image.repository,
            tag=image.tag,
        )
    # Out of the unit of work: it opens its own (one connection per job at a time).
    return make(config=container_config(app, config_name))


# Where an image build's box shows the node's wheels (the core package): a path every node
# shares, so that the install records the same `direct_url.json` on every node.
BOX_WHEELS = Path("/codenv-wheels")


def _image_lock(lock: str, wheels_dir: Path) -> str:
    """The revision's lock as an image installs it: the node's wheels at BOX_WHEELS; a local
    source installed editable in the env installed as a regular package in the image (its
    sources stay on this node); no comments (`# via` names the build's scratch file)."""
    text = lock.replace(f"{wheels_dir.as_uri()}/", f"{BOX_WHEELS.as_uri()}/")
    return "".join(
        f"{line.removeprefix('-e ').strip()}\n" if line.startswith("-e ") else f"{line}\n"
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
    )


@dataclass(frozen=True)
class Scratch:
    root: Path

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def resources(self) -> Path:
        return self.root / "resources"

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def make(self) -> None:
        for path in (self.env, self.resources, self.inputs, self.blobs):
            path.mkdir(parents=True, exist_ok=True)


def _install(app: Codenv, job: ImageJob, scratch: Scratch, run: Run) -> Run:
    """The env at its path in the image, in a box that shows the scratch dir there."""
    options = parse_options(tuple(job.plan.get("install_options", ())))
    config = job.config
    box = image_box(
        app,
        job.plan["interpreter"],
        options,
        scratch.inputs,
        ((scratch.env, Path(config.env_path)), (scratch.resources, Path(config.resources_path))),
        BOX_WHEELS,
    )
    boxed = Run(run.log, run.timeout, run.cancelled, options, box)
    lock = scratch.inputs / "lock.txt"
    lock.write_text(_image_lock(job.lock, app.settings.wheels_dir), "utf-8")
    venv_options = tuple(job.plan.get("venv_options", ()))
    app.tools.installer.install_at(
        boxed, job.plan["interpreter"], venv_options, lock, Path(config.env_path)
    )
    _drop_install_stamps(scratch.env)
    return boxed


def _drop_install_stamps(env: Path) -> None:
    """uv's record of when it installed from a local file (a time, different at every
    build), and its line in RECORD: the same revision then gives the same image anywhere."""
    for stamp in env.glob("lib/python*/site-packages/*.dist-info/uv_cache.json"):
        stamp.unlink()
        record = stamp.with_name("RECORD")
        listed = f"{stamp.parent.name}/{stamp.name},"
        lines = record.read_text("utf-8").splitlines(keepends=True)
        record.write_text("".join(x for x in lines if not x.startswith(listed)), "utf-8")


def _resources(app: Codenv, job: ImageJob, scratch: Scratch, boxed: Run) -> dict[str, str]:
    """The image's resources dir and env vars, by the env's choice."""
    inside = job.config.resources_path
    if job.resources is ContainerResources.COPY:
        layout = EnvLayout.of(app.settings.envs_dir, job.env_name)
        if layout.resources_dir.is_dir():
            shutil.copytree(layout.resources_dir, scratch.resources, symlinks=True,
                            dirs_exist_ok=True)  # fmt: skip
        return {**load_env_vars_file(layout.env_vars_file, inside), "CODENV_RESOURCES_DIR": inside}
    if job.resources is ContainerResources.INIT and job.init_script.strip():
        script = InitScript(
            text=job.init_script,
            resources_dir=scratch.resources,
            env_vars_file=scratch.inputs / "no-env-vars.json",
            staged_env_vars=scratch.inputs / "vars" / "resources_env.json",
            box_resources_dir=Path(inside),
        )
        python = Path(job.config.env_path) / "bin" / "python"
        boxed.log.write("running the resources init script in the image's resources dir")
        staged = run_init_script(script, python, scratch.inputs, boxed)
        return {**load_env_vars_file(staged, inside), "CODENV_RESOURCES_DIR": inside}
    return {}


def _layer_specs(app: Codenv, job: ImageJob, scratch: Scratch) -> list[LayerSpec]:
    from codenv.domain.catalog import sharing_rank
    from codenv.sandbox import interpreter_prefix

    config = job.config
    specs = [interpreter_layer(interpreter_prefix(job.plan["interpreter"]))]
    shared = sharing_rank(app.catalog)
    *packages, head = venv_layers(scratch.env, PurePosixPath(config.env_path), shared=shared)
    specs += packages
    if job.resources is not ContainerResources.NONE and any(scratch.resources.iterdir()):
        specs.append(tree_layer(scratch.resources, PurePosixPath(config.resources_path),
                                "codenv: resources"))  # fmt: skip
    return [*specs, head]


def _image_env(job: ImageJob, base_env: list[str], resources_env: dict[str, str]) -> dict[str, str]:
    base_path = next((e.split("=", 1)[1] for e in base_env if e.startswith("PATH=")), "")
    path = f"{job.config.env_path}/bin" + (f":{base_path}" if base_path else "")
    return {"PATH": path, "VIRTUAL_ENV": job.config.env_path, **dict(job.config.env),
            **resources_env}  # fmt: skip


def _labels(job: ImageJob, wheels_dir: Path) -> dict[str, str]:
    # The lock as the image installs it: the node's own paths are not in it.
    lock = _image_lock(job.lock, wheels_dir)
    return {
        "io.codenv.env": job.env_name,
        "io.codenv.revision": str(job.revision),
        "io.codenv.config": job.config.name,
        "io.codenv.python": str(job.plan.get("python_version", "")),
        "io.codenv.lock-sha256": hashlib.sha256(lock.encode("utf-8")).hexdigest(),
    }


def _write_layers(specs: list[LayerSpec], scratch: Scratch, log: LogSink) -> list[Layer]:
    layers = []
    for spec in specs:
        layer = write_layer(spec.entries, scratch.blobs, spec.created_by)
        log.write(f"layer {layer.descriptor.digest[7:19]} {spec.created_by}: "
                  f"{layer.descriptor.size / 1e6:.1f} MB")  # fmt: skip
        layers.append(layer)
    return layers


def run_image(app: Codenv, build_id: str, run: Run, report: StageReporter) -> None:
    """Build and push one image; records the image's digest and the build's success.
    `report(stage, detail)` before each stage (it raises when the build is cancelled)."""
    log = run.log
    report("planning", "image build")
    job = _load(app, build_id)
    config = job.config
    where = f"{config.registry}/{job.repository}:{job.tag}"
    log.write(f"image {where} of {job.env_name} revision {job.revision} (config {config.name})")
    scratch = Scratch(app.settings.builds_dir / build_id)
    shutil.rmtree(scratch.root, ignore_errors=True)
    scratch.make()
    try:
        base = load_base(config, log.write)
        report("installing", f"the env at {config.env_path} in a sandbox")
        boxed = _install(app, job, scratch, run)
        resources_env = _resources(app, job, scratch, boxed)
        report("layers", "writing the image's layers")
        layers = _write_layers(_layer_specs(app, job, scratch), scratch, log)
        base_env = list(base.image.config.get("config", {}).get("Env", []) or [])
        config_blob = image_config(
            base.image.config,
            diff_ids=[layer.diff_id for layer in layers],
            env=_image_env(job, base_env, resources_env),
            labels=_labels(job, app.settings.wheels_dir),
            history=[layer.created_by for layer in layers],
        )
        config_descriptor = write_blob(config_blob, scratch.blobs, OCI_CONFIG)
        manifest = image_manifest(
            config_descriptor, [*base.image.layers, *(la.descriptor for la in layers)]
        )
        report("pushing", f"to {config.registry}")
        blobs = [
            *base_blob_sources(base, config, scratch.root, log.write),
            *layer_sources(layers),
            (
                config_descriptor,
                layer_opener(blob_path(scratch.blobs, config_descriptor.digest)),
            ),
        ]
        mounts = mount_sources(app, config, job.repository)
        with RegistryClient(endpoint(config), log=log.write, timeout=REGISTRY_TIMEOUT) as client:
            pushed = push_image(client, job.repository, job.tag, blobs, manifest, mounts)
        size = sum(d.size for d, _ in blobs) + len(manifest)
        report("done", f"pushed {where}@{pushed.digest} ({size / 1e6:.1f} MB, "
                         f"{pushed.sent_bytes / 1e6:.1f} MB sent)")  # fmt: skip
        _commit(app, build_id, pushed.digest, size, pushed.sent_bytes,
                [d.digest for d, _ in blobs])  # fmt: skip
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)


def _commit(
    app: Codenv, build_id: str, digest: str, size: int, sent: int, layer_digests: list[str]
) -> None:
    from sqlalchemy import select

    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        image = session.scalar(select(ImageRow).where(ImageRow.build_id == build_id))
        if row is None or image is None:
            raise NotFound("the image's code env was deleted", field="name")
        image.digest, image.size_bytes, image.pushed_bytes = digest, size, sent
        image.layer_digests = layer_digests
        row.status = check_transition(row.status, BuildStatus.SUCCEEDED)
        row.step, row.finished_at = "done", utcnow()
