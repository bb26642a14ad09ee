"""Benchmark container images: build and push of the Visual ML (CPU) env, cold and warm, and
what a second env sharing its large packages adds to the registry and to a node.

Usage (from the project root, as root: podman and the base image need it):

    .venv/bin/python benchmarks/bench_images.py [--python 3.12] [--set visual-ml:cpu]
        [--index-url URL] [--json FILE] [--keep DIR]

One run, this machine, one fresh CODENV_HOME, a fresh registry on loopback (Debian's
docker-registry, scripts/registry) and the base image the tests make (mmdebstrap, cached):

  env         codenv create of the set (public index); du -sb of its revision
  cold        codenv images build ENV, the registry empty (first push)
  warm        codenv images build ENV again: same revision, every blob already there
  second env  numpy, pandas, scipy, scikit-learn pinned to the first env's versions + tabulate:
              the registry's bytes on disk before and after its image is pushed
  node        podman pulls image 1 then image 2: growth of podman's storage on the second pull
  baseline    the env's revision directory written as one tar.gz with tarfile + gzip (level 6,
              codenv's), i.e. what writing a naive one-layer image of the env costs

Each image build is timed three ways: the wall time of the command, the build's own row
(`codenv builds ENV --json`: duration_seconds) and the step lines of its log (`codenv logs ENV
--build ID`: base image, install in the sandbox, writing layers, push). Only public tools:
time.perf_counter around whole processes, GNU du, tarfile/gzip, the registry's HTTP API,
podman. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import sys
import tarfile
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_support import (
    BenchError,
    du_bytes,
    find_codenv,
    make_envs,
    progress,
    project_revision,
    run,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.base_image import base_image_available, base_image_layout  # noqa: E402
from support.podman import Podman, podman_available  # noqa: E402
from support.registry import RunningRegistry, registry_available, start_registry  # noqa: E402

DEFAULT_INDEX_URL = "https://pypi.org/simple"
CONFIG = "k8s"
FIRST, SECOND = "vml", "shared"
SHARED_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn")
SMALL_PACKAGE = "tabulate"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
STEP = re.compile(r"^==> \[(\d\d):(\d\d):(\d\d\.\d+)\] ([a-z ]+)(?::|$)", re.MULTILINE)
BYTECODE = re.compile(r"Bytecode compiled (\d+) files in ([\d.]+)(m?s)")
LAYER_LINE = re.compile(r"^layer ([0-9a-f]{12}) (.+): ([\d.]+) MB$", re.MULTILINE)
# The log's steps, and the label each span between two of them gets in the report.
SPANS = {"planning": "base image", "installing": "install in sandbox",
         "layers": "writing layers", "pushing": "push"}  # fmt: skip
MB = 1e6


@dataclass
class Bench:
    codenv: str
    env: dict[str, str]
    root: Path
    registry: RunningRegistry
    python: str

    def cli(self, *args: str) -> Any:
        """A codenv command's JSON answer."""
        return json.loads(run([self.codenv, *args], self.env, sync=False).stdout)


def _check_tools() -> None:
    for reason in (registry_available(), podman_available(), base_image_available()):
        if reason is not None:
            raise BenchError(reason)


def _newest_pyenv_python(bench: Bench) -> str:
    """The newest pyenv CPython 3.11 or 3.12 codenv finds, as X.Y."""
    found = bench.cli("pythons", "--json")["interpreters"]
    versions = [
        tuple(int(part) for part in item["version"].split(".")[:3])
        for item in found
        if item.get("source") == "pyenv" and item["version"].startswith(("3.11.", "3.12."))
    ]
    if not versions:
        raise BenchError("no pyenv Python 3.11 or 3.12 found by `codenv pythons`")
    newest = max(versions)
    return f"{newest[0]}.{newest[1]}"


def _revision_dir(bench: Bench, name: str) -> Path:
    shown = bench.cli("show", name, "--json")
    return Path(shown["path"]) / "revisions" / str(shown["active_revision"])


# --------------------------------------------------------------------------- image builds


def _spans(log: str) -> dict[str, float]:
    """Seconds between the log's step lines (UTC clock times; a build may cross midnight)."""
    steps = [
        (timedelta(hours=int(h), minutes=int(m), seconds=float(s)), name)
        for h, m, s, name in STEP.findall(log)
    ]
    spans: dict[str, float] = {}
    for (start, name), (end, _next) in itertools.pairwise(steps):
        seconds = (end - start).total_seconds() % 86400
        if name in SPANS:
            spans[SPANS[name]] = spans.get(SPANS[name], 0.0) + seconds
    return spans


def _bytecode(log: str) -> tuple[int, float] | None:
    """uv's own line: how many .pyc the install compiled, and in how long."""
    found = BYTECODE.search(log)
    if found is None:
        return None
    seconds = float(found[2]) / (1000 if found[3] == "ms" else 1)
    return int(found[1]), seconds


def build_image(bench: Bench, name: str) -> dict[str, Any]:
    """`codenv images build NAME` (the local CLI waits for the build); its figures."""
    os.sync()
    started = time.perf_counter()
    run([bench.codenv, "images", "build", name, "--config", CONFIG], bench.env, sync=False)
    wall = time.perf_counter() - started
    images = bench.cli("images", name, "--json")
    [image] = [i for i in images["images"] if i["revision"] == images["active_revision"]]
    if image["status"] != "pushed":
        raise BenchError(f"the image of {name} is {image['status']}: {image.get('error')}")
    [row] = [b for b in bench.cli("builds", name, "--json") if b["id"] == image["build_id"]]
    log = run([bench.codenv, "logs", name, "--build", image["build_id"]], bench.env).stdout
    return {
        "wall_seconds": wall,
        "build_seconds": row["duration_seconds"],
        "kind": row.get("kind"),
        "spans": _spans(log),
        "layers": {label: digest for digest, label, _mb in LAYER_LINE.findall(log)},
        "bytecode": _bytecode(log),
        "reference": f"{image['repository']}:{image['tag']}",
        "digest": image["digest"],
        "size_bytes": image["size_bytes"],
        "pushed_bytes": image["pushed_bytes"],
    }


# --------------------------------------------------------------------------- the registry


def _manifest(registry: RunningRegistry, reference: str) -> tuple[dict[str, Any], int]:
    repository, _, tag = reference.split("/", 1)[1].rpartition(":")
    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read(4 * 1024 * 1024)
    manifest: dict[str, Any] = json.loads(body)
    return manifest, len(body)


def _uncompressed_bytes(path: Path) -> int:
    """The size of a gzip layer's tar: what a node unpacks."""
    total = 0
    with gzip.open(path, "rb") as layer:
        while chunk := layer.read(4 * 1024 * 1024):
            total += len(chunk)
    return total


def _base_digests(layout: Path) -> set[str]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return {layer["digest"] for layer in manifest["layers"]}


def layer_figures(registry: RunningRegistry, reference: str, base: set[str]) -> dict[str, Any]:
    """An image's layers as the registry serves them: digest, gzip and tar sizes, whether the
    base image has it; and the sizes of its config and manifest."""
    manifest, manifest_bytes = _manifest(registry, reference)
    layers = [
        {"digest": layer["digest"], "gz": layer["size"], "base": layer["digest"] in base,
         "raw": _uncompressed_bytes(registry.blob_file(layer["digest"]))}
        for layer in manifest["layers"]
    ]  # fmt: skip
    return {"layers": layers, "config_bytes": manifest["config"]["size"],
            "manifest_bytes": manifest_bytes}  # fmt: skip


def _non_base(figures: dict[str, Any], key: str) -> int:
    return sum(layer[key] for layer in figures["layers"] if not layer["base"])


# --------------------------------------------------------------------------- baselines


def tar_gz_baseline(source: Path, target: Path) -> dict[str, float]:
    """The env dir as one tar.gz, written by Python's tarfile + gzip at codenv's level."""
    os.sync()
    started = time.perf_counter()
    with tarfile.open(target, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname="opt/codenv/env")
    seconds = time.perf_counter() - started
    raw = 0
    with gzip.open(target, "rb") as stream:
        while chunk := stream.read(4 * 1024 * 1024):
            raw += len(chunk)
    figures = {"seconds": seconds, "gz_bytes": target.stat().st_size, "raw_bytes": raw}
    target.unlink()
    return figures


def _pins(bench: Bench) -> str:
    installed = bench.cli("installed", FIRST, "--json")["packages"]
    versions = {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in installed}
    missing = [name for name in SHARED_PACKAGES if name not in versions]
    if missing:
        raise BenchError(f"{FIRST} has no {', '.join(missing)}: not a Visual ML set?")
    return "".join(f"{n}=={versions[n]}\n" for n in SHARED_PACKAGES) + f"{SMALL_PACKAGE}\n"


def node_storage(bench: Bench, references: list[str]) -> list[tuple[int, float]]:
    """podman's storage in bytes (empty at first), then after pulling each reference in turn,
    with the pull's wall time."""
    sizes: list[tuple[int, float]] = []
    with Podman(bench.root / "podman") as podman:
        sizes.append((podman.storage_bytes(), 0.0))
        try:
            for reference in references:
                started = time.perf_counter()
                podman.pull(reference)
                sizes.append((podman.storage_bytes(), time.perf_counter() - started))
            # The image really runs: the shared packages import from their shared layers.
            code = "import numpy, pandas, scipy, sklearn, tabulate; print(sklearn.__version__)"
            ran = podman.run(references[-1], ["python", "-c", code])
            if ran.returncode != 0:
                raise BenchError(f"the second image does not run: {ran.stderr[-2000:]}")
        finally:
            podman.reset()
    return sizes


# --------------------------------------------------------------------------- the scenario


def _first_env(bench: Bench, set_id: str) -> dict[str, Any]:
    progress(f"codenv create {FIRST} --set {set_id} (public index)")
    create = run([bench.codenv, "create", FIRST, "--python", bench.python, "--set", set_id],
                 bench.env)  # fmt: skip
    run([bench.codenv, "save", FIRST, "--containers", CONFIG], bench.env, sync=False)
    revision = _revision_dir(bench, FIRST)
    progress("image build, cold registry")
    cold = build_image(bench, FIRST)
    progress("image build again, warm registry (the same revision)")
    warm = build_image(bench, FIRST)
    progress("baseline: the revision as one tar.gz")
    tar = tar_gz_baseline(revision, bench.root / "baseline.tar.gz")
    return {"create_seconds": create.seconds, "du_bytes": du_bytes([revision]),
            "cold": cold, "warm": warm, "tar_gz": tar}  # fmt: skip


def _second_env(bench: Bench) -> dict[str, Any]:
    requirements = bench.root / "second.txt"
    requirements.write_text(_pins(bench))
    progress(f"codenv create {SECOND}: {requirements.read_text().strip().replace(chr(10), ' ')}")
    run([bench.codenv, "create", SECOND, "--python", bench.python, "-r", str(requirements)],
        bench.env)  # fmt: skip
    run([bench.codenv, "save", SECOND, "--containers", CONFIG], bench.env, sync=False)
    before = bench.registry.storage_bytes()
    progress(f"image build of {SECOND}")
    image = build_image(bench, SECOND)
    return {"registry_before": before, "registry_after": bench.registry.storage_bytes(),
            "du_bytes": du_bytes([_revision_dir(bench, SECOND)]), "image": image}  # fmt: skip


def scenario(bench: Bench, set_id: str, layout: Path) -> dict[str, Any]:
    first = _first_env(bench, set_id)
    second = _second_env(bench)
    base = _base_digests(layout)
    progress("reading both manifests and layers from the registry")
    first["registry"] = layer_figures(bench.registry, first["cold"]["reference"], base)
    second["registry"] = layer_figures(bench.registry, second["image"]["reference"], base)
    progress("podman: pull image 1, then image 2")
    refs = [first["cold"]["reference"], second["image"]["reference"]]
    return {"first": first, "second": second, "node": node_storage(bench, refs)}


# --------------------------------------------------------------------------- the report


def _mb(size: float) -> str:
    return f"{size / MB:.1f} MB"


def _line(label: str, value: str, note: str = "", warm: str = "") -> None:
    print(f"  {label:<44}{value:>12}{warm:>12}   {note}".rstrip())


def _unshared(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Package layers both images have (same label: same distribution, version and size)
    whose digests differ: they should have been one blob."""
    ones, twos = first["cold"]["layers"], second["image"]["layers"]
    return [f"{label}: {ones[label]} / {twos[label]}" for label in sorted(ones.keys() & twos.keys())
            if ones[label] != twos[label] and "env head" not in label]  # fmt: skip


def _report_baselines(first: dict[str, Any]) -> None:
    tar = first["tar_gz"]
    _line("env on disk (du -sb of the revision)", _mb(first["du_bytes"]))
    _line("codenv create of the set (public index)", f"{first['create_seconds']:.1f} s")
    _line("baseline: the revision as one tar.gz", f"{tar['seconds']:.1f} s",
          f"{_mb(tar['gz_bytes'])} gzip of {_mb(tar['raw_bytes'])} of tar, "
          f"{tar['seconds'] / tar['raw_bytes'] * 1e9:.1f} s per GB of tar")  # fmt: skip


def _report_builds(first: dict[str, Any]) -> None:
    cold, warm, tar = first["cold"], first["warm"], first["tar_gz"]
    print(f"\n  {'image build and push':<44}{'cold':>12}{'warm':>12}")
    _line("codenv images build (wall)", f"{cold['wall_seconds']:.1f} s",
          f"cold: {cold['wall_seconds'] / first['create_seconds']:.2f}x the create",
          f"{warm['wall_seconds']:.1f} s")  # fmt: skip
    _line(f"build row duration_seconds (kind {cold['kind']})", f"{cold['build_seconds']:.1f} s", "",
          f"{warm['build_seconds']:.1f} s")  # fmt: skip
    for span in SPANS.values():
        one, two = cold["spans"].get(span, 0.0), warm["spans"].get(span, 0.0)
        note = f"cold: {one / tar['seconds']:.2f}x the tar.gz" if span == "writing layers" else ""
        _line(f"  {span}", f"{one:.1f} s", note, f"{two:.1f} s")
    if cold["bytecode"]:
        _line("  of the install: uv compiling bytecode", f"{cold['bytecode'][1]:.1f} s",
              f"{cold['bytecode'][0]} files")  # fmt: skip
    raw = _non_base(first["registry"], "raw")
    per_gb = cold["spans"].get("writing layers", 0.0) / raw * 1e9
    _line("  writing layers per GB of tar", f"{per_gb:.1f} s",
          f"{per_gb / (tar['seconds'] / tar['raw_bytes'] * 1e9):.2f}x the tar.gz's; "
          f"non-base layers hold {_mb(raw)} of tar")  # fmt: skip
    _line("image size (layers, config, manifest)", _mb(cold["size_bytes"]),
          f"{cold['size_bytes'] / first['du_bytes']:.2f}x the env on disk; the tar.gz "
          f"{tar['gz_bytes'] / first['du_bytes']:.2f}x")  # fmt: skip
    push = cold["spans"].get("push", 0.0)
    _line("sent to the registry", _mb(cold["pushed_bytes"]),
          f"cold: {cold['pushed_bytes'] / MB / max(push, 1e-9):.0f} MB/s",
          _mb(warm["pushed_bytes"]))  # fmt: skip
    same = "the same digest" if cold["digest"] == warm["digest"] else "A DIFFERENT DIGEST"
    print(f"  the rebuild of the same revision gave {same}")


def _report_sharing(first: dict[str, Any], second: dict[str, Any]) -> None:
    image, layers = second["image"], second["registry"]
    grown = second["registry_after"] - second["registry_before"]
    single = _non_base(layers, "gz") + layers["config_bytes"] + layers["manifest_bytes"]
    known = {layer["digest"] for layer in first["registry"]["layers"]}
    shared = sum(layer["digest"] in known for layer in layers["layers"])
    print(f"\n  second env: {', '.join(SHARED_PACKAGES)} (the first env's versions)"
          f" + {SMALL_PACKAGE}")  # fmt: skip
    _line("its image build (wall)", f"{image['wall_seconds']:.1f} s",
          f"build row {image['build_seconds']:.1f} s")  # fmt: skip
    _line("its image size", _mb(image["size_bytes"]))
    _line("its env on disk (du -sb)", _mb(second["du_bytes"]))
    _line("its layers the registry had already", f"{shared} of {len(layers['layers'])}")
    _line("registry growth (bytes of its data dir)", _mb(grown),
          f"{grown / image['size_bytes']:.4f} of its image, "
          f"{grown / second['du_bytes']:.4f} of its env on disk")  # fmt: skip
    _line("sent to the registry", _mb(image["pushed_bytes"]))
    _line("growth with one layer per image (computed)", _mb(single),
          f"{single / max(grown, 1):.0f}x what per-package layers grew it")  # fmt: skip
    for problem in _unshared(first, second):
        print(f"  NOT SHARED (same package, another digest): {problem}")


def _report_node(first: dict[str, Any], second: dict[str, Any], node: list[Any]) -> None:
    ones, twos = first["registry"]["layers"], second["registry"]["layers"]
    known = {layer["digest"] for layer in ones}
    prefix = 0
    while prefix < min(len(ones), len(twos)) and ones[prefix]["digest"] == twos[prefix]["digest"]:
        prefix += 1
    (empty, _), (after_one, pull_one), (after_two, pull_two) = node
    grown = after_two - after_one
    print("\n  node storage (podman, overlay, blocks of its storage dir)")
    _line("pull of image 1", _mb(after_one - empty), f"{pull_one:.1f} s")
    _line("pull of image 2 afterwards", _mb(grown),
          f"{pull_two:.1f} s; {grown / (after_one - empty):.2f}x pull 1")  # fmt: skip
    _line("  with one layer per image (computed)", _mb(_non_base(second["registry"], "raw")),
          "image 2's non-base tar bytes")  # fmt: skip
    _line("  if every shared layer were reused", _mb(sum(
          layer["raw"] for layer in twos if layer["digest"] not in known)),
          "tar bytes of image 2's layers image 1 lacks")  # fmt: skip
    _line("  common leading layers (same parent chain)", f"{prefix} of {len(twos)}",
          f"tar bytes after them: {_mb(sum(layer['raw'] for layer in twos[prefix:]))} "
          "(a node stores a layer per parent chain)")  # fmt: skip


def _load_average() -> str:
    one, five, _ = os.getloadavg()
    busy = " (busy: other work competes, figures vary)" if one > (os.cpu_count() or 1) else ""
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} CPUs{busy}"


def report(figures: dict[str, Any], args: argparse.Namespace, python: str) -> None:
    print(f"codenv {project_revision()}; set {args.set}, Python {python} (pyenv)")
    print(f"registry: docker-registry on loopback; base image: {figures['base_layout']}")
    print(f"at the start: {figures['load_start']}; at the end: {_load_average()}")
    _report_baselines(figures["first"])
    _report_builds(figures["first"])
    _report_sharing(figures["first"], figures["second"])
    _report_node(figures["first"], figures["second"], figures["node"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--python", help="X.Y (default: the newest pyenv 3.11 or 3.12)")
    parser.add_argument("--set", default="visual-ml:cpu")
    parser.add_argument("--index-url", default=DEFAULT_INDEX_URL)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    _check_tools()
    load_start = _load_average()
    layout = base_image_layout()
    with ExitStack() as stack:
        if args.keep:
            root = args.keep.resolve()
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="codenv-bench-img-"))
            )
        registry = stack.enter_context(start_registry(root))
        env = make_envs(root / "home", args.index_url, keep_dont_write_bytecode=False).codenv
        bench = Bench(find_codenv(), env, root, registry, args.python or "")
        bench.python = args.python or _newest_pyenv_python(bench)
        run([bench.codenv, "containers", "add", CONFIG, "--base", f"oci:{layout}:base",
             "--registry", f"{registry.host}/codenv", "--insecure"], env)  # fmt: skip
        figures = scenario(bench, args.set, layout)
    figures.update(base_layout=str(layout), load_start=load_start)
    report(figures, args, bench.python)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
