"""Save vs Save and update, the unchanged-plan fast path, locked versions, rollback, retention."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Node
from support.pkgindex import PackageIndex


def _show(node: Node, name: str) -> dict[str, object]:
    return json.loads(node.run("show", name, "--json").stdout)


def _installed(node: Node, name: str, *extra: str) -> dict[str, str]:
    packages = json.loads(node.run("installed", name, "--json", *extra).stdout)["packages"]
    return {package["name"]: package["version"] for package in packages}


def test_save_does_not_build_and_save_and_update_does(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest)
    node.run("save", "demo", "--add", "beta")

    shown = _show(node, "demo")
    assert shown["status"] == "out of date"
    assert shown["spec_differs"] is True
    assert shown["active_revision"] == 1
    assert "beta" not in _installed(node, "demo")

    node.run("save", "demo", "--add", "gamma", "--update")
    shown = _show(node, "demo")
    assert (shown["status"], shown["active_revision"], shown["spec_differs"]) == ("ready", 2, False)
    assert {"alpha", "beta", "gamma"} <= _installed(node, "demo").keys()


def test_unchanged_plan_returns_at_once_without_a_build(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    result = node.run("update", "demo")
    assert "already up to date (revision 1)" in result.stdout
    builds = json.loads(node.run("builds", "demo", "--json").stdout)
    assert len(builds) == 1
    assert json.loads(node.run("update", "demo", "--json").stdout)["up_to_date"] is True


def test_update_keeps_locked_versions_unless_upgrade_all(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    node = Node(tmp_path / "home", index.url)
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    requirements = tmp_path / "req.txt"
    requirements.write_text("alpha\n")
    node.run("save", "demo", "-r", str(requirements), "--update")
    assert _installed(node, "demo")["alpha"] == "1.0"

    index.add_wheel("alpha", "1.1")
    index.add_wheel("zeta", "1.0")
    node.run("save", "demo", "--add", "zeta", "--update")
    assert _installed(node, "demo") == {"alpha": "1.0", "zeta": "1.0"}

    node.run("update", "demo", "--upgrade-all")
    assert _installed(node, "demo") == {"alpha": "1.1", "zeta": "1.0"}


def test_rollback_switches_back_without_resolving(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "beta", "--update")
    assert "beta" in _installed(node, "demo")
    node.run("save", "demo", "--add", "gamma")  # saved, not built

    result = node.run("rollback", "demo", "1")
    assert "revision 1 is active" in result.stdout
    assert "the saved spec differs from it" in result.stdout
    shown = _show(node, "demo")
    assert shown["active_revision"] == 1
    # Rollback changes only the active revision: the saved spec, unbuilt changes included,
    # stays, and show says it differs from what runs.
    assert shown["spec"]["requested"] == "beta\ngamma\n"
    assert (shown["spec_differs"], shown["status"]) == (True, "out of date")
    assert (
        node.env_python_run("demo", "import importlib.util as u; print(u.find_spec('beta'))")
        == "None"
    )
    node.run("rollback", "demo", "2")
    assert node.env_python_run("demo", "import beta; print(beta.__version__)") == "2.0"


def test_retention_prunes_old_revisions(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    node = Node(tmp_path / "home", sample_index.url)
    config = node.home / "config"
    config.mkdir(parents=True)
    (config / "server.json").write_text(json.dumps({"codeEnvsSettings": {"revisionRetention": 1}}))
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    for package in ("alpha", "beta", "gamma"):
        node.run("save", "demo", "--add", package, "--update")

    revisions = {r["number"]: r for r in json.loads(node.run("revisions", "demo", "--json").stdout)}
    assert [n for n, r in sorted(revisions.items()) if r["pruned"]] == [1, 2]
    assert revisions[4]["active"] and not revisions[3]["pruned"]
    existing = sorted(p.name for p in (node.home / "envs" / "demo" / "revisions").iterdir())
    assert existing == ["3", "4"]

    refused = node.run("rollback", "demo", "1", check=False)
    assert refused.returncode == 5
    assert "pruned" in refused.stderr
    node.run("rollback", "demo", "3")
    assert _show(node, "demo")["active_revision"] == 3


def test_same_input_within_the_freshness_window_reuses_the_lock(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    node = Node(tmp_path / "home", index.url)
    requirements = tmp_path / "req.txt"
    requirements.write_text("alpha\n")
    node.run("create", "one", "--python", newest, "--no-core-packages", "-r", str(requirements))
    index.add_wheel("alpha", "1.1")
    index.clear_requests()

    node.run("create", "two", "--python", newest, "--no-core-packages", "-r", str(requirements))
    assert _installed(node, "two") == {"alpha": "1.0"}
    assert index.requests == [], "a fresh resolution of the same input asks the index nothing"
    assert "reusing that lock" in node.run("logs", "two").stdout

    node.run("update", "two", "--upgrade-all")
    assert _installed(node, "two") == {"alpha": "1.1"}
    node.environ_extra["CODENV_RESOLUTION_TTL"] = "0"
    node.run("create", "three", "--python", newest, "--no-core-packages", "-r", str(requirements))
    assert _installed(node, "three") == {"alpha": "1.1"}
