"""Reading a bundle file: every member checked against the manifest before anything is used.

The tar is unpacked into a private scratch directory, each member hashed as it is written;
only then is the manifest read and every digest compared. A member that is not a regular
file, a path that leaves the directory, a file the manifest does not list or lists with
another digest: the bundle is refused, naming the file, and the scratch directory removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from codenv.domain import bundles
from codenv.domain.bundles import Manifest
from codenv.domain.errors import InvalidInput
from codenv.domain.limits import size_text

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Unpacked:
    root: Path
    manifest: Manifest
    digest: str  # the manifest's sha256: names this bundle

    def env_dir(self, name: str) -> Path:
        return self.root / "envs" / name

    def text(self, env: bundles.BundledEnv, file: str) -> bytes:
        return read_member(self.root, env.path(file), bundles.MAX_TEXT_MEMBER_BYTES)


@dataclass(frozen=True)
class BundleLimits:
    max_bytes: int
    max_members: int


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    source = tar.extractfile(member)
    if source is None:
        raise InvalidInput(f"bundle member {member.name!r} cannot be read", field="bundle")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with source, os.fdopen(os.open(target, flags, 0o600), "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _unpack(path: Path, root: Path, limits: BundleLimits) -> dict[str, str]:
    found: dict[str, str] = {}
    total = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                bundles.check_member(member.name)
                if not member.isreg():
                    raise InvalidInput(
                        f"bundle member {member.name!r} is not a regular file", field="bundle"
                    )
                total += member.size
                if total > limits.max_bytes or len(found) >= limits.max_members:
                    raise InvalidInput(
                        f"bundle unpacks to more than {size_text(limits.max_bytes)} or "
                        f"{limits.max_members} files (max_bundle_bytes, max_zip_members)",
                        field="bundle",
                    )
                if member.name in found:
                    raise InvalidInput(
                        f"bundle member {member.name!r} appears twice", field="bundle"
                    )
                found[member.name] = _write_member(tar, member, root / member.name)
    except (tarfile.TarError, EOFError) as error:
        raise InvalidInput(f"not a codenv bundle (a tar file): {error}", field="bundle") from error
    return found


def read_member(root: Path, name: str, limit: int) -> bytes:
    """A small member (manifest, spec, lock) read whole, refused past `limit` bytes."""
    with (root / name).open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"bundle file {name} is larger than {size_text(limit)}", field="bundle")
    return data


def _verify(found: dict[str, str], root: Path) -> tuple[Manifest, str]:
    if bundles.MANIFEST not in found:
        raise InvalidInput("not a codenv bundle: it has no manifest.json", field="bundle")
    data = read_member(root, bundles.MANIFEST, bundles.MAX_MANIFEST_BYTES)
    manifest = bundles.parse_manifest(data)
    for path, digest in sorted(found.items()):
        if path == bundles.MANIFEST:
            continue
        if path not in manifest.files:
            raise InvalidInput(f"bundle file {path} is not in its manifest", field="bundle")
        if manifest.files[path] != digest:
            raise InvalidInput(
                f"bundle file {path} does not match its manifest's sha256: the bundle was "
                "changed or damaged after it was made",
                field="bundle",
            )
    needed = {env.path(file) for env in manifest.envs for file in bundles.REQUIRED_FILES}
    missing = sorted((set(manifest.files) | needed) - set(found))
    if missing:
        raise InvalidInput(f"bundle file {missing[0]} is missing", field="bundle")
    return manifest, hashlib.sha256(data).hexdigest()


def unpack_bundle(path: Path, scratch: Path, limits: BundleLimits) -> Unpacked:
    """The bundle at `path`, unpacked into `scratch` (made here) and verified whole."""
    if not path.is_file():
        raise InvalidInput(f"no bundle file at {path}", field="file")
    if path.stat().st_size > limits.max_bytes:
        raise InvalidInput(
            f"bundle is larger than {size_text(limits.max_bytes)} (max_bundle_bytes)", field="file"
        )
    scratch.mkdir(parents=True, mode=0o700)
    try:
        found = _unpack(path, scratch, limits)
        manifest, digest = _verify(found, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Unpacked(scratch, manifest, digest)
