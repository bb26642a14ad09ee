"""The test base image, made with mmdebstrap, and a venv image written by codenv run in podman.

A real venv of the machine's Python 3.11 with a package installed by uv, laid out as codenv
lays out an env's image (interpreter layer, package layers, head layer) on the Debian base,
written as an OCI layout and run with podman (runc, no network): the interpreter starts from
its own path, the venv is its prefix, the package imports, and the base's shared libraries are
enough for ssl, sqlite3 and ctypes. No registry is involved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from uv import find_uv_bin

from codenv.images.layers import write_blob, write_layer
from codenv.images.oci import (
    OCI_CONFIG,
    image_config,
    image_manifest,
    read_oci_layout,
    write_oci_layout,
)
from codenv.images.venv_layers import interpreter_layer, venv_layers
from codenv.interpreters import Discovery
from support.base_image import PATH, TAG, require_base_image
from support.pkgbuild import build_wheel
from support.podman import Podman, require_podman


def test_the_base_layout_is_a_linux_amd64_image() -> None:
    base = read_oci_layout(require_base_image(), TAG)
    assert (base.config["os"], base.config["architecture"]) == ("linux", "amd64")
    assert base.config["config"]["Env"] == [f"PATH={PATH}"]
    (layer,) = base.layers
    assert 20_000_000 < layer.size < 80_000_000


def test_a_venv_image_written_by_codenv_runs_in_podman(tmp_path: Path, pythons: Discovery) -> None:
    require_podman()
    base = read_oci_layout(require_base_image(), TAG)
    interpreter = pythons.for_minor("3.11")
    if interpreter is None:
        pytest.skip("no Python 3.11 on this machine")
    # The venv is made where it will be in the image (image path == host path): a venv
    # carries absolute paths (pyvenv.cfg, scripts), so it is never moved.
    venv = tmp_path / "env"
    subprocess.run([interpreter.path, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel = build_wheel(tmp_path / "wheels", "img-demo", "1.0")
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--quiet", "--offline", "--no-index",
         "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
    )  # fmt: skip
    prefix = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    specs = [interpreter_layer(Path(prefix)), *venv_layers(venv, PurePosixPath(venv))]
    layers = [write_layer(spec.entries, tmp_path / "blobs", spec.created_by) for spec in specs]
    config = image_config(
        base.config,
        diff_ids=[layer.diff_id for layer in layers],
        env={"PATH": f"{venv}/bin:{PATH}"},
        labels={"org.opencontainers.image.title": "img-demo"},
        history=[layer.created_by for layer in layers],
    )
    manifest = image_manifest(
        write_blob(config, tmp_path / "blobs", OCI_CONFIG),
        [*base.layers, *(layer.descriptor for layer in layers)],
    )
    layout = tmp_path / "layout"
    blobs = [*base.layer_paths.values(), *(layer.path for layer in layers)]
    write_oci_layout(layout, manifest, config, blobs, "env")

    script = "import sys, ssl, sqlite3, ctypes, img_demo; print(sys.prefix, img_demo.__version__)"
    with Podman(tmp_path / "podman") as podman:
        result = podman.run_layout(layout, "env", ["python", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(venv), "1.0"]
    assert json.loads(config)["config"]["Env"][0] == f"PATH={venv}/bin:{PATH}"
