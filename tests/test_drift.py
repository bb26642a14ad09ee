"""Packages installed by hand into an env (pip in the live env) belong to no revision: show
and installed say that the live env has drifted from its record."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from codenv.domain.spec import EnvSpec
from codenv.services import envs
from codenv.services.actor import Actor
from codenv.services.installed import show_installed
from conftest import Node
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, console_login, running_server


def _install_by_hand(python: Path, index_url: str, package: str) -> None:
    """What a user's `pip install` in the live env does (uv here: the env has no pip)."""
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--python", str(python), "--index-url", index_url,
         package],
        check=True, capture_output=True, env={"UV_NO_CONFIG": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_show_and_installed_say_when_the_live_env_drifted(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    assert json.loads(node.run("show", "demo", "--json").stdout)["drift"] is None

    _install_by_hand(node.python("demo"), node.index_url, "beta")

    drift = json.loads(node.run("show", "demo", "--json").stdout)["drift"]
    assert drift["added"] == [{"name": "beta", "version": "2.0"}]
    installed = json.loads(node.run("installed", "demo", "--json").stdout)
    assert installed["drift"]["added"] == [{"name": "beta", "version": "2.0"}]
    assert "beta" not in {package["name"] for package in installed["packages"]}
    assert "drifted by hand (1 added)" in node.run("show", "demo").stdout
    assert "+ beta 2.0" in node.run("installed", "demo").stdout


def test_the_console_shows_the_drift(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    with running_server(tmp_path / "home", sample_index.url) as server:
        created = envs.create_env(
            server.app,
            Actor.local_admin(),
            "demo",
            EnvSpec(python=newest, install_core_packages=False, requested="alpha\n"),
        )
        server.app.queue.wait(created.build_id)
        python = tmp_path / "home" / "envs" / "demo" / "current" / "bin" / "python"
        _install_by_hand(python, sample_index.url, "beta")
        page = console_login(server, "admin", ADMIN_PASSWORD).get("/envs/demo/installed")
        assert page.status_code == 200
        assert "The live env has drifted" in page.text and "added beta 2.0" in page.text


def test_a_server_sees_drift_after_it_read_the_env_once(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    """The live listing is kept while the env's site-packages is unchanged, and what show and
    installed read of the database while the data is unchanged; a package installed by hand
    changes the first and not the data, so a running server sees the drift at once."""
    with running_server(tmp_path / "home", sample_index.url) as server:
        admin = Actor.local_admin()
        spec = EnvSpec(python=newest, install_core_packages=False, requested="alpha\n")
        created = envs.create_env(server.app, admin, "demo", spec)
        server.app.queue.wait(created.build_id)
        assert envs.show_env(server.app, admin, "demo").drift is None
        assert envs.show_env(server.app, admin, "demo").drift is None  # from the kept listing
        kept = show_installed(server.app, admin, "demo").drift
        assert kept is not None and not kept.drifted
        python = tmp_path / "home" / "envs" / "demo" / "current" / "bin" / "python"
        _install_by_hand(python, sample_index.url, "beta")
        drift = envs.show_env(server.app, admin, "demo").drift
        assert drift is not None and drift["added"] == [{"name": "beta", "version": "2.0"}]
        live = show_installed(server.app, admin, "demo").drift
        assert live is not None and live.added == [{"name": "beta", "version": "2.0"}]


def test_readers_of_an_env_not_listed_yet_wait_for_one_listing(
    tmp_path: Path, sample_index: PackageIndex, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many console tabs opening an env at once start one listing of the live env, not one
    each (20 at once took 0.7 s of both cores)."""
    with running_server(tmp_path / "home", sample_index.url) as server:
        admin = Actor.local_admin()
        spec = EnvSpec(python=newest, install_core_packages=False, requested="alpha\n")
        server.app.queue.wait(envs.create_env(server.app, admin, "demo", spec).build_id)
        installer = server.app.tools.installer
        listed, list_live = [], installer.installed

        def slow_listing(run: Any, python: Path) -> Any:
            listed.append(python)
            time.sleep(0.3)  # long enough for every reader to arrive while it runs
            return list_live(run, python)

        monkeypatch.setattr(installer, "installed", slow_listing)
        with ThreadPoolExecutor(8) as readers:
            shown = list(readers.map(lambda _: envs.show_env(server.app, admin, "demo"), range(8)))
        assert len(listed) == 1
        assert [info.drift for info in shown] == [None] * 8
