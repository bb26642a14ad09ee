"""Confinement of resources paths to one root directory, and the primitives built on it.

Every file operation of the explorer goes through `confined()`: a path is relative,
'/'-separated, without `..` or NUL, and no step of its resolution may leave the root.
Symlinks that stay inside the root are followed; one that leads outside is refused.

Writes, removals and reads by fd also walk the confined (resolved) directories one component
at a time with `O_NOFOLLOW` from the root (`open_dir()`), so a directory swapped for a
symlink between the check and the use is refused instead of followed. `write_target()`
writes a temp file opened with O_EXCL|O_NOFOLLOW in the confined parent, checks the parent
again, then puts it in place with one `os.replace`: a symlink at the destination is
replaced, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from codenv.domain.errors import Conflict, InvalidInput, NotFound
from codenv.domain.limits import check_path_size

CHUNK = 1024 * 1024
EntryKind = Literal["file", "dir", "link"]


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the root, '/'-separated
    kind: EntryKind
    size: int  # bytes; a dir: the total of the regular files under it; a link: 0
    modified: float  # seconds since the epoch (the entry's own mtime, links not followed)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, str | int | float]:
        return {"path": self.path, "kind": self.kind, "size": self.size, "modified": self.modified}


@dataclass(frozen=True)
class Target:
    """Where a write lands: the real parent dir, the entry name in it, the logical path."""

    parent: str
    name: str
    rel: str

    @property
    def parent_rel(self) -> str:
        return self.rel.rpartition("/")[0]


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW_DIR_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW


def outside_error(rel: str) -> InvalidInput:
    return InvalidInput(f"path {rel!r} must stay inside the resources directory", field="path")


def not_found(rel: str) -> NotFound:
    return NotFound(f"no such file or directory in the resources: {rel or '.'!r}", field="path")


def split_rel(rel: str) -> list[str]:
    """The components of a relative path ('' and '.' dropped); refuses what could escape, and
    what is too long or too deep (before any disk access: each level costs a lookup)."""
    check_path_size(rel)
    if rel.startswith("/") or os.path.isabs(rel):
        raise outside_error(rel)
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise outside_error(rel)
    return parts


def join_rel(parts: list[str]) -> str:
    return "/".join(parts)


def root_real(root: Path, *, create: bool = False) -> str:
    """The resolved root; created first when `create` (the root itself is trusted)."""
    if create:
        Path(root).mkdir(parents=True, exist_ok=True)
    return os.path.realpath(root)


def is_inside(base: str, path: str) -> bool:
    return os.path.commonpath([base, path]) == base


def confined(root: Path, rel: str, *, must_exist: bool, follow: bool = True) -> Path:
    """The real path of `rel` under `root`, refused (InvalidInput, field "path") if it may leave it.

    Each prefix of the path is resolved with `os.path.realpath` and must stay inside the real
    root, so a symlink pointing outside is refused wherever it appears, while symlinks inside
    the root pointing inside are followed. With `follow=False` the last component is not
    resolved (the entry itself, e.g. a symlink to remove); its parent still is.
    `must_exist` raises NotFound (field "path") when nothing is there.
    """
    parts = split_rel(rel)
    base = root_real(root)
    current = base
    for index, name in enumerate(parts):
        candidate = os.path.join(current, name)
        if not follow and index == len(parts) - 1:
            current = candidate
            break
        current = os.path.realpath(candidate)
        if not is_inside(base, current):
            raise outside_error(rel)
    exists = os.path.lexists(current) if not follow else os.path.exists(current)
    if must_exist and not (exists and os.path.isdir(base)):
        raise not_found(rel)
    return Path(current)


def open_dir(base: str, real_dir: str, rel: str, *, create: bool) -> int:
    """An fd of `real_dir` (a confined, resolved directory under the real root `base`).

    Opened from `base` one component at a time without following symlinks, creating the
    missing ones when `create`. The caller closes the fd.
    """
    if not is_inside(base, real_dir):
        raise outside_error(rel)
    fd = os.open(base, _DIR_FLAGS)
    try:
        relative = os.path.relpath(real_dir, base)
        for name in [] if relative == "." else relative.split(os.sep):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            child = _open_child_dir(fd, name, rel)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child_dir(fd: int, name: str, rel: str) -> int:
    try:
        return os.open(name, _NOFOLLOW_DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        raise NotFound(f"no such directory in the resources: {rel!r}", field="path") from None
    except OSError as error:
        if error.errno == errno.ELOOP:  # swapped for a symlink since it was checked
            raise outside_error(rel) from None
        if error.errno == errno.ENOTDIR:
            raise Conflict(f"{name!r} in {rel!r} is not a directory", field="path") from None
        raise


def open_child_dir_nofollow(fd: int, name: str) -> int:
    """An fd of the directory `name` in `fd`, never through a symlink (OSError otherwise)."""
    return os.open(name, _NOFOLLOW_DIR_FLAGS, dir_fd=fd)


# ---------------------------------------------------------------- entries


def entry_at(dir_fd: int, name: str, rel: str) -> Entry | None:
    """The entry `name` of the open directory `dir_fd`, never following a symlink."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            return Entry(rel, "link", 0, info.st_mtime)
        if not stat.S_ISDIR(info.st_mode):
            return Entry(rel, "file", info.st_size, info.st_mtime)
        child = open_child_dir_nofollow(dir_fd, name)
    except OSError:
        return None  # vanished or swapped while listing
    try:
        return Entry(rel, "dir", tree_size(child), info.st_mtime)
    finally:
        os.close(child)


def tree_size(dir_fd: int) -> int:
    """The total size of the regular files under an open directory; symlinks not followed."""
    total = 0
    pending = [os.dup(dir_fd)]
    try:
        while pending:
            fd = pending.pop()
            try:
                with os.scandir(fd) as children:
                    for child in children:
                        with suppress(OSError):
                            if child.is_dir(follow_symlinks=False):
                                pending.append(open_child_dir_nofollow(fd, child.name))
                            elif child.is_file(follow_symlinks=False):
                                total += child.stat(follow_symlinks=False).st_size
            finally:
                os.close(fd)
    finally:
        for fd in pending:
            os.close(fd)
    return total


# ---------------------------------------------------------------- writing


def resolve_target(root: Path, dest: str, default_name: str | None) -> Target:
    """Where a write to `dest` lands; refused before anything is written."""
    parts = split_rel(dest)
    root_real(root, create=True)
    into_dir = not parts or dest.endswith("/") or confined(root, dest, must_exist=False).is_dir()
    if into_dir:
        if default_name is None:
            raise Conflict(f"{dest or '.'!r} is a directory", field="path")
        parts.append(default_name)
    rel = join_rel(parts)
    if confined(root, rel, must_exist=False).is_dir():  # refuses a link that leads outside
        raise Conflict(f"{rel!r} is a directory", field="path")
    entry = confined(root, rel, must_exist=False, follow=False)
    return Target(str(entry.parent), entry.name, rel)


def write_target(root: Path, target: Target, chunks: Iterable[bytes]) -> Entry:
    """Write to a temp file beside the target, then put it in place with one rename."""
    base = root_real(root, create=True)
    fd = open_dir(base, target.parent, target.rel, create=True)
    temp = f".codenv-{uuid.uuid4().hex}.part"
    try:
        out = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666,
            dir_fd=fd,
        )
        with os.fdopen(out, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        _check_parent_unchanged(root, target, fd)
        try:
            os.replace(temp, target.name, src_dir_fd=fd, dst_dir_fd=fd)
        except IsADirectoryError:
            raise Conflict(f"{target.rel!r} is a directory", field="path") from None
        entry = entry_at(fd, target.name, target.rel)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=fd)
        raise
    finally:
        os.close(fd)
    if entry is None:
        raise Conflict(f"{target.rel!r} changed while it was written", field="path")
    return entry


def _check_parent_unchanged(root: Path, target: Target, fd: int) -> None:
    """Right before the rename: the parent still resolves, inside the root, to the open dir."""
    again = confined(root, target.parent_rel, must_exist=True)
    if str(again) != target.parent or not os.path.samestat(os.fstat(fd), os.stat(again)):
        raise Conflict(f"the directory of {target.rel!r} changed while writing", field="path")
