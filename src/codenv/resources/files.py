"""The resources explorer's file operations, confined to one root (an env's resources dir).

A pure library layer: no permissions and no database (the service layer wraps it). Paths are
relative and '/'-separated; every one goes through `confined()` (see `confine`).

- Writes go to a temp file opened with O_EXCL|O_NOFOLLOW in the confined parent (reached
  from the root without following symlinks), and are put in place with one `os.replace`
  after the parent was checked again; a symlink at the destination is replaced, never
  followed.
- `remove()` of a symlink removes the link itself, wherever it points: the target survives.
  A path *through* a symlink pointing outside is refused, like everywhere else.
- Listings never follow symlinks: a link is an entry of kind "link" and size 0, and a
  directory's size is the total of the regular files under it, links not counted.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from codenv.domain.errors import Conflict, InvalidInput, NotFound
from codenv.resources.confine import (
    CHUNK,
    Entry,
    confined,
    entry_at,
    join_rel,
    not_found,
    open_child_dir_nofollow,
    open_dir,
    outside_error,
    resolve_target,
    root_real,
    split_rel,
    write_target,
)
from codenv.resources.quota import (
    DEFAULT_LIMITS,
    Budget,
    WriteLimits,
    check_member_count,
    file_budget,
    zip_budget,
)

__all__ = [
    "Entry",
    "WriteLimits",
    "confined",
    "get_file",
    "list_dir",
    "open_file",
    "put_file",
    "put_stream",
    "put_zip",
    "read_file",
    "remove",
    "stat_entry",
    "walk_files",
]

# ---------------------------------------------------------------- listing


def list_dir(root: Path, rel: str = "") -> list[Entry]:
    """The direct children of the directory `rel`: directories first, then by name."""
    parts = split_rel(rel)
    if not parts and not os.path.isdir(root):
        return []  # a resources dir not created yet is an empty one
    real = confined(root, rel, must_exist=True)
    if not real.is_dir():
        raise InvalidInput(f"{rel!r} is not a directory", field="path")
    fd = open_dir(root_real(root), str(real), rel, create=False)
    try:
        with os.scandir(fd) as children:
            names = [child.name for child in children]
        entries = [
            entry
            for name in names
            if (entry := entry_at(fd, name, join_rel([*parts, name]))) is not None
        ]
    finally:
        os.close(fd)
    return sorted(entries, key=lambda entry: (entry.kind != "dir", entry.name))


def stat_entry(root: Path, rel: str) -> Entry:
    """The entry at `rel` itself (a symlink is reported as a link, not followed)."""
    parts = split_rel(rel)
    if not parts:
        raise InvalidInput("the resources directory itself is not an entry", field="path")
    real = confined(root, rel, must_exist=True, follow=False)
    fd = open_dir(root_real(root), str(real.parent), rel, create=False)
    try:
        entry = entry_at(fd, real.name, join_rel(parts))
    finally:
        os.close(fd)
    if entry is None:
        raise not_found(rel)
    return entry


# ---------------------------------------------------------------- reading


def read_file(root: Path, rel: str) -> Path:
    """The confined real path of the regular file `rel`, for the caller to stream."""
    real = confined(root, rel, must_exist=True)
    if not real.is_file():
        raise InvalidInput(f"{rel!r} is not a file", field="path")
    return real


def open_file(root: Path, rel: str) -> BinaryIO:
    """`rel` opened for reading, reached from the root without following any new symlink."""
    real = read_file(root, rel)
    parent = open_dir(root_real(root), str(real.parent), rel, create=False)
    try:
        fd = os.open(real.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        raise outside_error(rel) from None  # swapped for a symlink since it was checked
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInput(f"{rel!r} is not a file", field="path")
    return os.fdopen(fd, "rb")


def _open_regular(dir_fd: int, name: str) -> BinaryIO | None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None  # a symlink, or gone
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return os.fdopen(fd, "rb")
    os.close(fd)
    return None


def walk_files(root: Path) -> Iterator[tuple[str, BinaryIO]]:
    """Every regular file under `root`, opened, with its relative path, reached from the root
    without following any symlink: a link (or one swapped in while walking) is skipped."""
    if not os.path.isdir(root):
        return
    base = root_real(root)
    pending = [("", open_dir(base, base, "", create=False))]
    try:
        while pending:
            rel, fd = pending.pop()
            try:
                with os.scandir(fd) as children:
                    names = sorted(child.name for child in children)
                for name in names:
                    path = f"{rel}/{name}" if rel else name
                    opened = _open_regular(fd, name)
                    if opened is not None:
                        yield path, opened
                        continue
                    with suppress(OSError):
                        pending.append((path, open_child_dir_nofollow(fd, name)))
            finally:
                os.close(fd)
    finally:
        for _rel, fd in pending:
            os.close(fd)


def get_file(root: Path, rel: str, dest: Path) -> Path:
    """Copy the file `rel` out to `dest` (inside it, under the same name, if it is a dir)."""
    parts = split_rel(rel)
    with open_file(root, rel) as source:
        target = dest / parts[-1] if dest.is_dir() else dest
        try:
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
        except FileNotFoundError:
            raise NotFound(f"cannot write {str(target)!r}", field="dest") from None
    return target


# ---------------------------------------------------------------- writing


def put_file(
    root: Path, source: Path, dest: str | None = None, *, limits: WriteLimits = DEFAULT_LIMITS
) -> Entry:
    """Copy the local file `source` into the root at `dest` (default: its name at top level).

    An existing directory at `dest` (or a `dest` ending with '/') receives it under its name.
    Refused when the root would pass its quota.
    """
    if not source.is_file():
        raise NotFound(f"no such file: {str(source)!r}", field="source")
    target = resolve_target(root, dest or "", source.name)
    budget = file_budget(root, limits)
    if budget is not None:
        budget.check(source.stat().st_size)
    with open(source, "rb") as stream:
        return write_target(root, target, iter(lambda: stream.read(CHUNK), b""))


def put_stream(root: Path, dest: str, chunks: Iterable[bytes]) -> Entry:
    """Write the byte chunks to the file `dest` (same rules as `put_file`)."""
    return write_target(root, resolve_target(root, dest, None), chunks)


# ---------------------------------------------------------------- removing


def remove(root: Path, rel: str) -> None:
    """Remove the file or directory tree `rel`; a symlink is removed itself, not its target."""
    if not split_rel(rel):
        raise InvalidInput("refusing to remove the resources directory itself", field="path")
    real = confined(root, rel, must_exist=True, follow=False)
    fd = open_dir(root_real(root), str(real.parent), rel, create=False)
    try:
        info = os.stat(real.name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(real.name, dir_fd=fd)  # fd-based: never follows a symlink inside
        else:
            os.unlink(real.name, dir_fd=fd)
    except FileNotFoundError:
        raise not_found(rel) from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- zip archives

_DRIVE = re.compile(r"^[A-Za-z]:")
# a corrupt archive, an unsupported compression method, an encrypted member, a CRC mismatch
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    EOFError,
)


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    rel: str
    is_dir: bool


def put_zip(
    root: Path, archive: Path, dest: str = "", *, limits: WriteLimits = DEFAULT_LIMITS
) -> list[Entry]:
    """Unpack a zip archive into the directory `dest`; its entries, sorted by path.

    The whole archive is checked before anything is written, and refused (InvalidInput) if a
    member is absolute, has a `..` component, is a symlink or special file, would land
    outside the root (also through a symlink already there), or if it has too many members
    or unpacks to more than its limit or the root's quota allows (zip bombs, `quota`).
    """
    base_parts = split_rel(dest)
    if not archive.is_file():
        raise NotFound(f"no such archive: {str(archive)!r}", field="archive")
    check_member_count(archive, limits.zip_members)
    root_real(root, create=True)
    if base_parts and confined(root, dest, must_exist=False).is_file():
        raise Conflict(f"{dest!r} is a file, not a directory", field="path")
    budget = zip_budget(root, limits)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = _check_members(root, zipped, base_parts, budget)
            return _unpack(root, zipped, members, budget)
    except _ZIP_ERRORS as error:
        raise InvalidInput(f"unreadable zip archive: {error}", field="archive") from None


def _check_members(
    root: Path, zipped: zipfile.ZipFile, base: list[str], budget: Budget
) -> list[_Member]:
    infos = zipped.infolist()
    budget.check(sum(info.file_size for info in infos))  # as declared; counted again later
    members: list[_Member] = []
    for info in infos:
        member = _check_member(root, info, base)
        if member is not None:
            with zipped.open(info):  # unsupported compression, encryption, bad header
                members.append(member)
    _check_file_dir_clashes(members)
    return members


def _check_member(root: Path, info: zipfile.ZipInfo, base: list[str]) -> _Member | None:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if name.startswith("/") or _DRIVE.match(name):
        raise outside_error(name)
    if stat.S_ISLNK(mode):
        raise InvalidInput(f"archive member {name!r} is a symbolic link", field="path")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidInput(f"archive member {name!r} is not a file or directory", field="path")
    parts = split_rel(name)
    is_dir = info.is_dir()
    if not parts and is_dir:
        return None
    rel = join_rel([*base, *parts])
    if not parts:
        raise outside_error(name)
    real = confined(root, rel, must_exist=False)  # refuses a symlink on the way out
    if real.exists() and real.is_dir() != is_dir:
        kind = "directory" if real.is_dir() else "file"
        raise Conflict(f"{rel!r} is already a {kind}", field="path")
    for parent in real.parents:
        if parent.exists():
            if not parent.is_dir():
                raise Conflict(f"{str(parent)!r} is a file, not a directory", field="path")
            break
    return _Member(info, rel, is_dir)


def _check_file_dir_clashes(members: list[_Member]) -> None:
    files = {member.rel for member in members if not member.is_dir}
    dirs = {member.rel for member in members if member.is_dir}
    for member in members:
        parts = member.rel.split("/")
        dirs.update(join_rel(parts[:end]) for end in range(1, len(parts)))
    clashes = sorted(files & dirs)
    if clashes:
        raise InvalidInput(f"archive member {clashes[0]!r} is a file and a directory", field="path")


def _unpack(
    root: Path, zipped: zipfile.ZipFile, members: list[_Member], budget: Budget
) -> list[Entry]:
    base = root_real(root)
    written = [0]
    for member in members:
        if member.is_dir:
            real = confined(root, member.rel, must_exist=False)
            os.close(open_dir(base, str(real), member.rel, create=True))
            continue
        target = resolve_target(root, member.rel, None)
        with zipped.open(member.info) as stream:
            write_target(root, target, _counted(stream, written, budget))
    rels = sorted({member.rel for member in members})
    return [stat_entry(root, rel) for rel in rels]


def _counted(stream: IO[bytes], written: list[int], budget: Budget) -> Iterator[bytes]:
    """The stream's chunks; refused past the budget in all (sizes in a zip can lie)."""
    while chunk := stream.read(CHUNK):
        written[0] += len(chunk)
        if written[0] > budget.size:
            raise budget.refusal()
        yield chunk
