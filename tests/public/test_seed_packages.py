"""Envs have pip, setuptools and wheel in versions that suit their Python, as a venv has:
`python -m pip` works and `pkg_resources` imports, on the oldest and the newest Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Node

pytestmark = pytest.mark.public_index


@pytest.mark.parametrize("which", ["oldest", "newest"])
def test_envs_are_seeded_like_a_venv(
    tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    python = request.getfixturevalue(which)
    node = Node(tmp_path / "home", "https://pypi.org/simple", {"CODENV_SEED_PACKAGES": "1"})
    node.run("create", "seeded", "--python", python, "--no-core-packages")

    assert node.env_python_run("seeded", "import pkg_resources, setuptools, wheel; print('ok')")
    version = node.env_python_run("seeded", "import subprocess, sys; print(sys.version[:4])")
    assert version.startswith(python)
    pip = node.run("run", "seeded", "--", "python", "-m", "pip", "--version").stdout
    assert pip.startswith("pip ") and f"python {python}" in pip
