"""Export: code envs into one bundle file, with their exact locks (and wheels, resources).

The bundle is written beside its destination and renamed into place when whole; a failed
export leaves nothing. Each file's sha256 is computed while it is written into the tar, and
the manifest, which lists them all, is the last member.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from codenv import __version__
from codenv.backends.base import Run
from codenv.backends.wheels import download_wheels
from codenv.domain import bundles
from codenv.domain.bundles import BundledEnv, Manifest
from codenv.domain.errors import Conflict, NotFound
from codenv.domain.install_options import parse_options
from codenv.domain.locks import parse_lock, render_lock
from codenv.domain.plan import Plan
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.resources.files import walk_files
from codenv.services.actor import UPDATE, Actor, env_for, env_level
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.boxes import BuildDirs, build_boxes
from codenv.services.node_settings import node_kind
from codenv.storage import queries
from codenv.storage.models import RevisionRow


@dataclass(frozen=True)
class ExportRequest:
    names: tuple[str, ...]  # empty: every env the actor may change (`--all`)
    revision: int | None = None  # one env only: that revision instead of the active one
    with_wheels: bool = False
    with_resources: bool = False


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    envs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "envs": self.envs}


@dataclass(frozen=True)
class _Picked:
    name: str
    row: RevisionRow


def _pick(app: Codenv, actor: Actor, request: ExportRequest) -> list[_Picked]:
    if request.revision is not None and len(request.names) != 1:
        raise Conflict("--revision takes exactly one code env", field="revision")
    with app.db.session() as session:
        if request.names:
            envs = [env_for(session, actor, name, UPDATE) for name in request.names]
        else:
            envs = [e for e in queries.all_envs(session) if env_level(actor, e) >= UPDATE]
        picked = []
        for env in envs:
            number = request.revision or env.active_revision
            row = queries.revision(session, env.id, number or 0)
            if row is None:
                what = f"no revision {number}" if request.revision else "never built"
                raise NotFound(
                    f"code env {env.name!r}: {what}, nothing to export", field="revision"
                )
            session.expunge(row)
            picked.append(_Picked(env.name, row))
    if not picked:
        raise NotFound("no code env to export", field="name")
    return picked


class _Writer:
    """A tar being written, with the sha256 of every file added."""

    def __init__(self, handle: IO[bytes]) -> None:
        # Streamed: a bundle of many GB is never held in memory. Closed by close().
        self.tar = tarfile.open(fileobj=handle, mode="w|")  # noqa: SIM115
        self.files: dict[str, str] = {}

    def add_bytes(self, path: str, data: bytes) -> None:
        self.add_stream(path, io.BytesIO(data), len(data))

    def add_file(self, path: str, source: Path) -> None:
        with source.open("rb") as handle:
            self.add_stream(path, handle, os.fstat(handle.fileno()).st_size)

    def add_stream(self, path: str, handle: IO[bytes], size: int) -> None:
        bundles.check_member(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = size, 0o644, 0
        digest = _Hashing(handle)
        self.tar.addfile(info, digest)
        self.files[path] = digest.hash.hexdigest()

    def close(self, manifest: Manifest) -> None:
        data = manifest.to_json().encode()
        info = tarfile.TarInfo(bundles.MANIFEST)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        self.tar.addfile(info, io.BytesIO(data))
        self.tar.close()


class _Hashing:
    """A file read by tarfile, hashed on the way."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.hash = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hash.update(data)
        return data


def _env_files(
    app: Codenv, picked: _Picked, request: ExportRequest, writer: _Writer, work: Path
) -> BundledEnv:
    row = picked.row
    spec = EnvSpec.from_dict(row.spec)
    bundles.refuse_local_sources(spec)
    portable = bundles.portable_spec(spec)
    lock, core = bundles.portable_lock(row.lock)
    plan = Plan.from_dict(row.plan)
    env = BundledEnv(
        name=picked.name,
        python=".".join(plan.python_version.split(".")[:2]),
        revision=row.number,
        core_package=core,
        with_wheels=request.with_wheels,
        with_resources=request.with_resources,
        left_out=portable.left_out,
    )
    writer.add_bytes(env.path(bundles.SPEC), json.dumps(portable.spec.to_dict(), indent=2).encode())
    if spec.resources_init_script:
        writer.add_bytes(env.path(bundles.SCRIPT), portable.spec.resources_init_script.encode())
    writer.add_bytes(env.path(bundles.LOCK), lock.encode())
    writer.add_bytes(env.path(bundles.INSTALLED), json.dumps(row.installed, indent=2).encode())
    _add_index_files(app, picked, plan, lock, writer, work, env)
    if request.with_resources:
        layout = EnvLayout.of(app.settings.envs_dir, picked.name)
        for relative, handle in walk_files(layout.resources_dir):
            with handle:
                size = os.fstat(handle.fileno()).st_size
                writer.add_stream(env.path(f"{bundles.RESOURCES}/{relative}"), handle, size)
    return env


def _add_index_files(
    app: Codenv,
    picked: _Picked,
    plan: Plan,
    lock: str,
    writer: _Writer,
    work: Path,
    env: BundledEnv,
) -> None:
    """pylock.toml, and the wheels: both read the index (or the caches), in the build box."""
    third_party = render_lock([e for e in parse_lock(lock) if e.name != bundles.CORE_PACKAGE])
    scratch = work / picked.name
    scratch.mkdir(parents=True)
    (scratch / "lock.txt").write_text(third_party, "utf-8")
    options = parse_options(plan.install_options)
    dirs = BuildDirs(work_dir=scratch, target=scratch, resources_dir=scratch, staging_dir=scratch)
    boxes = build_boxes(app, plan, options, (), dirs)
    log, timeout = _NoLog(), app.settings.build_timeout_seconds
    if env.with_wheels:
        # First: when the index is away, this is what says which packages are missing.
        trusted = Run(log, timeout, options=options)
        wheels = scratch / "wheels"
        download_wheels(trusted, plan.interpreter, third_party, wheels, app.settings.pip_cache_dir)
        for wheel in sorted(wheels.glob("*.whl")):
            writer.add_file(env.path(f"{bundles.WHEELS}/{wheel.name}"), wheel)
    boxed = Run(log, timeout, options=options, box=boxes.build if boxes else None)
    pylock = scratch / "pylock.toml"
    app.tools.installer.write_pylock(boxed, plan.interpreter, scratch / "lock.txt", pylock)
    mine = env.path(f"{bundles.WHEELS}/")
    bundled = {path.removeprefix(mine) for path in writer.files if path.startswith(mine)}
    writer.add_bytes(env.path(bundles.PYLOCK), _portable_pylock(pylock, env.python, bundled))


_WHEEL_URL = re.compile(r'url = "[^"]*/([^"/]+\.whl)"')


def _portable_pylock(pylock: Path, minor: str, bundled: set[str]) -> bytes:
    """uv's pylock.toml as a bundle carries it: for the Python minor (uv writes the exact
    interpreter, `>=3.11.7`), bundled wheels by relative path (so that it installs offline
    too), credentials in URLs masked."""

    def local(found: re.Match[str]) -> str:
        name = found[1]
        return f'path = "{bundles.WHEELS}/{name}"' if name in bundled else found[0]

    lines = [
        f'requires-python = ">={minor}"' if line.startswith("requires-python") else line
        for line in pylock.read_text("utf-8").splitlines()
    ]
    return mask_secrets(_WHEEL_URL.sub(local, "\n".join(lines) + "\n")).encode()


class _NoLog:
    """An export has no build log: a failing step's error lines reach its error message."""

    def write(self, text: str) -> None:
        pass


def export_bundle(app: Codenv, actor: Actor, request: ExportRequest, out: Path) -> ExportResult:
    picked = _pick(app, actor, request)
    work = app.settings.builds_dir / f"export-{uuid.uuid4().hex}"
    temporary = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("wb") as handle:
            writer = _Writer(handle)
            envs = tuple(_env_files(app, one, request, writer, work) for one in picked)
            manifest = Manifest(
                envs=envs,
                files=writer.files,
                created_by=f"codenv {__version__}",
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                source_node=node_kind(app).value,
            )
            writer.close(manifest)
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    described = [_described(env, writer.files) for env in envs]
    record(app, actor, "env.export", ",".join(e.name for e in envs), {"file": out.name})
    return ExportResult(out, out.stat().st_size, described)


def _described(env: BundledEnv, files: dict[str, str]) -> dict[str, Any]:
    wheels = sum(1 for path in files if path.startswith(env.path(f"{bundles.WHEELS}/")))
    return {**env.to_dict(), "wheels": wheels}
