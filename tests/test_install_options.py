"""Custom package repositories and install options, global and per env; secrets masked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Node
from support import pkgbuild
from support.pkgindex import PackageIndex

SECRET = "s3cret-Pw-42"


@pytest.fixture
def private_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """An index with basic authentication, serving a package that exists nowhere else."""
    directory = tmp_path / "private"
    directory.mkdir()
    with PackageIndex(directory, auth=("team", SECRET)) as index:
        index.add_wheel("private-pkg", "3.1", requires=["alpha"])
        yield index


class Recorder:
    """Every CLI output of a test, to check that no secret was ever printed."""

    def __init__(self, node: Node) -> None:
        self.node, self.outputs = node, []

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self.node.run(*args, check=check)
        self.outputs += [result.stdout, result.stderr]
        return result

    def assert_no_secret_anywhere(self) -> None:
        leaks = [text for text in self.outputs if SECRET in text]
        assert not leaks, f"the secret was printed: {leaks[0]}"
        for path in self.node.home.rglob("*"):
            if (
                path.is_file()
                and path.suffix in (".log", ".json", ".txt")
                and path.name != "server.json"
            ):
                assert SECRET not in path.read_text(errors="replace"), f"secret in {path}"


def _installed(run: Recorder, name: str) -> dict[str, str]:
    packages = json.loads(run("installed", name, "--json").stdout)["packages"]
    return {package["name"]: package["version"] for package in packages}


def test_private_index_with_credentials_and_extra_index(
    node: Node, private_index: PackageIndex, sample_index: PackageIndex, newest: str
) -> None:
    run = Recorder(node)
    private = private_index.url_with_credentials("team", SECRET)
    run(
        "settings",
        "set-install-options",
        "--",
        "--index-url",
        private,
        "--extra-index-url",
        sample_index.url,
    )
    shown = json.loads(run("settings", "show", "--json").stdout)
    assert shown["install_options"][1] == private.replace(SECRET, "***")

    run("create", "demo", "--python", newest, "--no-core-packages")
    run("save", "demo", "--add", "private-pkg", "--update")
    assert _installed(run, "demo") == {"private-pkg": "3.1", "alpha": "1.0"}
    log = run("logs", "demo").stdout
    assert f"team:***@127.0.0.1:{private_index.port}" in log
    spec = json.loads(run("show", "demo", "--json").stdout)["spec"]
    assert spec["install_options"] is None  # inherits the node's options
    run.assert_no_secret_anywhere()


def test_wrong_password_fails_clearly_with_the_secret_masked(
    node: Node, private_index: PackageIndex, newest: str
) -> None:
    run = Recorder(node)
    run("create", "demo", "--python", newest, "--no-core-packages")
    wrong = private_index.url_with_credentials("team", SECRET + "-wrong")
    failed = run(
        "save",
        "demo",
        "--add",
        "private-pkg",
        "--install-options",
        "--update",
        "--",
        "--index-url",
        wrong,
        check=False,
    )

    assert failed.returncode == 4
    assert "refused the credentials (HTTP 401" in failed.stderr
    assert f"team:***@127.0.0.1:{private_index.port}" in failed.stderr
    assert "refused the credentials" in run("logs", "demo").stdout
    assert json.loads(run("show", "demo", "--json").stdout)["active_revision"] == 1
    run.assert_no_secret_anywhere()


def test_override_wins_inherit_restores_and_option_changes_rebuild(
    node: Node, sample_index: PackageIndex, newest: str, tmp_path: Path
) -> None:
    run = Recorder(node)
    wheels = tmp_path / "wheels"
    pkgbuild.build_wheel(wheels, "alpha", "9.0")
    run("create", "demo", "--python", newest, "--no-core-packages")
    run("save", "demo", "--add", "alpha", "--update")
    assert _installed(run, "demo") == {"alpha": "1.0"}

    run(
        "save",
        "demo",
        "--install-options",
        "--update",
        "--",
        "--no-index",
        "--find-links",
        str(wheels),
    )
    assert _installed(run, "demo") == {"alpha": "9.0"}
    assert "--no-index --find-links" in run("logs", "demo").stdout

    run("save", "demo", "--inherit-install-options", "--update", "--upgrade-all")
    assert _installed(run, "demo") == {"alpha": "1.0"}
    assert "already up to date" in run("update", "demo").stdout

    run("settings", "set-install-options", "--", "--timeout", "30")
    assert "revision 5 is active" in run("update", "demo").stdout
    assert "--timeout 30" in run("logs", "demo").stdout


def test_offline_build_with_no_network_at_all(tmp_path: Path, newest: str) -> None:
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("cannot make a network namespace here (unshare -n)")
    wheels = tmp_path / "wheels"
    pkgbuild.build_wheel(wheels, "alpha", "1.0")
    pkgbuild.build_wheel(wheels, "beta", "2.0", requires=["alpha"])
    node = Node(tmp_path / "home", "http://127.0.0.1:9/unreachable/simple/")
    node.run("settings", "set-install-options", "--", "--no-index", "--find-links", str(wheels))
    requirements = tmp_path / "req.txt"
    requirements.write_text("beta\n")

    built = subprocess.run(
        [
            "unshare",
            "-n",
            "--",
            sys.executable,
            "-m",
            "codenv",
            "create",
            "offline",
            "--python",
            newest,
            "-r",
            str(requirements),
        ],
        env=node.environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert built.returncode == 0, built.stderr
    assert node.env_python_run("offline", "import beta, alpha, codenv_runtime; print('ok')") == "ok"


@pytest.mark.parametrize(
    "option",
    ["--target", "--prefix", "--root", "-r", "-c", "--src", "--user", "--editable", "--upgrade"],
)
def test_refused_options_name_the_supported_list(node: Node, newest: str, option: str) -> None:
    refused = node.run("settings", "set-install-options", "--", option, "/tmp/x", check=False)
    assert refused.returncode == 2
    assert "error [install_options]" in refused.stderr
    assert "supported options: --index-url, --extra-index-url, --trusted-host" in refused.stderr
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    per_env = node.run("save", "demo", "--install-options", "--", option, check=False)
    assert per_env.returncode == 2 and "supported options:" in per_env.stderr
    venv = node.run("settings", "set-venv-options", "--", "--clear", check=False)
    assert venv.returncode == 2 and "--system-site-packages" in venv.stderr
