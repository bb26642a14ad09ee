"""Container images end to end: a registry on loopback (Debian's docker-registry, started by
scripts/registry), a Debian base image made by the tests (mmdebstrap, cached), real uv builds
from a loopback index, images written and pushed by codenv, pulled and run with podman (runc,
no network)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codenv.images.registry import RegistryClient
from codenv.services.actor import Actor
from codenv.services.audit import list_audit
from conftest import Node
from support.base_image import require_base_image
from support.pkgindex import PackageIndex
from support.podman import Podman, require_podman
from support.registry import RunningRegistry, running_registry
from support.samples import SAMPLE_SET, write_node_sets

pytestmark = pytest.mark.xdist_group("images")

PASSWORD = "s3cret-registry-pw"
INIT_SCRIPT = """\
from pathlib import Path
from codenv_runtime.resources import set_env_path, set_env_var
Path("models").mkdir(exist_ok=True)
Path("models/weights.txt").write_text("w")
set_env_var("MODEL_NAME", "tiny")
set_env_path("MODEL_DIR", "models")
"""


@dataclass
class Setup:
    node: Node
    registry: RunningRegistry
    python: str
    root: Path
    layout: Path


def _tool_modules() -> dict[str, str]:
    return {
        "tool/__init__.py": "def main():\n    print('hello from tool')\n",
        "tool-1.0.dist-info/entry_points.txt": "[console_scripts]\ntool-hello = tool:main\n",
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    require_podman()
    layout = require_base_image()
    root = tmp_path_factory.mktemp("images")
    (root / "index").mkdir()
    with PackageIndex(root / "index") as index, running_registry(root, users=None) as registry:
        index.add_wheel("tool", "1.0", modules=_tool_modules())
        # 3 MB of incompressible text: a layer of its own, shared by the two envs below.
        big = {
            "bigpkg/__init__.py": "",
            "bigpkg/data.py": f"DATA = '{secrets.token_hex(1_500_000)}'\n",
        }
        index.add_wheel("bigpkg", "1.0", modules=big)
        # Larger, in the first env only: by size alone its layer would come first there.
        text = secrets.token_hex(2_500_000)
        huge = {"hugepkg/__init__.py": "", "hugepkg/data.py": f"DATA = '{text}'\n"}
        index.add_wheel("hugepkg", "1.0", modules=huge)
        index.add_wheel("small", "1.0")
        node = Node(root / "home", index.url)
        # The node's package sets ask for bigpkg: envs share it, so images lay it out first.
        write_node_sets(node.home, [{**SAMPLE_SET, "variants": {"cpu": ["bigpkg"]}}])
        found = json.loads(node.run("pythons", "--json").stdout)["interpreters"]
        python = sorted(
            {i["version"].rsplit(".", 1)[0] for i in found if "pyenv" in i["path"]},
            key=lambda v: tuple(int(p) for p in v.split(".")),
        )[-1]
        node.run(
            "containers", "add", "k8s", "--base", f"oci:{layout}:base",
            "--registry", f"{registry.host}/codenv", "--insecure", "--env", "GREETING=hi",
        )  # fmt: skip
        yield Setup(node, registry, python, root, layout)


def _images(node: Node, env: str) -> dict[str, object]:
    return json.loads(node.run("images", env, "--json").stdout)


def _create(setup: Setup, env: str, lines: str, *extra: str) -> dict[str, object]:
    requirements = setup.root / f"{env}.txt"
    requirements.write_text(lines)
    node = setup.node
    node.run("create", env, "--python", setup.python, "-r", str(requirements))
    node.run("save", env, "--containers", "k8s", *extra)
    node.run("update", env, "--rebuild")  # the images of the new revision are built after it
    return _images(node, env)


def _pushed(images: dict[str, object]) -> dict[str, object]:
    [image] = [i for i in images["images"] if i["revision"] == images["active_revision"]]  # type: ignore[index,union-attr]
    assert image["status"] == "pushed", image
    return image


@pytest.fixture(scope="module")
def first(setup: Setup) -> dict[str, object]:
    script = setup.root / "init.py"
    script.write_text(INIT_SCRIPT)
    requirements = setup.root / "Ml-One.txt"
    requirements.write_text("tool\nbigpkg\nhugepkg\n")
    node = setup.node
    node.run("create", "Ml-One", "--python", setup.python, "-r", str(requirements))
    node.run("resources", "script", "Ml-One", "--set", str(script), "--no-run-on-update")
    node.run("save", "Ml-One", "--containers", "k8s", "--container-resources", "init")
    node.run("update", "Ml-One", "--rebuild")
    return _images(node, "Ml-One")


def test_an_image_runs_the_env_under_podman(setup: Setup, first: dict[str, object]) -> None:
    image = _pushed(first)
    # Capitals in the env name: a lowercase repository name, shown to the user.
    assert first["repository_name"] != "Ml-One"
    assert str(first["repository_name"]).startswith("ml-one.")
    assert image["repository"] == f"{setup.registry.host}/codenv/{first['repository_name']}"
    with Podman(setup.root / "podman") as podman:
        _run_under_podman(setup, podman, f"{image['repository']}:{image['tag']}")


def _run_under_podman(setup: Setup, podman: Podman, ref: str) -> None:
    podman.pull(ref)
    code = (
        "import os, tool, bigpkg.data; print(len(bigpkg.data.DATA) > 1000000); "
        "print(os.environ['GREETING'], os.environ['MODEL_NAME'], os.environ['MODEL_DIR']); "
        "print(open(os.path.join(os.environ['MODEL_DIR'], 'weights.txt')).read())"
    )
    ran = podman.run(ref, ["python", "-c", code])
    assert ran.returncode == 0, ran.stderr
    resources = "/opt/codenv/env-resources"
    assert ran.stdout.split() == ["True", "hi", "tiny", f"{resources}/models", "w"]
    script = podman.run(ref, ["tool-hello"])
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == "hello from tool"
    # The env on this node is untouched: its own python, its own paths.
    local = setup.node.run("run", "Ml-One", "--", "python", "-c", "import sys; print(sys.prefix)")
    assert "/opt/codenv" not in local.stdout


def test_rebuilding_an_image_gives_the_same_digest(setup: Setup, first: dict[str, object]) -> None:
    before = _pushed(first)
    setup.node.run("images", "build", "Ml-One", "--config", "k8s")
    after = _pushed(_images(setup.node, "Ml-One"))
    assert after["digest"] == before["digest"]
    assert after["pushed_bytes"] == 0  # every blob was in the registry already


def test_a_second_env_sharing_a_large_package_grows_the_registry_little(
    setup: Setup, first: dict[str, object]
) -> None:
    first_image = _pushed(first)
    before = setup.registry.storage_bytes()
    second = _pushed(_create(setup, "two", "bigpkg\nsmall\n"))
    grown = setup.registry.storage_bytes() - before
    # The base, the interpreter (~20 MB) and bigpkg (~1.6 MB gzipped) are shared: what is new
    # is the head layer, the config and the manifest.
    assert grown < 600_000, grown
    assert int(second["size_bytes"]) > 20_000_000  # type: ignore[call-overload]
    # On a node too: the first image lays bigpkg out before the larger hugepkg (the node's
    # sets share bigpkg), so the second image's layers up to bigpkg's are the first's.
    with Podman(setup.root / "podman-node") as podman:
        podman.pull(f"{first_image['repository']}:{first_image['tag']}")
        pulled = podman.storage_bytes()
        podman.pull(f"{second['repository']}:{second['tag']}")
        assert podman.storage_bytes() - pulled < 1_500_000


def test_a_failing_image_build_leaves_the_revision_working(setup: Setup) -> None:
    node = setup.node
    node.run(
        "containers", "add", "broken", "--base", f"oci:{setup.root}/no-such-layout",
        "--registry", f"{setup.registry.host}/codenv", "--insecure",
    )  # fmt: skip
    requirements = setup.root / "fragile.txt"
    requirements.write_text("small\n")
    node.run("create", "fragile", "--python", setup.python, "-r", str(requirements))
    node.run("save", "fragile", "--containers", "broken")
    node.run("update", "fragile", "--rebuild")
    images = _images(node, "fragile")
    [image] = images["images"]  # type: ignore[misc]
    assert image["status"] == "failed"
    assert "no-such-layout" in image["error"]
    shown = json.loads(node.run("show", "fragile", "--json").stdout)
    assert shown["status"] == "ready"
    ran = node.run("run", "fragile", "--", "python", "-c", "import small; print(small.__version__)")
    assert ran.stdout.strip() == "1.0"


def test_deleting_the_env_deletes_its_tags(setup: Setup) -> None:
    images = _create(setup, "gone", "small\n")
    image = _pushed(images)
    repository = str(image["repository"]).split("/", 1)[1]
    with RegistryClient(setup.registry.endpoint()) as client:
        assert client.tags(repository) == [image["tag"]]
        setup.node.run("delete", "gone", "--yes")
        assert client.tags(repository) == []


def test_registry_credentials_never_appear(tmp_path: Path, setup: Setup) -> None:
    with running_registry(tmp_path, users={"pusher": PASSWORD}) as private:
        node = setup.node
        node.run(
            "containers", "add", "private", "--base", f"oci:{setup.layout}:base",
            "--registry", f"{private.host}/team", "--insecure", "--username", "pusher",
            "--password-stdin", input=f"{PASSWORD}\n",
        )  # fmt: skip
        listed = node.run("containers", "list", "--json").stdout
        assert PASSWORD not in listed and '"password_set": true' in listed
        requirements = tmp_path / "req.txt"
        requirements.write_text("small\n")
        node.run("create", "secretive", "--python", setup.python, "-r", str(requirements))
        node.run("save", "secretive", "--containers", "private")
        node.run("update", "secretive", "--rebuild")
        image = _pushed(_images(node, "secretive"))
        log = node.run("logs", "secretive", "--build", str(image["build_id"])).stdout
        assert "pushed" in log and PASSWORD not in log
        audit = list_audit(node.app(), Actor.local_admin())
        assert PASSWORD not in json.dumps([entry.to_dict() for entry in audit])
        assert (
            PASSWORD
            not in (setup.node.home / "builds").joinpath(f"{image['build_id']}.log").read_text()
        )


def test_copy_mode_puts_this_nodes_resources_in_the_image(setup: Setup) -> None:
    node = setup.node
    requirements = setup.root / "copied.txt"
    requirements.write_text("small\n")
    node.run("create", "copied", "--python", setup.python, "-r", str(requirements))
    weights = setup.root / "weights.bin"
    weights.write_text("node weights")
    node.run("resources", "put", "copied", str(weights), "models/weights.bin")
    node.run("save", "copied", "--containers", "k8s", "--container-resources", "copy")
    node.run("update", "copied", "--rebuild")
    image = _pushed(_images(node, "copied"))
    code = (
        "import os; print(open(os.environ['CODENV_RESOURCES_DIR'] + '/models/weights.bin').read())"
    )
    with Podman(setup.root / "podman-copy") as podman:
        ref = f"{image['repository']}:{image['tag']}"
        podman.pull(ref)
        ran = podman.run(ref, ["python", "-c", code])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "node weights"


def test_images_of_pruned_revisions_are_deleted_from_the_registry(setup: Setup) -> None:
    node = Node(setup.node.home, setup.node.index_url, {"CODENV_RETENTION": "1"})
    first = _pushed(_create(setup, "pruned", "small\n"))
    repository = str(first["repository"]).split("/", 1)[1]
    for _ in range(2):
        node.run("update", "pruned", "--rebuild")
    with RegistryClient(setup.registry.endpoint()) as client:
        tags = client.tags(repository)
    # Retention 1: the active revision and one before it stay; the first one's image went.
    assert first["tag"] not in tags
    assert len(tags) == 2
    held = {i["revision"] for i in _images(node, "pruned")["images"]}  # type: ignore[union-attr]
    assert int(first["revision"]) not in held  # type: ignore[call-overload]


def test_two_nodes_build_the_same_image_of_the_same_env(setup: Setup) -> None:
    other = Node(setup.root / "home2", setup.node.index_url)
    other.run(
        "containers", "add", "k8s", "--base", f"oci:{setup.layout}:base",
        "--registry", f"{setup.registry.host}/node2", "--insecure", "--env", "GREETING=hi",
    )  # fmt: skip
    digests = []
    for node in (setup.node, other):
        requirements = setup.root / "twin.txt"
        requirements.write_text("small\n")
        node.run("create", "twin", "--python", setup.python, "-r", str(requirements))
        node.run("save", "twin", "--containers", "k8s")
        node.run("update", "twin", "--rebuild")
        digests.append(_pushed(_images(node, "twin"))["digest"])
    assert digests[0] == digests[1]
