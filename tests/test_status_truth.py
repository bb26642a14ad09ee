"""An env that never built says so everywhere; one whose last update failed still runs."""

from __future__ import annotations

import json

from conftest import Node


def test_an_env_that_never_built_says_so_everywhere(node: Node, newest: str) -> None:
    requirements = node.home.parent / "req.txt"
    requirements.write_text("nothere\n")  # no such project on the index: the build fails
    failed = node.run(
        "create", "demo", "--python", newest, "--no-core-packages", "-r", str(requirements),
        check=False,
    )  # fmt: skip
    assert failed.returncode == 4

    shown = json.loads(node.run("show", "demo", "--json").stdout)
    assert (shown["status"], shown["active_revision"]) == ("failed", None)
    installed = node.run("installed", "demo", check=False)
    assert installed.returncode == 3 and "never built successfully" in installed.stderr
    ran = node.run("run", "demo", "--", "python", "-c", "pass", check=False)
    assert ran.returncode == 3 and "never built successfully" in ran.stderr
    log = node.run("logs", "demo").stdout
    assert "the env has no active revision yet" in log
    assert "active revision and its env vars are unchanged" not in log
    assert "keeping locked versions" not in log and "first resolution of this env" in log
