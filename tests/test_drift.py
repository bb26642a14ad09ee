"""Packages installed by hand into an env (pip in the live env) belong to no revision: show
and installed say that the live env has drifted from its record."""

from __future__ import annotations

import json
import subprocess

from uv import find_uv_bin

from conftest import Node


def test_show_and_installed_say_when_the_live_env_drifted(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    assert json.loads(node.run("show", "demo", "--json").stdout)["drift"] is None

    subprocess.run(
        [find_uv_bin(), "pip", "install", "--python", str(node.python("demo")),
         "--index-url", node.index_url, "beta"],
        check=True, capture_output=True, env={"UV_NO_CONFIG": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    drift = json.loads(node.run("show", "demo", "--json").stdout)["drift"]
    assert drift["added"] == [{"name": "beta", "version": "2.0"}]
    installed = json.loads(node.run("installed", "demo", "--json").stdout)
    assert installed["drift"]["added"] == [{"name": "beta", "version": "2.0"}]
    assert "beta" not in {package["name"] for package in installed["packages"]}
    assert "drifted by hand (1 added)" in node.run("show", "demo").stdout
    assert "+ beta 2.0" in node.run("installed", "demo").stdout
