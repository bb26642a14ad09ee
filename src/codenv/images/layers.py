"""Reproducible image layers: the same files give the same layer blob, byte for byte.

A layer is a gzipped tar written in one pass into `blobs_dir/sha256/<hex>`; the digests of
the compressed blob (its name in a registry) and of the uncompressed tar (the image config's
`diff_id`) are computed while it streams. Everything that would make two writes of the same
files differ is fixed: order (by image path), owners (0/0, no names), modes (normalized),
mtimes (0, except interpreter files whose `.pyc` are validated by their source's mtime), the
tar format (PAX) and the gzip header (no name, mtime 0, one compression level).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from codenv.domain.errors import InvalidInput

GZIP_LEVEL = 6
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_CHUNK = 1024 * 1024
_DIR_MODE = 0o755
_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_LINK_MODE = 0o777
# A layer's directory entry replaces the base's, mode included; these keep the mode every
# Linux image gives them (a 0755 /tmp would stop non-root users writing temporary files).
_SHARED_DIR_MODES = {PurePosixPath("/tmp"): 0o1777, PurePosixPath("/var/tmp"): 0o1777}  # noqa: S108


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or an index says about one blob."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


@dataclass(frozen=True)
class LayerEntry:
    """One file, directory or symlink of a layer: where it goes in the image, where it is now.

    `source` is lstat'd when the layer is written: symlinks stay symlinks, hard links become
    regular files, directories are written as directories (their content needs entries of
    its own). `keep_mtime` keeps a regular file's mtime (interpreter files: Python validates
    their timestamp-based `.pyc` by the source's mtime); everything else gets mtime 0.
    """

    image_path: PurePosixPath
    source: Path
    keep_mtime: bool = False


@dataclass(frozen=True)
class Layer:
    """A written layer blob."""

    descriptor: Descriptor
    diff_id: str
    path: Path
    created_by: str


class _Hashing:
    """A write-only stream that hashes and counts what passes through on its way to `sink`."""

    def __init__(self, sink: IO[bytes] | gzip.GzipFile) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here; flushing a gzip stream would add a sync block to it."""

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def blob_path(blobs_dir: Path, digest: str) -> Path:
    """Where a blob of `digest` lives under `blobs_dir` (an OCI layout's `blobs/`)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256" or len(encoded) != 64 or not _is_hex(encoded):
        raise InvalidInput(f"not a sha256 digest: {digest[:80]!r}", field="digest")
    return blobs_dir / algorithm / encoded


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)


@contextmanager
def _blob_sink(blobs_dir: Path) -> Iterator[tuple[_Hashing, list[Path]]]:
    """A temporary file in `blobs_dir/sha256` that becomes `<hex>` when the block succeeds.

    Yields the hashing stream and a one-item list that receives the final path. A blob is
    never seen half-written under its digest: the rename is atomic, and a failure removes
    the temporary file.
    """
    directory = blobs_dir / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", delete=False)  # noqa: SIM115
    final: list[Path] = []
    try:
        with handle:
            stream = _Hashing(handle)
            yield stream, final
        target = directory / stream.hash.hexdigest()
        os.chmod(handle.name, 0o644)  # blobs are content, readable like any published file
        os.replace(handle.name, target)
        final.append(target)
    finally:
        if not final:
            Path(handle.name).unlink(missing_ok=True)


def write_blob(data: bytes, blobs_dir: Path, media_type: str) -> Descriptor:
    """Store `data` (an image config, a manifest) as a blob; return its descriptor."""
    with _blob_sink(blobs_dir) as (stream, _final):
        stream.write(data)
    return Descriptor(media_type=media_type, digest=stream.digest(), size=stream.size)


@contextmanager
def _gzip_layer(blobs_dir: Path, created_by: str) -> Iterator[tuple[_Hashing, list[Layer]]]:
    """A stream taking the uncompressed tar; on exit the layer blob exists and is described."""
    result: list[Layer] = []
    # filename="" and mtime=0: the gzip header carries neither the blob's name nor a time.
    with (
        _blob_sink(blobs_dir) as (compressed, final),
        gzip.GzipFile(
            filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed, mtime=0
        ) as zipped,
    ):
        raw = _Hashing(zipped)
        yield raw, result
    descriptor = Descriptor(LAYER_GZIP, compressed.digest(), compressed.size)
    result.append(Layer(descriptor, raw.digest(), final[0], created_by))


def gzip_tar_layer(tar_path: Path, blobs_dir: Path, created_by: str) -> Layer:
    """An existing tar file (a base root filesystem) gzipped as one layer, deterministically."""
    with _gzip_layer(blobs_dir, created_by) as (raw, result), tar_path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            raw.write(chunk)
    return result[0]


def write_layer(entries: Sequence[LayerEntry], blobs_dir: Path, created_by: str) -> Layer:
    """Write `entries` as one reproducible tar+gzip layer blob under `blobs_dir`.

    Entries are written in image-path order, each missing parent directory once before its
    children (0755, but 1777 for /tmp and /var/tmp; mtime 0), with uid/gid 0 and no owner
    names. Two calls with the same files give the same digest, whatever the files' owners,
    mtimes or the temporary paths.
    """
    ordered = _ordered(entries)
    # "w|": a plain forward stream; the tar never seeks, so nothing is read back.
    with (
        _gzip_layer(blobs_dir, created_by) as (raw, result),
        tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar,  # type: ignore[call-overload]
    ):
        _write_entries(tar, ordered)
    return result[0]


def _ordered(entries: Sequence[LayerEntry]) -> list[LayerEntry]:
    for entry in entries:
        path = entry.image_path
        if not path.is_absolute() or ".." in path.parts:
            raise InvalidInput(f"not an absolute image path: {str(path)[:200]!r}", field="layer")
    ordered = sorted(entries, key=lambda entry: entry.image_path.parts)
    for before, after in itertools.pairwise(ordered):
        if before.image_path == after.image_path:
            raise InvalidInput(f"{before.image_path} is in the layer twice", field="layer")
    return ordered


def _write_entries(tar: tarfile.TarFile, ordered: Sequence[LayerEntry]) -> None:
    directories: set[PurePosixPath] = set()
    others: set[PurePosixPath] = set()
    for entry in ordered:
        for parent in reversed(entry.image_path.parents[:-1]):
            if parent in others:
                raise InvalidInput(f"{parent} is not a directory in the layer", field="layer")
            if parent not in directories:
                tar.addfile(_directory_info(parent))
                directories.add(parent)
        if len(entry.image_path.parts) == 1:
            continue  # "/" itself: the image's root exists already
        is_directory = _write_entry(tar, entry)
        (directories if is_directory else others).add(entry.image_path)


def _name(image_path: PurePosixPath) -> str:
    return image_path.as_posix().lstrip("/")


def _directory_info(image_path: PurePosixPath) -> tarfile.TarInfo:
    info = tarfile.TarInfo(_name(image_path))
    info.type = tarfile.DIRTYPE
    info.mode = _SHARED_DIR_MODES.get(image_path, _DIR_MODE)
    return info


def _write_entry(tar: tarfile.TarFile, entry: LayerEntry) -> bool:
    """Write one entry; True when it was a directory."""
    mode = os.lstat(entry.source).st_mode
    if stat.S_ISDIR(mode):
        tar.addfile(_directory_info(entry.image_path))
        return True
    info = tarfile.TarInfo(_name(entry.image_path))
    if stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.mode = _LINK_MODE
        info.linkname = os.readlink(entry.source)
        tar.addfile(info)
        return False
    if not stat.S_ISREG(mode):
        raise InvalidInput(
            f"{entry.source} is neither a file, a directory nor a symlink", field="layer"
        )
    # O_NOFOLLOW: the path was a regular file when lstat'd; never follow a link swapped in.
    descriptor = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as source:
        status = os.fstat(source.fileno())
        info.size = status.st_size
        info.mode = _EXEC_MODE if status.st_mode & 0o111 else _FILE_MODE
        # Whole seconds: what .pyc headers record, and no PAX header for a fraction.
        info.mtime = int(status.st_mtime) if entry.keep_mtime else 0
        tar.addfile(info, source)
    return False
