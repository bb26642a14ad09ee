"""The resources explorer's file operations, on the real filesystem.

Every traversal attempt is checked twice: the error (InvalidInput, field "path"), and that
nothing outside the root was read, created, modified or deleted. "Modified" is a snapshot of
everything beside the root (types, modes, sizes, mtimes, contents, link targets) taken before
and after; "read" is an audit hook recording the paths that were opened, listed, created,
renamed or removed during the call (paths opened relative to a dir fd are not resolvable from
the audit event and are left out; listings by fd are resolved through /proc).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codenv.domain.errors import CodenvError, Conflict, InvalidInput, NotFound
from codenv.resources import (
    Entry,
    WriteLimits,
    confined,
    get_file,
    list_dir,
    open_file,
    put_file,
    put_stream,
    put_zip,
    read_file,
    remove,
    stat_entry,
)

# ---------------------------------------------------------------- what was touched


@dataclass
class _Recorder:
    touched: list[str] | None = None
    busy: bool = False


_recorder = _Recorder()
_FOLLOWING = {"open", "os.scandir", "os.listdir", "shutil.copyfile"}
_PATH_ARGS = {
    "open": (0, None),
    "os.scandir": (0, None),
    "os.listdir": (0, None),
    "os.mkdir": (0, 2),
    "os.remove": (0, 1),
    "os.rmdir": (0, 1),
    "shutil.rmtree": (0, 1),
    "os.rename": (0, 2),
    "shutil.copyfile": (0, None),
}


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _resolve(path: Any, dir_fd: Any, follow: bool) -> str | None:
    if isinstance(path, int):
        return _fd_path(path)
    if not isinstance(path, str | bytes | os.PathLike):
        return None
    text = os.fsdecode(path)
    if isinstance(dir_fd, int) and not os.path.isabs(text):
        text = os.path.join(_fd_path(dir_fd), text)
    elif not os.path.isabs(text):
        return None  # relative to a dir fd the event does not name (os.open): unknown
    if follow:
        return os.path.realpath(text)
    head, tail = os.path.split(os.path.normpath(text))
    return os.path.join(os.path.realpath(head), tail)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    touched = _recorder.touched
    if touched is None or _recorder.busy or event not in _PATH_ARGS:
        return
    _recorder.busy = True
    try:
        path_at, fd_at = _PATH_ARGS[event]
        dir_fd = args[fd_at] if fd_at is not None and len(args) > fd_at else None
        follow = event in _FOLLOWING
        if event == "open" and isinstance(args[2], int) and args[2] >= 0:
            follow = not args[2] & os.O_NOFOLLOW
        resolved = _resolve(args[path_at], dir_fd, follow)
        if resolved is not None:
            touched.append(resolved)
        if event == "os.rename":
            dst = _resolve(args[1], args[3] if len(args) > 3 else None, False)
            if dst is not None:
                touched.append(dst)
    except Exception:  # an audit hook must never break the audited call
        pass
    finally:
        _recorder.busy = False


sys.addaudithook(_audit)


@contextmanager
def recording() -> Iterator[list[str]]:
    _recorder.touched = touched = []
    try:
        yield touched
    finally:
        _recorder.touched = None


# ---------------------------------------------------------------- the space


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


@dataclass
class Space:
    top: Path
    root: Path
    outside: Path
    downloads: Path
    source: Path

    def snapshot(self) -> dict[str, tuple[object, ...]]:
        """Everything beside the root: kinds, modes, sizes, mtimes, contents, link targets."""
        found: dict[str, tuple[object, ...]] = {}
        for dirpath, dirnames, filenames in os.walk(self.top):
            here = Path(dirpath)
            dirnames[:] = [name for name in dirnames if here / name != self.root]
            for name in [".", *dirnames, *filenames]:
                path = here / name
                info = path.lstat()
                content: object = None
                if stat.S_ISLNK(info.st_mode):
                    content = os.readlink(path)
                elif stat.S_ISREG(info.st_mode):
                    content = path.read_bytes()
                found[str(path.relative_to(self.top))] = (
                    info.st_mode,
                    info.st_size,
                    info.st_mtime_ns,
                    content,
                )
        return found

    def refused(
        self, action: Callable[[], object], *, allowed: tuple[Path, ...] = (), field: str = "path"
    ) -> InvalidInput:
        """Run a refused action: InvalidInput on `field`, and nothing outside the root touched."""
        before = self.snapshot()
        root_before = _tree(self.root)
        with recording() as touched, pytest.raises(InvalidInput) as caught:
            action()
        assert caught.value.field == field, caught.value
        assert self.snapshot() == before
        assert _tree(self.root) == root_before  # refused before anything was written
        self.assert_untouched(touched, allowed)
        return caught.value

    def assert_untouched(self, touched: list[str], allowed: tuple[Path, ...] = ()) -> None:
        top, root = os.path.realpath(self.top), os.path.realpath(self.root)
        permitted = {os.path.realpath(path) for path in allowed}
        escaped = [
            path
            for path in touched
            if path not in permitted
            and not _inside(path, root)
            and (_inside(path, top) or path.startswith(("/etc", "/tmp/codenv-evil")))
        ]
        assert escaped == []


def _tree(top: Path) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    if not top.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = path.lstat()
            content: object = None
            if stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            found[str(path.relative_to(top))] = (stat.S_IFMT(info.st_mode), content)
    return found


@pytest.fixture
def space(tmp_path: Path) -> Space:
    root = tmp_path / "root"
    (root / "models" / "bert").mkdir(parents=True)
    (root / "models" / "bert" / "weights.bin").write_bytes(b"w" * 1000)
    (root / "models" / "bert" / "config.json").write_bytes(b"{}")
    (root / "models" / "readme.txt").write_bytes(b"hello")
    (root / "top.txt").write_bytes(b"top")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"secret")
    (outside / "sub" / "deep.txt").write_bytes(b"deep")
    (tmp_path / "x").write_bytes(b"sibling of the root")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    source = tmp_path / "upload.bin"
    source.write_bytes(b"u" * 300)
    make_zip(downloads / "z.zip", [("ok.txt", b"ok")])
    return Space(tmp_path, root, outside, downloads, source)


def make_zip(
    path: Path, members: list[tuple[str, bytes | None]], *, links: tuple[str, ...] = ()
) -> Path:
    """A zip archive: (name, content) members, None for a directory; `links` as symlinks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            if content is None:
                archive.mkdir(name)
            else:
                archive.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "../outside/secret.txt")
    return path


def no_temp_files(root: Path) -> bool:
    return not [path for path in root.rglob("*") if path.name.startswith(".codenv-")]


# ---------------------------------------------------------------- listing


def test_list_dir_sorts_dirs_first_and_reports_sizes(space: Space) -> None:
    (space.root / "a-file.txt").write_bytes(b"12345")
    (space.root / "zdir").mkdir()
    entries = list_dir(space.root)
    assert [(e.path, e.kind) for e in entries] == [
        ("models", "dir"),
        ("zdir", "dir"),
        ("a-file.txt", "file"),
        ("top.txt", "file"),
    ]
    sizes = {e.path: e.size for e in entries}
    assert sizes == {"models": 1000 + 2 + 5, "zdir": 0, "a-file.txt": 5, "top.txt": 3}
    assert all(isinstance(e.modified, float) and e.modified > 0 for e in entries)


def test_list_dir_of_nested_dirs_gives_relative_paths(space: Space) -> None:
    assert [(e.path, e.kind, e.size) for e in list_dir(space.root, "models")] == [
        ("models/bert", "dir", 1002),
        ("models/readme.txt", "file", 5),
    ]
    assert [e.path for e in list_dir(space.root, "models/bert/")] == [
        "models/bert/config.json",
        "models/bert/weights.bin",
    ]
    assert list_dir(space.root, "./models/./bert") == list_dir(space.root, "models/bert")


def test_list_dir_shows_links_as_links_and_does_not_count_them(space: Space) -> None:
    (space.root / "models" / "alias.bin").symlink_to("bert/weights.bin")
    (space.root / "out").symlink_to(space.outside)
    entries = {e.path: e for e in list_dir(space.root)}
    assert entries["out"].kind == "link" and entries["out"].size == 0
    assert entries["models"].size == 1007  # the link to weights.bin is not counted twice
    assert stat_entry(space.root, "models/alias.bin").kind == "link"


def test_list_dir_of_a_missing_root_is_empty_and_errors_name_the_field(space: Space) -> None:
    assert list_dir(space.top / "not-yet") == []
    with pytest.raises(NotFound) as missing:
        list_dir(space.root, "nothing-here")
    assert missing.value.field == "path"
    with pytest.raises(InvalidInput) as not_dir:
        list_dir(space.root, "top.txt")
    assert not_dir.value.field == "path"


def test_entry_serializes(space: Space) -> None:
    entry = stat_entry(space.root, "top.txt")
    assert entry == Entry("top.txt", "file", 3, entry.modified)
    assert entry.to_dict() == {
        "path": "top.txt",
        "kind": "file",
        "size": 3,
        "modified": entry.modified,
    }
    assert stat_entry(space.root, "models").size == 1007


# ---------------------------------------------------------------- reading


def test_read_file_gives_the_confined_real_path(space: Space) -> None:
    real = read_file(space.root, "models/bert/weights.bin")
    assert real == (space.root / "models/bert/weights.bin").resolve()
    assert real.read_bytes() == b"w" * 1000
    with open_file(space.root, "models/readme.txt") as stream:
        assert stream.read() == b"hello"
    with pytest.raises(InvalidInput) as a_dir:
        read_file(space.root, "models")
    assert a_dir.value.field == "path"
    with pytest.raises(NotFound) as missing:
        read_file(space.root, "models/nope.bin")
    assert missing.value.field == "path"


def test_get_file_copies_out_to_a_file_or_into_a_dir(space: Space) -> None:
    into_dir = get_file(space.root, "models/bert/config.json", space.downloads)
    assert into_dir == space.downloads / "config.json"
    assert into_dir.read_bytes() == b"{}"
    named = get_file(space.root, "top.txt", space.downloads / "renamed.txt")
    assert named.read_bytes() == b"top"


# ---------------------------------------------------------------- writing


def test_put_file_defaults_to_its_name_at_top_level(space: Space) -> None:
    entry = put_file(space.root, space.source)
    assert entry == Entry("upload.bin", "file", 300, entry.modified)
    assert (space.root / "upload.bin").read_bytes() == b"u" * 300
    assert space.source.read_bytes() == b"u" * 300
    assert no_temp_files(space.root)


def test_put_file_into_an_existing_dir_and_to_new_nested_paths(space: Space) -> None:
    assert put_file(space.root, space.source, "models").path == "models/upload.bin"
    assert put_file(space.root, space.source, "new/deeper/").path == "new/deeper/upload.bin"
    entry = put_file(space.root, space.source, "data/sets/train.bin")
    assert entry.path == "data/sets/train.bin" and entry.size == 300
    assert (space.root / "data/sets/train.bin").read_bytes() == b"u" * 300
    assert stat_entry(space.root, "data").size == 300
    assert stat_entry(space.root, "models").size == 1007 + 300


def test_put_file_replaces_an_existing_file(space: Space) -> None:
    entry = put_file(space.root, space.source, "top.txt")
    assert entry.size == 300 and (space.root / "top.txt").read_bytes() == b"u" * 300
    assert no_temp_files(space.root)


def test_put_file_errors(space: Space) -> None:
    with pytest.raises(NotFound) as missing:
        put_file(space.root, space.top / "no-such-file")
    assert missing.value.field == "source"
    with pytest.raises(Conflict) as under_a_file:
        put_file(space.root, space.source, "top.txt/inside.bin")
    assert under_a_file.value.field == "path"
    (space.root / "models" / "upload.bin").mkdir()
    with pytest.raises(Conflict):
        put_file(space.root, space.source, "models")  # models/upload.bin is a directory
    assert no_temp_files(space.root)


def test_put_file_creates_a_missing_root(space: Space) -> None:
    fresh = space.top / "envs" / "new" / "resources"
    assert put_file(fresh, space.source).path == "upload.bin"
    assert (fresh / "upload.bin").is_file()


def test_put_stream_writes_chunks(space: Space) -> None:
    entry = put_stream(space.root, "models/gpt/shard-1.bin", iter([b"ab", b"cd", b"e" * 10]))
    assert entry == Entry("models/gpt/shard-1.bin", "file", 14, entry.modified)
    assert (space.root / "models/gpt/shard-1.bin").read_bytes() == b"abcd" + b"e" * 10
    for dest in ("models", "", "."):
        with pytest.raises(Conflict) as a_dir:
            put_stream(space.root, dest, [b"x"])
        assert a_dir.value.field == "path"


def test_put_stream_failing_midway_keeps_the_old_file(space: Space) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        put_stream(space.root, "top.txt", broken())
    assert (space.root / "top.txt").read_bytes() == b"top"
    assert no_temp_files(space.root)


def test_put_replaces_an_inward_symlink_instead_of_writing_through_it(space: Space) -> None:
    (space.root / "alias.txt").symlink_to("top.txt")
    entry = put_stream(space.root, "alias.txt", [b"new"])
    assert entry.kind == "file"
    assert not (space.root / "alias.txt").is_symlink()
    assert (space.root / "alias.txt").read_bytes() == b"new"
    assert (space.root / "top.txt").read_bytes() == b"top"


def test_a_parent_swapped_for_an_outward_link_while_writing_is_refused(space: Space) -> None:
    """TOCTOU: the parent is checked again right before the rename."""
    models = space.root / "models"

    def swapping() -> Iterator[bytes]:
        yield b"first"
        models.rename(space.root / "models.old")
        models.symlink_to(space.outside)
        yield b"second"

    before = space.snapshot()
    with recording() as touched, pytest.raises(InvalidInput) as caught:
        put_stream(space.root, "models/secret.txt", swapping())
    assert caught.value.field == "path"
    assert space.snapshot() == before
    space.assert_untouched(touched)
    assert no_temp_files(space.root)
    assert not (space.root / "models.old" / "secret.txt").exists()


# ---------------------------------------------------------------- zip


def test_put_zip_unpacks_dirs_and_files(space: Space) -> None:
    archive = make_zip(
        space.top / "model.zip",
        [
            ("empty/", None),
            ("tok/", None),
            ("tok/vocab.txt", b"v" * 10),
            ("tok/merges/m.txt", b"m" * 4),
            ("weights.bin", b"w" * 100),
        ],
    )
    entries = put_zip(space.root, archive, "models/llm")
    assert [(e.path, e.kind, e.size) for e in entries] == [
        ("models/llm/empty", "dir", 0),
        ("models/llm/tok", "dir", 14),
        ("models/llm/tok/merges/m.txt", "file", 4),
        ("models/llm/tok/vocab.txt", "file", 10),
        ("models/llm/weights.bin", "file", 100),
    ]
    assert (space.root / "models/llm/empty").is_dir()
    assert (space.root / "models/llm/tok/merges/m.txt").read_bytes() == b"mmmm"
    assert stat_entry(space.root, "models/llm").size == 114
    assert no_temp_files(space.root)


def test_put_zip_at_top_level_and_over_existing_files(space: Space) -> None:
    archive = make_zip(space.top / "a.zip", [("top.txt", b"replaced"), ("more/b.txt", b"b")])
    assert [e.path for e in put_zip(space.root, archive)] == ["more/b.txt", "top.txt"]
    assert (space.root / "top.txt").read_bytes() == b"replaced"


def test_put_zip_refuses_type_clashes_before_writing(space: Space) -> None:
    clash = make_zip(space.top / "c.zip", [("ok.txt", b"ok"), ("models", b"a file over a dir")])
    with pytest.raises(Conflict):
        put_zip(space.root, clash)
    assert not (space.root / "ok.txt").exists()
    both = make_zip(space.top / "d.zip", [("ok.txt", b"ok"), ("a", b"file"), ("a/b", b"too")])
    with pytest.raises(InvalidInput):
        put_zip(space.root, both)
    assert not (space.root / "ok.txt").exists()


def test_put_zip_errors_on_bad_archives(space: Space) -> None:
    junk = space.top / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput) as bad:
        put_zip(space.root, junk)
    assert bad.value.field == "archive"
    with pytest.raises(NotFound) as missing:
        put_zip(space.root, space.top / "missing.zip")
    assert missing.value.field == "archive"


# ---------------------------------------------------------------- removing


def test_remove_a_file_and_a_tree(space: Space) -> None:
    remove(space.root, "top.txt")
    assert not (space.root / "top.txt").exists()
    remove(space.root, "models/bert")
    assert [e.path for e in list_dir(space.root, "models")] == ["models/readme.txt"]
    with pytest.raises(NotFound) as missing:
        remove(space.root, "models/bert")
    assert missing.value.field == "path"


def test_remove_a_tree_with_an_outward_link_inside_keeps_the_target(space: Space) -> None:
    (space.root / "models" / "bert" / "out").symlink_to(space.outside)
    (space.root / "models" / "bert" / "secret").symlink_to(space.outside / "secret.txt")
    before = space.snapshot()
    with recording() as touched:
        remove(space.root, "models")
    assert not (space.root / "models").exists()
    assert space.snapshot() == before
    space.assert_untouched(touched)


@pytest.mark.parametrize("rel", ["", ".", "./", "/", "models/.."])
def test_removing_the_root_is_refused(space: Space, rel: str) -> None:
    space.refused(lambda: remove(space.root, rel))
    assert (space.root / "models" / "bert" / "weights.bin").is_file()


# ---------------------------------------------------------------- confinement


def test_confined_resolves_inside_and_allows_missing_paths(space: Space) -> None:
    assert (
        confined(space.root, "models/bert", must_exist=True)
        == (space.root / "models/bert").resolve()
    )
    assert confined(space.root, "", must_exist=True) == space.root.resolve()
    assert confined(space.root, "new/file", must_exist=False) == space.root.resolve() / "new/file"
    with pytest.raises(NotFound) as missing:
        confined(space.root, "new/file", must_exist=True)
    assert missing.value.field == "path"


def test_the_refusal_names_the_path(space: Space) -> None:
    error = space.refused(lambda: confined(space.root, "../x", must_exist=False))
    assert "'../x'" in error.message
    assert "must stay inside the resources directory" in error.message


TRAVERSALS = [
    "../x",
    "a/../../x",
    "models/../../x",
    "/etc/passwd",
    "..",
    "a\x00b",
    "../outside/secret.txt",
]


def _operations(space: Space) -> dict[str, Callable[[str], object]]:
    return {
        "confined": lambda rel: confined(space.root, rel, must_exist=False),
        "list_dir": lambda rel: list_dir(space.root, rel),
        "read_file": lambda rel: read_file(space.root, rel),
        "get_file": lambda rel: get_file(space.root, rel, space.downloads),
        "put_file": lambda rel: put_file(space.root, space.source, rel),
        "put_stream": lambda rel: put_stream(space.root, rel, [b"evil"]),
        "put_zip": lambda rel: put_zip(space.root, space.downloads / "z.zip", rel),
        "remove": lambda rel: remove(space.root, rel),
    }


OPERATIONS = [
    "confined",
    "list_dir",
    "read_file",
    "get_file",
    "put_file",
    "put_stream",
    "put_zip",
    "remove",
]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("rel", TRAVERSALS)
def test_traversal_is_refused_and_touches_nothing_outside(
    space: Space, operation: str, rel: str
) -> None:
    action = _operations(space)[operation]
    archive = space.downloads / "z.zip"
    space.refused(lambda: action(rel), allowed=(space.source, archive))
    assert (space.top / "x").read_bytes() == b"sibling of the root"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_absolute_path_to_a_file_inside_the_root_is_refused(
    space: Space, operation: str
) -> None:
    inside = str(space.root / "top.txt")
    archive = space.downloads / "z.zip"
    space.refused(lambda: _operations(space)[operation](inside), allowed=(space.source, archive))
    assert (space.root / "top.txt").read_bytes() == b"top"


def test_an_inward_symlink_dir_is_allowed(space: Space) -> None:
    (space.root / "alias").symlink_to("models")
    (space.root / "deep").mkdir()
    (space.root / "deep" / "up").symlink_to("../models/bert")  # relative, with '..', inside
    assert [e.path for e in list_dir(space.root, "alias")] == ["alias/bert", "alias/readme.txt"]
    assert (
        read_file(space.root, "deep/up/config.json")
        == space.root.resolve() / "models/bert/config.json"
    )
    assert get_file(space.root, "alias/readme.txt", space.downloads).read_bytes() == b"hello"
    assert put_stream(space.root, "alias/new.txt", [b"n"]).path == "alias/new.txt"
    assert (space.root / "models" / "new.txt").read_bytes() == b"n"
    assert put_file(space.root, space.source, "alias").path == "alias/upload.bin"
    assert (space.root / "models" / "upload.bin").is_file()
    remove(space.root, "alias/new.txt")
    assert not (space.root / "models" / "new.txt").exists()
    remove(space.root, "alias")  # the link itself, not the directory it points to
    assert not (space.root / "alias").exists()
    assert (space.root / "models" / "readme.txt").is_file()


@pytest.fixture
def outward(space: Space) -> Space:
    (space.root / "link").symlink_to(space.outside)
    (space.root / "secret").symlink_to(space.outside / "secret.txt")
    (space.root / "chain").symlink_to("hop")
    (space.root / "hop").symlink_to("../outside")
    (space.root / "parent").symlink_to("..")
    return space


OUTWARD_USES = [
    ("list_dir", "link"),
    ("list_dir", "link/sub"),
    ("list_dir", "chain"),
    ("list_dir", "parent"),
    ("read_file", "link/secret.txt"),
    ("read_file", "secret"),
    ("read_file", "parent/x"),
    ("get_file", "link/secret.txt"),
    ("get_file", "link/sub/deep.txt"),
    ("get_file", "secret"),
    ("get_file", "chain/secret.txt"),
    ("put_file", "link"),
    ("put_file", "link/new.bin"),
    ("put_file", "link/sub/"),
    ("put_file", "secret"),
    ("put_stream", "link/new.bin"),
    ("put_stream", "link/secret.txt"),
    ("put_stream", "secret"),
    ("put_stream", "parent/x"),
    ("put_zip", "link"),
    ("put_zip", "chain/sub"),
    ("remove", "link/secret.txt"),
    ("remove", "link/sub"),
    ("remove", "chain/sub/deep.txt"),
    ("remove", "parent/x"),
    ("confined", "link/sub/deep.txt"),
]


@pytest.mark.parametrize(("operation", "rel"), OUTWARD_USES)
def test_an_outward_symlink_is_refused(outward: Space, operation: str, rel: str) -> None:
    action = _operations(outward)[operation]
    archive = outward.downloads / "z.zip"
    outward.refused(lambda: action(rel), allowed=(outward.source, archive))


def test_listing_the_root_with_outward_links_reads_nothing_outside(outward: Space) -> None:
    before = outward.snapshot()
    with recording() as touched:
        kinds = {e.path: (e.kind, e.size) for e in list_dir(outward.root)}
    assert kinds["link"] == ("link", 0) and kinds["secret"] == ("link", 0)
    assert outward.snapshot() == before
    outward.assert_untouched(touched)


@pytest.mark.parametrize("link", ["link", "secret", "chain", "parent"])
def test_removing_an_outward_link_removes_the_link_not_its_target(
    outward: Space, link: str
) -> None:
    """Decision: rm of a symlink entry is safe (unlink of the link); the target survives."""
    before = outward.snapshot()
    with recording() as touched:
        remove(outward.root, link)
    assert not os.path.lexists(outward.root / link)
    assert outward.snapshot() == before
    assert (outward.outside / "secret.txt").read_bytes() == b"secret"
    outward.assert_untouched(touched)


# ---------------------------------------------------------------- zip slip, links, bombs


def test_zip_slip_members_are_refused_whole(space: Space) -> None:
    evil = f"/tmp/codenv-evil-{uuid.uuid4().hex}.txt"
    cases = [
        [("ok.txt", b"ok"), ("../evil.txt", b"evil")],
        [("ok.txt", b"ok"), ("a/../../evil.txt", b"evil")],
        [("ok.txt", b"ok"), ("..\\evil.txt", b"evil")],
        [("ok.txt", b"ok"), (evil, b"evil")],
        [("ok.txt", b"ok"), ("C:/evil.txt", b"evil")],
        [("ok.txt", b"ok"), ("..", b"evil")],
    ]
    for number, members in enumerate(cases):
        archive = space.downloads / f"slip-{number}.zip"
        _write_raw_zip(archive, members)
        space.refused(lambda archive=archive: put_zip(space.root, archive), allowed=(archive,))
        space.refused(
            lambda archive=archive: put_zip(space.root, archive, "models"), allowed=(archive,)
        )
        assert not (space.root / "ok.txt").exists()
    assert not os.path.lexists(evil)


def _write_raw_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip with member names written as given (zipfile.writestr keeps them verbatim)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members:
            archive.writestr(zipfile.ZipInfo(name), content)
    names = zipfile.ZipFile(path).namelist()
    assert names[1:] == [name for name, _ in members[1:]]


def test_zip_member_through_an_outward_link_is_refused(outward: Space) -> None:
    archive = make_zip(
        outward.downloads / "through.zip", [("ok.txt", b"ok"), ("link/evil.txt", b"e")]
    )
    outward.refused(lambda: put_zip(outward.root, archive), allowed=(archive,))
    assert not (outward.outside / "evil.txt").exists()


def test_zip_symlink_member_is_refused(space: Space) -> None:
    archive = make_zip(space.downloads / "link.zip", [("ok.txt", b"ok")], links=("innocent",))
    error = space.refused(lambda: put_zip(space.root, archive), allowed=(archive,))
    assert "symbolic link" in error.message


def test_zip_bomb_over_max_bytes_is_refused(space: Space) -> None:
    archive = space.downloads / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("ok.txt", b"ok")
        for number in range(4):
            bomb.writestr(f"zeros-{number}.bin", bytes(1024 * 1024))
    assert archive.stat().st_size < 50_000
    error = space.refused(
        lambda: put_zip(space.root, archive, limits=WriteLimits(unzip_bytes=3 * 1024 * 1024)),
        allowed=(archive,),
        field="archive",
    )
    assert "unpacks to 4 MiB" in error.message and "CODENV_MAX_UNZIP_BYTES" in error.message
    entries = put_zip(space.root, archive, "fits", limits=WriteLimits(unzip_bytes=5 * 1024 * 1024))
    assert sum(e.size for e in entries) == 4 * 1024 * 1024 + 2


def test_every_error_is_a_codenv_error(space: Space) -> None:
    for action in (
        lambda: read_file(space.root, "../x"),
        lambda: read_file(space.root, "nope"),
        lambda: put_stream(space.root, "models", io.BytesIO(b"x")),
    ):
        with pytest.raises(CodenvError):
            action()
