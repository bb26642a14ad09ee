"""The install check fails only what is broken: a wheel whose WHEEL file names other tags
than its file name (as xgboost 1.4.2's does) is installed with a warning, as pip would."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Node
from support import pkgbuild
from support.pkgindex import PackageIndex


def test_a_wheel_tagged_for_another_platform_builds_with_a_warning(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    wheel = index.add_wheel("tagged", "1.0")
    pkgbuild.retag_wheel(wheel, "cp38-cp38-manylinux2010_x86_64")
    node = Node(tmp_path / "home", index.url)
    node.run("create", "demo", "--python", newest, "--no-core-packages")

    node.run("save", "demo", "--add", "tagged", "--update")

    assert node.env_python_run("demo", "import tagged; print(tagged.__version__)") == "1.0"
    warning = "The package `tagged` was built for a different platform"
    assert warning in node.run("logs", "demo").stdout
    installed = json.loads(node.run("installed", "demo", "--json").stdout)
    assert installed["warnings"] == [warning]
