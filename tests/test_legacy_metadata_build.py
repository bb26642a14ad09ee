"""Distributions whose metadata uv refuses but pip installs (`Requires-Dist: dep (>=2011k)`, as
pandas 0.21.1 declares `pytz (>=2011k)`) build: codenv reads the metadata as pip does, gives
uv the repaired metadata, and the build log and the revision's warnings say what changed."""

from __future__ import annotations

import json
from pathlib import Path

from codenv.backends.uv_metadata import unreadable
from conftest import Node
from support.pkgindex import PackageIndex

_WHY = "2011k is not a PEP 440 version; pip's legacy comparison puts it just after 2011"


def _create(node: Node, python: str, lines: str, *, check: bool = True) -> str:
    requirements = node.home.parent / "requirements.txt"
    requirements.write_text(lines)
    args = ("create", "demo", "--python", python, "--no-core-packages", "-r", str(requirements))
    result = node.run(*args, check=check)
    assert check or result.returncode != 0
    return result.stderr


def _repair(name: str, version: str) -> str:
    return f"{name} {version}: `dep (>=2011k)` read as `dep>2011`: {_WHY}"


def test_metadata_only_pip_reads_is_repaired_and_said(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    index.add_wheel("dep", "2010.1")
    index.add_wheel("dep", "2012.1")
    # The only release: uv fails the resolution on it.
    index.add_wheel("old-only", "1.0", requires=["dep (>=2011k)"])
    # A newer release uv would skip for the older one, where pip takes the newer.
    index.add_wheel("old-newest", "0.9")
    index.add_wheel("old-newest", "1.0", requires=["dep (>=2011k)"])
    node = Node(tmp_path / "home", index.url)

    _create(node, newest, "old-only==1.0\nold-newest\n")

    installed = json.loads(node.run("installed", "demo", "--json").stdout)
    versions = {package["name"]: package["version"] for package in installed["packages"]}
    assert versions == {"dep": "2012.1", "old-only": "1.0", "old-newest": "1.0"}
    expected = [_repair(name, "1.0") for name in ("old-newest", "old-only")]
    assert sorted(installed["warnings"]) == expected
    log = node.run("logs", "demo").stdout
    for repair in expected:
        assert f"repaired metadata: {repair}" in log
    assert "uv cannot read the metadata of old-newest 1.0: reading it as pip does" in log


def test_metadata_pip_would_not_satisfy_either_fails_the_build_saying_why(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    index.add_wheel("dep", "2012.1")
    index.add_wheel("pinned", "1.0", requires=["dep (==2011k)"])
    node = Node(tmp_path / "home", index.url)

    error = _create(node, newest, "pinned\n", check=False)

    assert (
        "pinned 1.0: `dep (==2011k)` cannot be repaired: 2011k is not a PEP 440 version, and "
        "no release equals it for pip either"
    ) in error
    assert "Metadata for `pinned` (v1.0) could not be parsed" in error


def test_a_source_distribution_whose_metadata_uv_refuses_fails_the_build_saying_why(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    index.add_wheel("dep", "2012.1")
    index.add_sdist("old-source", "1.0", requires=["dep (>=2011k)"])
    node = Node(tmp_path / "home", index.url)

    error = _create(node, newest, "old-source\n", check=False)

    # A known limit: what uv builds, it reads with its own parser.
    assert (
        "old-source 1.0 has no wheel for this interpreter: uv builds it from source, and "
        "refuses the metadata of what it builds"
    ) in error


def test_uv_reports_are_read_for_the_newest_unreadable_version_of_each_name() -> None:
    refused = [
        "hint: Metadata for `pandas` (v0.21.1) could not be parsed:",
        "  after parsing `2011`, found `k`, which is not part of a valid version",
    ]
    skipped = [
        "WARN `legacy-pin==1.0` has invalid metadata: after parsing `2011`, found `k`",
        "WARN `legacy-pin==0.9` has invalid metadata: after parsing `2011`, found `k`",
        "WARN legacy-pin has invalid metadata: after parsing `2011`, found `k`",
    ]
    assert unreadable([*refused, *skipped]) == [("legacy-pin", "1.0"), ("pandas", "0.21.1")]
