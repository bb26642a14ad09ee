"""Envs built with real uv and the real interpreters of this node, oldest to newest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codenv.interpreters import Discovery
from conftest import Node
from support import pkgbuild
from support.samples import SAMPLE_SET, setup_py_project, write_node_sets


def _versions(pythons: Discovery) -> list[str]:
    minors = pythons.minors()
    return sorted({minors[0], minors[len(minors) // 2], minors[-1]}, key=minors.index)


def _editable_source(tmp_path: Path, python: str) -> Path:
    if python == "3.6":
        # The classic case on 3.6: a setup.py project, which uv cannot install editable there.
        return setup_py_project(tmp_path / "epsilon-src", "epsilon", "0.1")
    return pkgbuild.write_source_tree(tmp_path / "epsilon-src", "epsilon", "0.1")


@pytest.mark.parametrize("position", [0, 1, 2], ids=["oldest", "middle", "newest"])
def test_env_with_set_archive_and_editable_imports(
    node: Node, pythons: Discovery, tmp_path: Path, position: int
) -> None:
    python = _versions(pythons)[position]
    write_node_sets(node.home, [SAMPLE_SET])
    sources = node.allow_local_sources()
    tree = pkgbuild.write_source_tree(sources / "delta-1.0", "delta", "1.0")
    archive = pkgbuild.make_zip_archive(tree, sources / "delta-1.0.zip")
    editable = _editable_source(sources, python)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"beta==2.0\n{archive}\n-e {editable}\n")

    node.run("create", "demo", "--python", python, "--set", "sample", "-r", str(requirements))

    printed = node.env_python_run(
        "demo",
        "import sys, alpha, beta, delta, epsilon, codenv_runtime; "
        "print(sys.version_info[:2], alpha.__version__, beta.__version__, delta.__version__, "
        "epsilon.__file__)",
    )
    major, minor = python.split(".")
    assert printed.startswith(f"({major}, {minor}) 1.0 2.0 1.0")
    assert printed.endswith(str(editable / "epsilon" / "__init__.py"))
    (editable / "epsilon" / "__init__.py").write_text("__version__ = 'live edit'\n")
    assert node.env_python_run("demo", "import epsilon; print(epsilon.__version__)") == "live edit"

    installed = json.loads(node.run("installed", "demo", "--json").stdout)["packages"]
    by_name = {package["name"]: package for package in installed}
    assert by_name["epsilon"]["editable"] == str(editable)
    assert by_name["codenv-runtime"]["version"] == "0.1.0"
    assert {"alpha", "beta", "delta"} <= by_name.keys()
