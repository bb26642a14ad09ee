"""A failed, killed or concurrent build never breaks the env that was working."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from conftest import Node
from support.pkgindex import PackageIndex
from support.samples import slow_archive


def _show(node: Node, name: str) -> dict[str, object]:
    return json.loads(node.run("show", name, "--json").stdout)


def _builds(node: Node, name: str) -> list[dict[str, object]]:
    return json.loads(node.run("builds", name, "--json").stdout)


def _assert_still_on(node: Node, revision: int) -> None:
    shown = _show(node, "demo")
    assert shown["active_revision"] == revision
    assert node.env_python_run("demo", "import alpha; print(alpha.__version__)") == "1.0"
    assert not (node.home / "envs" / "demo" / "revisions" / str(revision + 1)).exists()


def test_unresolvable_requirement_keeps_previous_revision(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha==1.0")
    node.run("update", "demo")
    node.run("save", "demo", "--add", "alpha>=9")

    failed = node.run("update", "demo", check=False)

    assert failed.returncode == 4
    assert "resolving failed" in failed.stderr and "alpha" in failed.stderr
    _assert_still_on(node, 2)
    # The previous revision is active and usable: ready, with the failure said beside it.
    assert _show(node, "demo")["status"] == "ready · last update failed"
    log = node.run("logs", "demo").stdout
    assert "alpha>=9" in log and "the active revision and its env vars are unchanged" in log


def test_package_whose_build_raises_keeps_previous_revision(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    node = Node(tmp_path / "home", index.url)
    index.add_sdist("brokenpkg", "1.0", fail_build="brokenpkg cannot be built here")
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    node.run("rollback", "demo", "1")
    node.run("rollback", "demo", "2")

    failed = node.run("save", "demo", "--add", "brokenpkg", "--update", check=False)

    assert failed.returncode == 4
    assert "brokenpkg cannot be built here" in failed.stderr
    _assert_still_on(node, 2)
    assert "brokenpkg cannot be built here" in node.run("logs", "demo").stdout


def _wait_for_new_log(node: Node, known: set[Path], text: str, timeout: float = 60) -> str:
    """The id of the first build, not among `known` logs, whose log shows `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in set((node.home / "builds").glob("*.log")) - known:
            if text in log.read_text():
                return log.stem
        time.sleep(0.1)
    raise AssertionError(f"no new build log showed {text!r} in {timeout} s")


def test_build_killed_mid_install_leaves_previous_revision(
    node: Node, newest: str, tmp_path: Path
) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    node.run("rollback", "demo", "1")
    node.run("rollback", "demo", "2")
    slow = slow_archive(node.allow_local_sources(), "slowpkg", "1.0", seconds=4)
    node.run("save", "demo", "--add", str(slow))

    known = set((node.home / "builds").glob("*.log"))
    process = node.popen("update", "demo")
    build_id = _wait_for_new_log(node, known, "installing:")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    shown = _show(node, "demo")  # any command recovers the dead build first
    assert shown["last_build"]["id"] == build_id
    assert shown["last_build"]["status"] == "failed"
    assert "stopped before it finished" in shown["last_build"]["error"]
    _assert_still_on(node, 2)

    node.run("update", "demo")
    assert _show(node, "demo")["active_revision"] == 3
    assert node.env_python_run("demo", "import slowpkg; print(slowpkg.__version__)") == "1.0"


def _interval(build: dict[str, object]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(str(build["started_at"])),
        datetime.fromisoformat(str(build["finished_at"])),
    )


def test_concurrent_updates_of_one_env_are_serialized(
    node: Node, newest: str, tmp_path: Path
) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run(
        "save", "demo", "--add", str(slow_archive(node.allow_local_sources(), "slowpkg", "1.0", 2))
    )
    first = node.popen("update", "demo", "--rebuild")
    second = node.popen("update", "demo", "--rebuild")
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    assert second.wait(timeout=120) == 0, second.stderr.read() if second.stderr else ""

    builds = [b for b in _builds(node, "demo") if b["status"] == "succeeded"]
    assert len(builds) == 3
    newer, older = sorted((_interval(b) for b in builds[:2]), reverse=True)
    assert newer[0] >= older[1], "the two updates overlapped"
    assert sorted(
        r["number"] for r in json.loads(node.run("revisions", "demo", "--json").stdout)
    ) == [1, 2, 3]


def test_updates_of_two_envs_run_in_parallel(node: Node, newest: str, tmp_path: Path) -> None:
    for name in ("one", "two"):
        node.run("create", name, "--python", newest, "--no-core-packages")
        node.run(
            "save",
            name,
            "--add",
            str(slow_archive(node.allow_local_sources(), f"slow{name}", "1.0", 3)),
        )
    processes = [node.popen("update", name) for name in ("one", "two")]
    for process in processes:
        assert process.wait(timeout=120) == 0

    one, two = (_interval(_builds(node, name)[0]) for name in ("one", "two"))
    assert one[0] < two[1] and two[0] < one[1], "the two builds did not overlap"


def test_installer_step_past_the_time_limit_fails_the_build(
    node: Node, newest: str, tmp_path: Path
) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run(
        "save", "demo", "--add", str(slow_archive(node.allow_local_sources(), "slowpkg", "1.0", 30))
    )
    node.environ_extra["CODENV_BUILD_TIMEOUT"] = "2"

    started = time.monotonic()
    failed = node.run("update", "demo", check=False)

    assert failed.returncode == 4 and "timed out after 2 s" in failed.stderr
    assert time.monotonic() - started < 20
    assert json.loads(node.run("show", "demo", "--json").stdout)["active_revision"] == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB filesystem (tmpfs) to fill up; needs the right to mount, as root here."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_fails_the_build_and_keeps_previous_revision(
    small_disk: Path, index: PackageIndex, newest: str
) -> None:
    node = Node(small_disk / "home", index.url)
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    big = os.urandom(24 * 1024 * 1024).hex()[: 24 * 1024 * 1024]
    index.add_wheel("bigpkg", "1.0", modules={"bigpkg/__init__.py": f"DATA = '{big}'\n"})

    failed = node.run("save", "demo", "--add", "bigpkg", "--update", check=False)

    assert failed.returncode == 4
    assert "No space left on device" in failed.stderr or "os error 28" in failed.stderr
    _assert_still_on(node, 2)
    shown = json.loads(node.run("show", "demo", "--json").stdout)
    assert shown["status"] == "ready · last update failed"
