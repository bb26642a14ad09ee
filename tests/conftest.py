"""Shared fixtures: a real package index on loopback, real interpreters, a fresh codenv home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codenv.interpreters import Discovery, discover
from codenv.services.actor import Actor
from codenv.services.app import Codenv, open_codenv
from codenv.services.node_settings_store import SHARED_CODE_ENVS, store_settings
from codenv.settings import load_settings
from support.pkgindex import PackageIndex

IN_CI = os.environ.get("CI") == "true"
# Envs get pip, setuptools and wheel by default, from the index. The sample indexes the tests
# serve on loopback hold only the packages the tests build, so tests build envs without them
# unless they say otherwise (the seeded envs are tested against the public index).
os.environ.setdefault("CODENV_SEED_PACKAGES", "0")


@pytest.fixture(scope="session")
def pythons() -> Discovery:
    return discover()


@pytest.fixture(scope="session")
def oldest(pythons: Discovery) -> str:
    return pythons.minors()[0]


@pytest.fixture(scope="session")
def newest(pythons: Discovery) -> str:
    return pythons.minors()[-1]


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """Sample packages that exist nowhere else, served from loopback for the whole session."""
    directory = tmp_path_factory.mktemp("index")
    with PackageIndex(directory) as index:
        index.add_wheel("alpha", "1.0")
        index.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
        index.add_sdist("gamma", "0.5")
        yield index


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    """An index of this test's own, for tests that add versions while they run."""
    directory = tmp_path / "index"
    directory.mkdir()
    with PackageIndex(directory) as served:
        served.add_wheel("alpha", "1.0")
        yield served


@dataclass
class Node:
    """One codenv home, driven through the real CLI and, where handier, the services."""

    home: Path
    index_url: str
    environ_extra: dict[str, str] = field(default_factory=dict)

    @property
    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CODENV_HOME=str(self.home), CODENV_INDEX_URL=self.index_url)
        env.update(self.environ_extra)
        return env

    def run(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "codenv", *args],
            env=self.environ,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"codenv {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "codenv", *args],
            env=self.environ,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def code_envs_setting(self, key: str, value: object) -> None:
        """Set one of the node's `codeEnvsSettings` in config/server.json, and in the database
        for those kept there (the file's are imported once only)."""
        config = self.home / "config" / "server.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(config.read_text()) if config.exists() else {}
        current.setdefault("codeEnvsSettings", {})[key] = value
        config.write_text(json.dumps(current))
        if key in SHARED_CODE_ENVS:
            app = self.app()
            try:
                store_settings(app, {f"codeEnvsSettings.{key}": value})
            finally:
                app.close()

    def allow_local_sources(self) -> Path:
        """A directory beside the home that local archives and `-e` sources may come from."""
        sources = self.home.parent / "sources"
        sources.mkdir(parents=True, exist_ok=True)
        self.code_envs_setting("allowedLocalSourceRoots", [str(sources)])
        return sources

    def app(self) -> Codenv:
        environ = {"CODENV_INDEX_URL": self.index_url, **self.environ_extra}
        environ.setdefault("CODENV_SEED_PACKAGES", os.environ["CODENV_SEED_PACKAGES"])
        settings = load_settings(self.home, environ)
        return open_codenv(settings)

    def python(self, env: str) -> Path:
        return self.home / "envs" / env / "current" / "bin" / "python"

    def env_python_run(self, env: str, code: str) -> str:
        result = subprocess.run(
            [str(self.python(env)), "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ["PATH"]},
        )
        return result.stdout.strip()


@pytest.fixture
def node(tmp_path: Path, sample_index: PackageIndex) -> Node:
    return Node(tmp_path / "home", sample_index.url)


@pytest.fixture
def admin() -> Actor:
    return Actor.local_admin()
