"""Bundles between two homes on one machine: a design node exports, another node imports.

Real uv, real pip (downloading the wheels), the sample index on loopback; the offline import
runs in a network namespace with no network at all.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Node
from support.bundles import members, rewritten
from support.pkgindex import PackageIndex

CI = os.environ.get("CI") == "true"


@dataclass(frozen=True)
class Design:
    node: Node
    python: str
    with_wheels: Path  # a bundle of env "ml" (beta, alpha) with its wheels
    lock_only: Path  # the same env, lock only


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex) -> Design:
    root = tmp_path_factory.mktemp("design")
    node = Node(root / "home", sample_index.url)
    python = _newest(node)
    requirements = root / "requirements.txt"
    requirements.write_text("beta\n")
    node.run("create", "ml", "--python", python, "-r", str(requirements))
    node.run("export", "ml", "--with-wheels", "-o", str(root / "ml-wheels.codenv.tar"))
    node.run("export", "ml", "-o", str(root / "ml.codenv.tar"))
    return Design(node, python, root / "ml-wheels.codenv.tar", root / "ml.codenv.tar")


def _newest(node: Node) -> str:
    found = json.loads(node.run("pythons", "--json").stdout)["interpreters"]
    return sorted({item["version"].rsplit(".", 1)[0] for item in found}, key=_minor)[-1]


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _node(tmp_path: Path, index_url: str, kind: str) -> Node:
    node = Node(tmp_path / f"{kind}-home", index_url)
    config = node.home / "config" / "server.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"nodeType": kind}))
    return node


@pytest.fixture
def automation(tmp_path: Path, sample_index: PackageIndex) -> Node:
    return _node(tmp_path, sample_index.url, "automation")


def _installed(node: Node, env: str, revision: int | None = None) -> list[tuple[str, str]]:
    args = ["installed", env, "--json"] + (["--revision", str(revision)] if revision else [])
    found = json.loads(node.run(*args).stdout)
    return sorted((p["name"], p["version"]) for p in found["packages"])


def _envs(node: Node) -> list[str]:
    return [env["name"] for env in json.loads(node.run("list", "--json").stdout)]


def _offline(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    probe = ["unshare", "-n", "true"]
    if shutil.which("unshare") is None or subprocess.run(probe, check=False).returncode:
        if CI:
            pytest.fail("no network namespace on this CI machine (unshare -n)")
        pytest.skip("no network namespace here (unshare -n needs root or user namespaces)")
    command = ["unshare", "-n", sys.executable, "-m", "codenv", *args]
    return subprocess.run(
        command, env=node.environ, capture_output=True, text=True, timeout=300, check=False
    )


def test_bundle_holds_exact_lock_hashes_and_no_local_path(design: Design) -> None:
    found = members(design.with_wheels)
    manifest = json.loads(found.pop("manifest.json"))
    assert manifest["format"] == 1
    assert set(manifest["files"]) == set(found)
    wheels = sorted(name.rsplit("/", 1)[-1] for name in found if "/wheels/" in name)
    assert [w.split("-")[0] for w in wheels] == ["alpha", "beta"]
    lock = found["envs/ml/requirements.lock"].decode()
    assert "alpha==1.0" in lock and "beta==2.0" in lock and "--hash=sha256:" in lock
    assert "codenv-runtime==" in lock  # by name and version: each node has its own wheel
    pylock = found["envs/ml/pylock.toml"].decode()
    assert f'requires-python = ">={design.python}"' in pylock
    assert 'path = "wheels/alpha-1.0-py3-none-any.whl"' in pylock
    home = str(design.node.home)
    for name, data in found.items():
        if not name.endswith(".whl"):
            assert home not in data.decode(), f"{name} names a path of the exporting node"


def test_import_with_wheels_needs_no_network(design: Design, automation: Node) -> None:
    result = _offline(automation, "import", str(design.with_wheels), "--offline")
    assert result.returncode == 0, result.stderr
    assert "ml: version 1 is active" in result.stdout
    assert _installed(automation, "ml") == _installed(design.node, "ml")
    assert automation.env_python_run("ml", "import beta, alpha; print('ok')") == "ok"
    log = automation.run("logs", "ml").stdout
    assert "installing the bundle's exact lock" in log and "--no-index" in log


def test_same_lock_again_says_which_version_holds_it(design: Design, automation: Node) -> None:
    automation.run("import", str(design.with_wheels))
    again = automation.run("import", str(design.lock_only), "--json")
    report = json.loads(again.stdout)["envs"][0]
    assert report["action"] == "already held" and report["version"] == 1
    revisions = json.loads(automation.run("revisions", "ml", "--json").stdout)
    assert len(revisions) == 1


def test_lock_only_import_offline_uses_the_cache_or_names_what_is_missing(
    design: Design, automation: Node
) -> None:
    result = _offline(automation, "import", str(design.lock_only), "--offline")
    assert result.returncode == 4
    assert "beta" in result.stderr or "alpha" in result.stderr
    # Online, the same bundle installs from the index, exactly.
    automation.run("import", str(design.lock_only))
    assert _installed(automation, "ml") == _installed(design.node, "ml")


@pytest.mark.parametrize(
    "member", ["envs/ml/wheels/beta-2.0-py3-none-any.whl", "envs/ml/requirements.lock"]
)
def test_tampered_bundle_is_refused_and_nothing_created(
    design: Design, automation: Node, tmp_path: Path, member: str
) -> None:
    data = bytearray(members(design.with_wheels)[member])
    data[len(data) // 2] ^= 1
    tampered = rewritten(design.with_wheels, tmp_path / "tampered.tar", {member: bytes(data)})
    result = automation.run("import", str(tampered), check=False)
    assert result.returncode == 2
    assert member in result.stderr and "does not match" in result.stderr
    assert _envs(automation) == []
    assert not any((automation.home / "imports").glob("*"))


def test_python_minor_the_node_lacks_is_refused(
    design: Design, automation: Node, tmp_path: Path
) -> None:
    manifest = json.loads(members(design.with_wheels)["manifest.json"])
    manifest["envs"][0]["python"] = "3.99"
    odd = rewritten(
        design.with_wheels, tmp_path / "odd.tar", {"manifest.json": json.dumps(manifest).encode()}
    )
    result = automation.run("import", str(odd), check=False)
    assert result.returncode == 2
    assert "error [python]" in result.stderr and "3.99" in result.stderr
    assert design.python in result.stderr  # the versions it has
    assert _envs(automation) == []


def test_newer_format_is_refused_with_the_versions_supported(
    design: Design, automation: Node, tmp_path: Path
) -> None:
    manifest = json.loads(members(design.with_wheels)["manifest.json"])
    manifest["format"] = 2
    newer = rewritten(
        design.with_wheels, tmp_path / "newer.tar", {"manifest.json": json.dumps(manifest).encode()}
    )
    result = automation.run("import", str(newer), check=False)
    assert result.returncode == 2
    assert "error [format]" in result.stderr and "format 1" in result.stderr
    assert _envs(automation) == []


def test_credentials_stay_home(tmp_path: Path, sample_index: PackageIndex) -> None:
    node = Node(tmp_path / "home", sample_index.url)
    secret_url = sample_index.url.replace("http://", "http://reader:s3cret-t0ken@")
    node.run("create", "private", "--python", _newest(node), "--no-core-packages")
    node.run(
        "save", "private", "--add", "alpha", "--install-options", "--", "--index-url", secret_url
    )
    node.run("update", "private")
    bundle = tmp_path / "private.tar"
    node.run("export", "private", "-o", str(bundle))
    found = members(bundle)
    assert not any(b"s3cret-t0ken" in data for data in found.values())
    env = json.loads(found["manifest.json"])["envs"][0]
    assert any(item.startswith("install_options") for item in env["left_out"])
    assert json.loads(found["envs/private/spec.json"])["install_options"] is None


def test_local_sources_are_refused_naming_the_line(
    tmp_path: Path, sample_index: PackageIndex
) -> None:
    node = Node(tmp_path / "home", sample_index.url)
    sources = node.allow_local_sources()
    wheel = next(iter(sample_index.distributions()["alpha"]))
    local = shutil.copy(wheel, sources / wheel.name)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"beta\n{local}\n")
    node.run("create", "local", "--python", _newest(node), "-r", str(requirements))
    result = node.run("export", "local", "-o", str(tmp_path / "local.tar"), check=False)
    assert result.returncode == 2
    assert "error [requested]" in result.stderr and "line 2" in result.stderr
    assert not (tmp_path / "local.tar").exists()


def test_export_with_wheels_while_the_index_is_away_names_the_missing(
    tmp_path: Path, index: PackageIndex
) -> None:
    index.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
    node = Node(tmp_path / "home", index.url)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("beta\n")
    node.run("create", "ml", "--python", _newest(node), "-r", str(requirements))
    index.stop()
    result = node.run("export", "ml", "--with-wheels", "-o", str(tmp_path / "b.tar"), check=False)
    assert result.returncode == 4
    assert "missing: alpha==1.0, beta==2.0" in result.stderr
    assert not (tmp_path / "b.tar").exists()


@pytest.fixture
def two_envs(tmp_path: Path, sample_index: PackageIndex) -> Iterator[Path]:
    node = Node(tmp_path / "two-home", sample_index.url)
    python = _newest(node)
    node.run("create", "first", "--python", python, "--no-core-packages")
    node.run("create", "second", "--python", python, "--no-core-packages")
    node.run("save", "second", "--add", "alpha")
    node.run("update", "second")
    bundle = tmp_path / "two.tar"
    node.run("export", "--all", "--with-wheels", "-o", str(bundle))
    yield bundle


def test_several_envs_in_one_bundle_and_the_import_modes(two_envs: Path, automation: Node) -> None:
    names = [env["name"] for env in json.loads(members(two_envs)["manifest.json"])["envs"]]
    assert sorted(names) == ["first", "second"]
    missing = automation.run("import", str(two_envs), "--mode", "FAIL_IF_MISSING", check=False)
    assert missing.returncode == 3 and "does not exist" in missing.stderr
    nothing = json.loads(
        automation.run("import", str(two_envs), "--mode", "DO_NOTHING", "--json").stdout
    )
    assert {item["action"] for item in nothing["envs"]} == {"nothing done"}
    assert _envs(automation) == []
    done = json.loads(automation.run("import", str(two_envs), "--json").stdout)
    assert sorted(item["env"] for item in done["envs"]) == ["first", "second"]
    assert {item["action"] for item in done["envs"]} == {"imported"}
    assert ("alpha", "1.0") in _installed(automation, "second")
    again = json.loads(
        automation.run("import", str(two_envs), "--mode", "FAIL_IF_MISSING", "--json").stdout
    )
    assert {item["action"] for item in again["envs"]} == {"already held"}


def test_import_as_another_name(design: Design, automation: Node) -> None:
    automation.run("import", str(design.with_wheels), "--as", "ml-prod")
    assert _envs(automation) == ["ml-prod"]
    assert _installed(automation, "ml-prod") == _installed(design.node, "ml")


SCRIPT = "from codenv_runtime import resources\nresources.set_env_var('GREETING', 'hello')\n"
SHOW_GREETING = "import os; print(os.environ.get('GREETING', 'unset'))"


@pytest.mark.parametrize("on_api_node", [True, False])
def test_init_script_runs_on_an_api_node_only_when_the_env_asks(
    tmp_path: Path, sample_index: PackageIndex, on_api_node: bool
) -> None:
    node = Node(tmp_path / "home", sample_index.url)
    node.run("create", "scripted", "--python", _newest(node))
    script = tmp_path / "init.py"
    script.write_text(SCRIPT)
    flag = "--run-on-api-node" if on_api_node else "--no-run-on-api-node"
    node.run("resources", "script", "scripted", "--set", str(script), flag)
    node.run("update", "scripted")
    bundle = tmp_path / "scripted.tar"
    node.run("export", "scripted", "--with-wheels", "-o", str(bundle))
    assert members(bundle)["envs/scripted/init_script.py"].decode() == SCRIPT
    api = _node(tmp_path, sample_index.url, "api")
    api.run("import", str(bundle))
    shown = api.run("run", "scripted", "--", "python", "-c", SHOW_GREETING).stdout.strip()
    assert shown == ("hello" if on_api_node else "unset")
    log = api.run("logs", "scripted").stdout
    assert ("running the resources init script" in log) is on_api_node


@pytest.fixture
def second_index(tmp_path: Path) -> Iterator[PackageIndex]:
    directory = tmp_path / "second-index"
    directory.mkdir()
    with PackageIndex(directory) as served:
        served.add_wheel("alpha", "1.0")
        served.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
        yield served


@pytest.mark.parametrize("prevent", [True, False])
def test_prevent_override_from_imported_envs_picks_whose_options_apply(
    tmp_path: Path, sample_index: PackageIndex, second_index: PackageIndex, prevent: bool
) -> None:
    """The env carries the sample index; the API node's own options name the second index:
    which one the import reads shows whose options applied."""
    node = Node(tmp_path / "home", sample_index.url)
    node.run("create", "opts", "--python", _newest(node), "--no-core-packages")
    node.run(
        "save", "opts", "--add", "beta", "--install-options", "--", "--index-url", sample_index.url
    )
    node.run("update", "opts")
    bundle = tmp_path / "opts.tar"
    node.run("export", "opts", "-o", str(bundle))
    api = _node(tmp_path, sample_index.url, "api")
    api.code_envs_setting("pipInstallExtraOptions", ["--index-url", second_index.url])
    api.code_envs_setting("preventOverrideFromImportedEnvs", prevent)
    sample_index.clear_requests()
    api.run("import", str(bundle))
    used = second_index if prevent else sample_index
    unused = sample_index if prevent else second_index
    assert any("beta" in path for path in used.requests)
    assert not any("beta" in path for path in unused.requests)
    log = api.run("logs", "opts").stdout
    assert f"--index-url {used.url}" in log
    shown = json.loads(api.run("show", "opts", "--json").stdout)
    assert shown["options_source"]["install"] == ("node" if prevent else "env")


def test_resources_travel_without_following_links(
    tmp_path: Path, sample_index: PackageIndex
) -> None:
    node = Node(tmp_path / "home", sample_index.url)
    node.run("create", "res", "--python", _newest(node), "--no-core-packages")
    resources = node.home / "envs" / "res" / "resources"
    (resources / "models").mkdir(parents=True)
    (resources / "models" / "weights.bin").write_bytes(b"\x00weights")
    # What an init script could plant: links to files of the node.
    (resources / "passwd").symlink_to("/etc/passwd")
    (resources / "home").symlink_to(node.home)
    bundle = tmp_path / "res.tar"
    node.run("export", "res", "--with-resources", "-o", str(bundle))
    found = members(bundle)
    carried = sorted(name for name in found if "/resources/" in name)
    assert carried == ["envs/res/resources/models/weights.bin"]
    automation = _node(tmp_path, sample_index.url, "automation")
    automation.run("import", str(bundle))
    imported = automation.home / "envs" / "res" / "resources" / "models" / "weights.bin"
    assert imported.read_bytes() == b"\x00weights"


def test_a_member_outside_the_bundle_is_refused(
    design: Design, automation: Node, tmp_path: Path
) -> None:
    evil = tmp_path / "evil.tar"
    shutil.copy(design.with_wheels, evil)
    with tarfile.open(evil, "a") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = automation.run("import", str(evil), check=False)
    assert result.returncode == 2 and "not a plain relative path" in result.stderr
    assert not (automation.home.parent / "outside.txt").exists()
    assert _envs(automation) == []
