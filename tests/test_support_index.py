"""The hermetic index and sample packages work with the real installers (uv, pip).

Interpreters are found by globbing pyenv here on purpose: this file tests the test
infrastructure, not codenv's interpreter discovery.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import re
import subprocess
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uv

from support import inline_backend, pkgbuild
from support.pkgindex import PackageIndex

UV = Path(uv.find_uv_bin())
# Variables that would make the installers read this machine's configuration.
_LEAKY_ENV = ("UV_", "PIP_", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")


def _pyenv_interpreters() -> list[Path]:
    """``python3.N`` executables under ~/.pyenv, oldest first."""
    found: dict[int, Path] = {}
    for path in Path.home().glob(".pyenv/versions/3.*/bin/python3.*"):
        match = re.fullmatch(r"python3\.(\d+)", path.name)
        if match and os.access(path, os.X_OK):
            found[int(match.group(1))] = path
    return [found[minor] for minor in sorted(found)]


INTERPRETERS = _pyenv_interpreters()
needs_python = pytest.mark.skipif(not INTERPRETERS, reason="no ~/.pyenv interpreters")
OLDEST_AND_NEWEST = [
    pytest.param(path, id=path.name) for path in dict.fromkeys(INTERPRETERS[:1] + INTERPRETERS[-1:])
]


@dataclass
class Tools:
    """Runs uv / pip / venv pythons hermetically: isolated cache, no config, no downloads."""

    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_ENV)}
        env.update(
            UV_CACHE_DIR=str(self.tmp / "uv-cache"),
            UV_PYTHON_DOWNLOADS="never",
            UV_NO_CONFIG="1",
        )
        env.update(extra)
        return env

    def run(
        self, *args: object, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        # cwd=tmp keeps uv from reading this repository's pyproject / .python-version.
        proc = subprocess.run(
            [str(a) for a in args],
            check=False,
            cwd=self.tmp,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def venv(self, python: Path, name: str = "venv") -> Path:
        """Create a venv with uv; return its python."""
        self.run(UV, "venv", "--python", python, self.tmp / name)
        return self.tmp / name / "bin" / "python"

    def install(
        self, venv_python: Path, *args: object, index_url: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            UV, "pip", "install", "--index-url", index_url, "--python", venv_python, *args,
            check=check,
        )  # fmt: skip

    def version_of(self, venv_python: Path, module: str) -> str:
        code = f"import {module}; print({module}.__version__)"
        return self.run(venv_python, "-c", code).stdout.strip()


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    return Tools(tmp_path)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    with PackageIndex(tmp_path / "dist") as served:
        yield served


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), dict(error.headers)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the index and the builders on their own ---


def test_simple_pages_list_projects_files_hashes_and_requires_python(index: PackageIndex) -> None:
    wheel = index.add_wheel("Alpha.Pkg", "1.0", requires_python=">=3.6, <4")
    sdist = index.add_sdist("alpha-pkg", "1.1")
    assert wheel.name == "alpha_pkg-1.0-py3-none-any.whl"
    assert sdist.name == "alpha_pkg-1.1.tar.gz"

    status, root, _ = _get(index.url)
    assert status == 200 and 'href="/simple/alpha-pkg/"' in root
    status, page, _ = _get(index.url + "Alpha_Pkg/")  # any spelling reaches the project
    assert status == 200
    assert f'href="/files/{wheel.name}#sha256={_sha256(wheel)}"' in page
    assert f'href="/files/{sdist.name}#sha256={_sha256(sdist)}"' in page
    assert 'data-requires-python="&gt;=3.6, &lt;4"' in page
    assert _get(index.file_url(wheel.name))[0] == 200
    assert _get(index.url + "nothing-here/")[0] == 404
    assert _get(index.root_url + "/files/..%2Fsecret")[0] == 404
    assert index.requests[:2] == ["/simple/", "/simple/Alpha_Pkg/"]


def test_wheel_is_spec_conformant(tmp_path: Path) -> None:
    wheel = pkgbuild.build_wheel(tmp_path, "My-Pkg", "2.0", requires=["dep>=1; python_version>'3'"])
    assert wheel.name == "my_pkg-2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "My_Pkg/__init__.py" in names  # import name keeps case; file names do not
        metadata = archive.read("my_pkg-2.0.dist-info/METADATA").decode()
        record = archive.read("my_pkg-2.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.split(",")
            if path.endswith("RECORD"):
                continue
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert (digest, size) == (f"sha256={expected.decode()}", str(len(data)))
    assert "Name: My-Pkg\nVersion: 2.0\n" in metadata
    assert "Requires-Dist: dep>=1; python_version>'3'" in metadata
    assert len(record) == len(names)


@needs_python
def test_shipped_backend_is_valid_on_the_oldest_python() -> None:
    # Syntax-only check (compile, no import): catches 3.7+ syntax creeping into backend.py.
    source = Path(inline_backend.__file__)
    code = "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')"
    subprocess.run([INTERPRETERS[0], "-c", code, source], check=True)
    assert ast.parse(source.read_text())  # and on this one


# --- real installers against the index ---


@needs_python
def test_wheel_with_dependency_installs_both(tools: Tools, index: PackageIndex) -> None:
    index.add_wheel("alpha-pkg", "1.0", requires=["beta>=1"])
    index.add_wheel("beta", "1.5")
    python = tools.venv(INTERPRETERS[-1])
    tools.install(python, "alpha-pkg", index_url=index.url)
    assert tools.version_of(python, "alpha_pkg") == "1.0"
    assert tools.version_of(python, "beta") == "1.5"
    assert {"/simple/alpha-pkg/", "/simple/beta/"} <= set(index.requests)


@needs_python
@pytest.mark.parametrize("interpreter", OLDEST_AND_NEWEST)
def test_sdist_builds_with_in_tree_backend(
    tools: Tools, index: PackageIndex, interpreter: Path
) -> None:
    index.add_sdist("gamma", "3.1", modules={"gamma.py": '__version__ = "3.1-from-sdist"\n'})
    python = tools.venv(interpreter)
    tools.install(python, "gamma", index_url=index.url)
    assert tools.version_of(python, "gamma") == "3.1-from-sdist"


@needs_python
@pytest.mark.parametrize("interpreter", OLDEST_AND_NEWEST)
def test_editable_install_reflects_live_edit(
    tools: Tools, index: PackageIndex, interpreter: Path
) -> None:
    source = pkgbuild.write_source_tree(tools.tmp / "src" / "delta", "delta", "0.1")
    python = tools.venv(interpreter)
    tools.install(python, "-e", source, index_url=index.url)
    assert tools.version_of(python, "delta") == "0.1"
    (source / "delta" / "__init__.py").write_text('__version__ = "live-edit"\n')
    assert tools.version_of(python, "delta") == "live-edit"


@needs_python
@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_local_archive_installs_with_index_dependency(
    tools: Tools, index: PackageIndex, suffix: str
) -> None:
    index.add_wheel("beta", "1.0")
    source = pkgbuild.write_source_tree(tools.tmp / "src", "epsilon", "1.0", requires=["beta"])
    make = pkgbuild.make_zip_archive if suffix == ".zip" else pkgbuild.make_tar_archive
    archive = make(source, tools.tmp / "archives" / f"epsilon-1.0{suffix}")
    python = tools.venv(INTERPRETERS[-1])
    tools.install(python, archive, index_url=index.url)
    assert tools.version_of(python, "epsilon") == "1.0"
    assert tools.version_of(python, "beta") == "1.0"


@needs_python
def test_failing_build_message_reaches_uv_stderr(tools: Tools, index: PackageIndex) -> None:
    index.add_sdist("broken", "1.0", fail_build="codenv-test: compiler exploded")
    python = tools.venv(INTERPRETERS[-1])
    proc = tools.install(python, "broken", index_url=index.url, check=False)
    assert proc.returncode != 0
    assert "RuntimeError: codenv-test: compiler exploded" in proc.stderr


@needs_python
def test_compile_generates_hashes_from_index(tools: Tools, index: PackageIndex) -> None:
    wheel = index.add_wheel("alpha", "1.0", requires=["beta"])
    sdist = index.add_sdist("beta", "2.0")
    (tools.tmp / "requirements.in").write_text("alpha\n")
    proc = tools.run(
        UV, "pip", "compile", "requirements.in", "--generate-hashes", "--no-header",
        "--index-url", index.url, "--python", INTERPRETERS[-1],
    )  # fmt: skip
    assert "alpha==1.0" in proc.stdout and "beta==2.0" in proc.stdout
    assert f"--hash=sha256:{_sha256(wheel)}" in proc.stdout
    assert f"--hash=sha256:{_sha256(sdist)}" in proc.stdout


@needs_python
def test_file_added_after_start_is_visible(tools: Tools, index: PackageIndex) -> None:
    index.add_wheel("zeta", "1.0")
    python = tools.venv(INTERPRETERS[-1])
    tools.install(python, "zeta", index_url=index.url)
    index.add_wheel("zeta", "2.0")
    assert "zeta-2.0-py3-none-any.whl" in _get(index.url + "zeta/")[1]
    tools.install(python, "--upgrade", "zeta", index_url=index.url)
    assert tools.version_of(python, "zeta") == "2.0"


def test_basic_auth_challenges_missing_or_wrong_credentials(tmp_path: Path) -> None:
    with PackageIndex(tmp_path / "dist", auth=("user", "secret")) as index:
        status, _, headers = _get(index.url)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
        wrong = base64.b64encode(b"user:nope").decode()
        assert _get(index.url, {"Authorization": f"Basic {wrong}"})[0] == 401
        right = base64.b64encode(b"user:secret").decode()
        assert _get(index.url, {"Authorization": f"Basic {right}"})[0] == 200


@needs_python
def test_uv_with_basic_auth(tools: Tools, tmp_path: Path) -> None:
    with PackageIndex(tmp_path / "dist", auth=("user", "secret")) as index:
        index.add_wheel("eta", "1.0")
        python = tools.venv(INTERPRETERS[-1])
        bad = tools.install(
            python, "eta", index_url=index.url_with_credentials("user", "wrong"), check=False
        )
        assert bad.returncode != 0 and "401" in bad.stderr
        tools.install(python, "eta", index_url=index.url_with_credentials("user", "secret"))
        assert tools.version_of(python, "eta") == "1.0"


@needs_python
def test_pip_installs_wheel_and_sdist_from_index(tools: Tools, index: PackageIndex) -> None:
    index.add_wheel("theta", "1.0", requires=["iota"])
    index.add_sdist("iota", "0.5")
    target = tools.tmp / "target"
    # pip reads /etc/pip.conf and PIP_* (e.g. PIP_FIND_LINKS) on this machine: shut them out.
    pip_env = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    tools.run(
        INTERPRETERS[-1], "-m", "pip", "install", "--no-input", "--index-url", index.url,
        "--target", target, "theta", **pip_env,
    )  # fmt: skip
    code = "import theta, iota; print(theta.__version__, iota.__version__)"
    out = tools.run(INTERPRETERS[-1], "-c", code, PYTHONPATH=str(target)).stdout
    assert out.split() == ["1.0", "0.5"]
    assert (target / "iota").is_dir() and not (target / inline_backend.BACKEND_NAME).exists()
