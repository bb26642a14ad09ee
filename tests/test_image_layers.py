"""Image layers, the layer layout of a venv, and OCI image JSON (no registry, no podman).

The layer writer must be reproducible (the same files give the same digest, whatever their
mtimes, owners or host paths), and a venv must split so that two envs with the same
distribution share its layer byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from codenv.domain.errors import InvalidInput
from codenv.images.layers import (
    LAYER_GZIP,
    Layer,
    LayerEntry,
    gzip_tar_layer,
    write_blob,
    write_layer,
)
from codenv.images.oci import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    canonical_json,
    image_config,
    image_manifest,
    manifest_layers,
    pick_platform,
    read_oci_layout,
    write_oci_layout,
)
from codenv.images.venv_layers import interpreter_layer, tree_layer, venv_layers
from codenv.interpreters import Discovery
from support.pkgbuild import build_wheel

IMAGE_ENV = PurePosixPath("/opt/codenv/env")


def make_tree(root: Path, mtime: int) -> Path:
    """A small tree with every kind of entry the writer handles."""
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    tool = root / "pkg" / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o700)
    (root / "pkg" / "private.txt").write_text("secret-ish\n")
    (root / "pkg" / "private.txt").chmod(0o600)
    os.link(root / "pkg" / "__init__.py", root / "pkg" / "hardlink.py")
    (root / "pkg" / "link").symlink_to("/etc/os-release")
    (root / "pkg" / "sub").chmod(0o700)
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def layer_of(root: Path, blobs: Path, *, keep: str | None = None) -> Layer:
    spec = tree_layer(root, PurePosixPath("/opt/codenv/env"), "test")
    entries = [
        LayerEntry(entry.image_path, entry.source, keep_mtime=entry.source.name == keep)
        for entry in spec.entries
    ]
    return write_layer(entries, blobs, "test")


def members(layer: Layer) -> list[tarfile.TarInfo]:
    with tarfile.open(layer.path, "r:gz") as tar:
        return tar.getmembers()


def test_the_same_files_give_the_same_layer_whatever_their_place_mtimes_or_process(
    tmp_path: Path,
) -> None:
    first = layer_of(make_tree(tmp_path / "a", 1_600_000_000), tmp_path / "blobs-a")
    second = layer_of(make_tree(tmp_path / "b", 1_700_000_000), tmp_path / "blobs-b")
    assert first.descriptor == second.descriptor
    assert first.diff_id == second.diff_id
    assert first.path.read_bytes() == second.path.read_bytes()
    # Another interpreter process, another hash seed: the same bytes.
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[3]);"
        "from test_image_layers import layer_of;"
        "print(layer_of(Path(sys.argv[1]), Path(sys.argv[2])).descriptor.digest)"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a"), str(tmp_path / "c"),
         str(Path(__file__).parent)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )  # fmt: skip
    assert other.stdout.strip() == first.descriptor.digest


def test_a_layer_blob_is_described_by_its_digests(tmp_path: Path) -> None:
    layer = layer_of(make_tree(tmp_path / "tree", 1_600_000_000), tmp_path / "blobs")
    blob = layer.path.read_bytes()
    assert layer.path == tmp_path / "blobs" / "sha256" / hashlib.sha256(blob).hexdigest()
    assert layer.descriptor.media_type == LAYER_GZIP
    assert layer.descriptor.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.descriptor.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    # The gzip header: no file name flag, mtime 0.
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[3] == 0
    assert blob[4:8] == b"\0\0\0\0"
    assert [path.name for path in (tmp_path / "blobs" / "sha256").iterdir()] == [layer.path.name]
    assert oct(layer.path.stat().st_mode & 0o777) == oct(0o644)


def test_layer_entries_are_ordered_normalized_and_parents_come_first(tmp_path: Path) -> None:
    layer = layer_of(make_tree(tmp_path / "t", 1_600_000_000), tmp_path / "blobs", keep="tool")
    found = {member.name: member for member in members(layer)}
    names = [member.name for member in members(layer)]
    assert names[:3] == ["opt", "opt/codenv", "opt/codenv/env"]
    assert len(names) == len(set(names))  # every directory once
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name)
    assert all(
        m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in found.values()
    )
    base = "opt/codenv/env/pkg"
    assert found[f"{base}/sub"].isdir() and found[f"{base}/sub"].mode == 0o755
    assert found[f"{base}/private.txt"].mode == 0o644
    assert found[f"{base}/tool"].mode == 0o755
    assert found[f"{base}/tool"].mtime == 1_600_000_000  # keep_mtime
    assert found[f"{base}/private.txt"].mtime == 0
    assert found[f"{base}/link"].issym() and found[f"{base}/link"].linkname == "/etc/os-release"
    assert found[f"{base}/link"].mode == 0o777
    # A hard link is written as a second regular file with its content.
    assert found[f"{base}/hardlink.py"].isreg() and found[f"{base}/hardlink.py"].size == 6


def test_tmp_keeps_its_sticky_mode_when_a_layer_goes_below_it(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    layer = write_layer(
        [LayerEntry(PurePosixPath("/tmp/x/f"), tmp_path / "f")], tmp_path / "blobs", "t"
    )
    modes = {member.name: member.mode for member in members(layer)}
    assert modes == {"tmp": 0o1777, "tmp/x": 0o755, "tmp/x/f": 0o644}


@pytest.mark.parametrize(
    "paths",
    [
        ["relative/f"],
        ["/a/../f"],
        ["/a/f", "/a/f"],
        ["/a", "/a/f"],  # /a is a file in the layer: nothing can go below it
    ],
)
def test_bad_layer_entries_are_refused(tmp_path: Path, paths: list[str]) -> None:
    (tmp_path / "f").write_text("x")
    entries = [LayerEntry(PurePosixPath(path), tmp_path / "f") for path in paths]
    with pytest.raises(InvalidInput) as refused:
        write_layer(entries, tmp_path / "blobs", "t")
    assert refused.value.field == "layer"
    assert not [p for p in (tmp_path / "blobs" / "sha256").glob("*")]  # no half-written blob


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InvalidInput, match="neither a file"):
        write_layer([LayerEntry(PurePosixPath("/fifo"), tmp_path / "fifo")], tmp_path / "b", "t")


def test_blobs_and_gzipped_tars(tmp_path: Path) -> None:
    descriptor = write_blob(b'{"a":1}', tmp_path / "blobs", OCI_CONFIG)
    assert descriptor.to_dict() == {
        "mediaType": OCI_CONFIG,
        "digest": "sha256:" + hashlib.sha256(b'{"a":1}').hexdigest(),
        "size": 7,
    }
    tree = make_tree(tmp_path / "tree", 1_600_000_000)
    tar_path = tmp_path / "root.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(tree, arcname=".")
    first = gzip_tar_layer(tar_path, tmp_path / "one", "rootfs")
    second = gzip_tar_layer(tar_path, tmp_path / "two", "rootfs")
    assert first.descriptor == second.descriptor
    assert first.diff_id == "sha256:" + hashlib.sha256(tar_path.read_bytes()).hexdigest()


def test_a_tree_layer_keeps_symlinks_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * 10_000)
    root = tmp_path / "resources"
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.bin").write_bytes(b"m" * 100)
    (root / "escape").symlink_to(outside)
    spec = tree_layer(root, PurePosixPath("/opt/codenv/resources"), "codenv: resources")
    assert [str(entry.image_path) for entry in spec.entries] == [
        "/opt/codenv/resources",
        "/opt/codenv/resources/escape",
        "/opt/codenv/resources/models",
        "/opt/codenv/resources/models/m.bin",
    ]
    assert spec.size == 100
    found = {m.name: m for m in members(write_layer(spec.entries, tmp_path / "b", "r"))}
    assert found["opt/codenv/resources/escape"].linkname == str(outside)


# -- a real venv with real installs ------------------------------------------------------


@dataclass
class Venvs:
    first: Path
    second: Path
    python: Path


def python311(pythons: Discovery) -> Path:
    interpreter = pythons.for_minor("3.11")
    if interpreter is None:
        pytest.skip("no Python 3.11 on this machine")
    return Path(interpreter.path)


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory, pythons: Discovery) -> Iterator[Venvs]:
    """Two venvs with the same wheels installed by pip (which writes timestamp .pyc files)."""
    python = python311(pythons)
    work = tmp_path_factory.mktemp("venvs")
    wheels = work / "wheels"
    text = "".join(f"line {number}\n" for number in range(200_000))  # ~2.2 MB
    build_wheel(wheels, "large", "1.0", modules={"large/__init__.py": "", "large/a.txt": text})
    build_wheel(
        wheels, "big", "2.0", modules={"big/__init__.py": "", "big/a.txt": text[: 1300 * 1024]}
    )
    build_wheel(wheels, "small", "1.0")
    build_wheel(wheels, "single", "1.0", modules={"single.py": "X = 1\n"})
    build_wheel(
        wheels, "ns-one", "1.0", modules={"nspkg/one/__init__.py": "", "nspkg/one/a.txt": text}
    )
    build_wheel(wheels, "ns-two", "1.0", modules={"nspkg/two/__init__.py": ""})
    first, second = work / "first", work / "second"
    # pip from the interpreter's own bundled wheel (what ensurepip runs): no pip in the venvs.
    pip_wheel = subprocess.run(
        [str(python), "-c", "import ensurepip, pathlib; print(next(pathlib.Path("
         "ensurepip.__file__).parent.glob('_bundled/pip-*.whl')))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    for venv in (first, second):
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
             "--no-deps", *map(str, wheels.glob("*.whl"))],
            check=True,
            env={**os.environ, "PYTHONPATH": pip_wheel, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )  # fmt: skip
    yield Venvs(first, second, python)


def site_packages(venv: Path) -> PurePosixPath:
    (site,) = venv.glob("lib/python3*/site-packages")
    return IMAGE_ENV / site.relative_to(venv).as_posix()


def test_a_venv_splits_into_package_layers_largest_first_then_a_head(venvs: Venvs) -> None:
    specs = venv_layers(venvs.first, IMAGE_ENV)
    site = site_packages(venvs.first)
    labels = [spec.created_by for spec in specs]
    assert labels[0].startswith("codenv: large 1.0 (")
    assert labels[1].startswith("codenv: big 2.0 (")
    assert labels[-1] == "codenv: env head"
    assert len(specs) == 3  # small, single and the shared namespace stay in the head
    assert specs[0].size > specs[1].size >= 1024 * 1024
    large = {entry.image_path for entry in specs[0].entries}
    assert site / "large" / "a.txt" in large
    assert all(path.is_relative_to(site / "large") for path in large)
    head = {entry.image_path for entry in specs[-1].entries}
    for expected in (
        site / "large-1.0.dist-info" / "RECORD",
        site / "small" / "__init__.py",
        site / "single.py",
        site / "nspkg" / "one" / "a.txt",  # two distributions share nspkg/
        IMAGE_ENV / "pyvenv.cfg",
        IMAGE_ENV / "bin" / "python",
        IMAGE_ENV / "lib64",
    ):
        assert expected in head, expected
    assert not head & large
    everything = [entry.image_path for spec in specs for entry in spec.entries]
    assert len(everything) == len(set(everything))
    # pip wrote timestamp .pyc files: stale in an image, and different in every install.
    assert (venvs.first / site.relative_to(IMAGE_ENV) / "large" / "__pycache__").is_dir()
    assert not [path for path in everything if path.suffix == ".pyc"]


def test_two_venvs_share_their_package_layers_byte_for_byte(venvs: Venvs, tmp_path: Path) -> None:
    first = venv_layers(venvs.first, IMAGE_ENV)
    second = venv_layers(venvs.second, IMAGE_ENV)
    written = [
        [write_layer(spec.entries, tmp_path / name, spec.created_by) for spec in specs[:-1]]
        for name, specs in (("one", first), ("two", second))
    ]
    assert [layer.descriptor for layer in written[0]] == [layer.descriptor for layer in written[1]]
    assert [layer.diff_id for layer in written[0]] == [layer.diff_id for layer in written[1]]


def test_limits_on_package_layers(venvs: Venvs) -> None:
    assert len(venv_layers(venvs.first, IMAGE_ENV, max_package_layers=1)) == 2
    assert len(venv_layers(venvs.first, IMAGE_ENV, min_bytes=10**9)) == 1
    many = venv_layers(venvs.first, IMAGE_ENV, min_bytes=1)
    assert any(spec.created_by.startswith("codenv: small 1.0") for spec in many)
    assert not any("single" in spec.created_by or "ns-" in spec.created_by for spec in many)


def test_hash_based_pyc_files_stay_and_timestamp_ones_go(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    package = venv / "lib" / "python3.11" / "site-packages" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (package / "__init__.py").write_text("")
    (package / "data.bin").write_bytes(b"d" * 2_000_000)
    # The .pyc flags word: 1 = validated by the source's hash (SOURCE_DATE_EPOCH builds).
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x01\0\0\0" + b"h" * 8)
    (package / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\0\0\0\0" + b"t" * 8)
    dist_info = package.parent / "pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "RECORD").write_text("pkg/__init__.py,,\npkg/data.bin,,\n../../../bin/tool,,\n")
    package_layer, head = venv_layers(venv, IMAGE_ENV)
    names = {entry.image_path.name for entry in package_layer.entries}
    assert {"data.bin", "a.cpython-311.pyc"} <= names
    assert "b.cpython-311.pyc" not in names
    assert package_layer.size == 2_000_016
    assert {entry.image_path.name for entry in head.entries} >= {"RECORD", "pyvenv.cfg"}


def test_not_a_venv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        venv_layers(tmp_path, IMAGE_ENV)
    assert refused.value.field == "venv"


def test_the_interpreter_layer_has_what_runs_and_not_the_rest(venvs: Venvs) -> None:
    prefix = Path(
        subprocess.run(
            [str(venvs.python), "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    spec = interpreter_layer(prefix)
    paths = {PurePosixPath(entry.image_path) for entry in spec.entries}
    image = PurePosixPath(prefix)
    stdlib = image / "lib" / "python3.11"
    assert {image / "bin" / "python3.11", image / "bin" / "python3"} <= paths
    assert stdlib / "os.py" in paths
    assert stdlib / "lib-dynload" in paths
    assert any(path.parent == stdlib / "__pycache__" for path in paths)
    assert any(path.name.startswith("libpython3.11") for path in paths)
    for left_out in ("site-packages", "test", "idlelib", "tkinter", "ensurepip"):
        assert stdlib / left_out not in paths
    assert not any(path.name == "tests" or ".opt-" in path.name for path in paths)
    assert not any(path.is_relative_to(image / "include") for path in paths)
    assert not any(path.name.startswith("config-3.11") for path in paths)
    assert all(
        entry.keep_mtime and str(entry.image_path) == str(entry.source) for entry in spec.entries
    )
    assert 20_000_000 < spec.size < 120_000_000


# -- OCI JSON and layouts ------------------------------------------------------------------


def small_image(
    work: Path, tag: str = "v1", text: str = "hello", layout: Path | None = None
) -> Path:
    """A one-file image written as an OCI layout (`work/layout`, or added to `layout`)."""
    (work / "src").mkdir(parents=True, exist_ok=True)
    (work / "src" / "f").write_text(text)
    blobs = work / "blobs"
    layer = write_layer([LayerEntry(PurePosixPath("/f"), work / "src" / "f")], blobs, "t")
    config = image_config(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}},
        diff_ids=[layer.diff_id], env={"PATH": "/bin"}, labels={}, history=["t"],
    )  # fmt: skip
    manifest = image_manifest(write_blob(config, blobs, OCI_CONFIG), [layer.descriptor])
    layout = layout or work / "layout"
    write_oci_layout(layout, manifest, config, [layer.path], tag)
    return layout


def test_a_layout_round_trips(tmp_path: Path) -> None:
    layout = small_image(tmp_path / "one")
    base = read_oci_layout(layout, "v1")
    assert base == read_oci_layout(layout)  # the only image needs no tag
    assert base.config["config"]["Env"] == ["PATH=/bin"]
    (layer,) = base.layers
    assert base.layer_paths[layer.digest].is_relative_to(layout.resolve() / "blobs")
    assert base.layer_paths[layer.digest].read_bytes()[:2] == b"\x1f\x8b"
    # A second tag in the same layout: both readable; then a tag must be named.
    small_image(tmp_path / "two", "v2", "other", layout=layout)
    assert read_oci_layout(layout, "v2").layers != base.layers
    assert read_oci_layout(layout, "v1") == base
    with pytest.raises(InvalidInput, match="name one with a tag"):
        read_oci_layout(layout)
    with pytest.raises(InvalidInput, match=r"no image tagged 'v3' \(tags: v1, v2\)"):
        read_oci_layout(layout, "v3")
    # Writing a tag again replaces it.
    small_image(tmp_path / "three", "v2", "third", layout=layout)
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 2


def edit_index(layout: Path, **changes: object) -> None:
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(changes)
    (layout / "index.json").write_text(json.dumps(index))


def test_broken_layouts_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not an OCI image layout") as refused:
        read_oci_layout(tmp_path / "nowhere")
    assert refused.value.field == "base"
    layout = small_image(tmp_path / "traversal")
    edit_index(layout, digest="sha256:../../../../etc/passwd")
    with pytest.raises(InvalidInput, match="invalid digest"):
        read_oci_layout(layout)
    layout = small_image(tmp_path / "tampered")
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]
    original = manifest_path.read_bytes()
    # The same size, other bytes: the digest check refuses it.
    manifest_path.write_bytes(original.replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with pytest.raises(InvalidInput, match="does not match its digest"):
        read_oci_layout(layout)
    manifest_path.write_bytes(original + b" ")
    with pytest.raises(InvalidInput, match="bytes, not"):
        read_oci_layout(layout)
    manifest_path.write_bytes(original)
    layer_blob = layout / "blobs" / "sha256" / json.loads(original)["layers"][0]["digest"][7:]
    outside = tmp_path / "outside"
    outside.write_bytes(layer_blob.read_bytes())
    layer_blob.unlink()
    with pytest.raises(InvalidInput, match="lacks the layer blob"):
        read_oci_layout(layout)
    layer_blob.symlink_to(outside)  # a blob path that leads out of blobs/
    with pytest.raises(InvalidInput, match="outside the layout's blobs"):
        read_oci_layout(layout)


def test_a_nested_index_is_followed_to_its_platform(tmp_path: Path) -> None:
    layout = small_image(tmp_path)
    expected = read_oci_layout(layout)
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    amd64 = {**entry, "platform": {"os": "linux", "architecture": "amd64"}}
    arm64 = {
        **entry,
        "digest": "sha256:" + "0" * 64,
        "platform": {"os": "linux", "architecture": "arm64"},
    }
    nested = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm64, amd64]}
    descriptor = write_blob(canonical_json(nested), layout / "blobs", OCI_INDEX)
    top = {**descriptor.to_dict(), "annotations": {REF_NAME: "multi"}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    assert read_oci_layout(layout, "multi") == expected
    with pytest.raises(
        InvalidInput, match=r"no linux/s390x manifest \(it has linux/amd64, linux/arm64\)"
    ):
        pick_platform(nested, architecture="s390x")


def test_manifests_are_parsed_and_validated() -> None:
    layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "digest": "sha256:" + "a" * 64, "size": 10}  # fmt: skip
    config = {"mediaType": "application/vnd.docker.container.image.v1+json",
              "digest": "sha256:" + "b" * 64, "size": 5}  # fmt: skip
    docker = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": [layer]}
    (parsed,) = manifest_layers(docker)
    assert parsed.media_type == layer["mediaType"] and parsed.size == 10
    for broken in (
        {**docker, "schemaVersion": 1},
        {**docker, "mediaType": OCI_INDEX},
        {**docker, "layers": [{**layer, "size": -1}]},
        {**docker, "layers": [{**layer, "digest": "md5:abc"}]},
        {**docker, "config": None},
    ):
        with pytest.raises(InvalidInput) as refused:
            manifest_layers(broken)
        assert refused.value.field == "base"


def test_image_config_merges_and_is_byte_stable() -> None:
    base = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Labels": {"a": "1"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
    }  # fmt: skip
    arguments = {
        "diff_ids": ["sha256:" + "2" * 64, "sha256:" + "3" * 64],
        "env": {"PATH": "/opt/codenv/env/bin:/usr/bin:/bin", "CODENV_ENV": "demo"},
        "history": ["codenv: numpy 2.1.3 (45.1 MB)", "codenv: env head"],
    }
    data = image_config(base, labels={"b": "2", "a": "override"}, **arguments)  # type: ignore[arg-type]
    assert data == image_config(base, labels={"a": "override", "b": "2"}, **arguments)  # type: ignore[arg-type]
    assert data == canonical_json(json.loads(data))
    config = json.loads(data)
    assert config["config"]["Env"] == [
        "PATH=/opt/codenv/env/bin:/usr/bin:/bin", "LANG=C.UTF-8", "CODENV_ENV=demo",
    ]  # fmt: skip
    assert config["config"]["Labels"] == {"a": "override", "b": "2"}
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, *arguments["diff_ids"]]
    assert [item["created_by"] for item in config["history"]] == ["base", *arguments["history"]]
    assert config["history"][-1]["created"] == config["created"] == "1970-01-01T00:00:00Z"
    assert base["config"]["Env"] == ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]  # not mutated
    with pytest.raises(InvalidInput) as refused:
        image_config(base, diff_ids=["sha256:" + "2" * 64], env={}, labels={}, history=[])
    assert refused.value.field == "history"
    with pytest.raises(InvalidInput):
        image_config(base, diff_ids=[], env={"A=B": "x"}, labels={}, history=[])


def test_image_manifest_is_oci_and_canonical(tmp_path: Path) -> None:
    config = write_blob(b"{}", tmp_path, OCI_CONFIG)
    docker_layer = manifest_layers(
        {"schemaVersion": 2, "config": config.to_dict(),
         "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                     "digest": "sha256:" + "a" * 64, "size": 10}]}
    )  # fmt: skip
    data = image_manifest(config, docker_layer, {"org.opencontainers.image.title": "demo"})
    manifest = json.loads(data)
    assert data == canonical_json(manifest)
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["layers"][0]["mediaType"] == LAYER_GZIP
    assert manifest["annotations"] == {"org.opencontainers.image.title": "demo"}
