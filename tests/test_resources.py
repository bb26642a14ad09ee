"""Managed resources: init script, env vars, running code in an env, the file explorer."""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import Node

DOWNLOAD_SCRIPT = """
import os, urllib.request
from codenv_runtime import resources
resources.set_env_path("HF_HOME", "huggingface")
target = os.path.join(os.environ["HF_HOME"], "model.bin")
os.makedirs(os.environ["HF_HOME"], exist_ok=True)
urllib.request.urlretrieve("{url}/model.bin", target)
resources.set_env_var("MODEL_NAME", "tiny")
print("downloaded", os.path.getsize(target), "bytes")
"""


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on loopback with a 'model' file to download."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.bin").write_bytes(b"weights" * 1000)
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _script(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"init-{abs(hash(text))}.py"
    path.write_text(text)
    return str(path)


def _vars(node: Node, name: str = "demo") -> dict[str, str]:
    return json.loads(node.run("resources", "vars", name, "--json").stdout)


def test_init_script_downloads_into_resources_and_run_sees_it(
    node: Node, newest: str, tmp_path: Path, model_server: str
) -> None:
    node.run("create", "demo", "--python", newest)
    # Boxes reach only the indexes and what an administrator adds: the model's host.
    node.code_envs_setting("sandboxAllowedHosts", [model_server])
    script = _script(tmp_path, DOWNLOAD_SCRIPT.format(url=model_server))
    node.run("resources", "script", "demo", "--set", script)
    node.run("update", "demo")

    resources = node.home / "envs" / "demo" / "resources"
    assert _vars(node) == {"HF_HOME": str(resources / "huggingface"), "MODEL_NAME": "tiny"}
    printed = node.run(
        "run",
        "demo",
        "--",
        "python",
        "-c",
        "import os; p = os.environ['HF_HOME']; print(p, os.path.getsize(p + '/model.bin'), "
        "os.environ['MODEL_NAME'], os.environ['VIRTUAL_ENV'])",
    ).stdout.split()
    assert printed == [
        str(resources / "huggingface"),
        "7000",
        "tiny",
        str(node.home / "envs" / "demo" / "current"),
    ]
    assert "downloaded 7000 bytes" in node.run("logs", "demo").stdout
    listed = json.loads(node.run("resources", "ls", "demo", "huggingface", "--json").stdout)
    assert [(e["path"], e["size"]) for e in listed] == [("huggingface/model.bin", 7000)]


def test_failing_init_script_keeps_previous_revision_and_env_vars(
    node: Node, newest: str, tmp_path: Path
) -> None:
    node.run("create", "demo", "--python", newest)
    good = "from codenv_runtime import resources\nresources.set_env_var('STAGE', 'good')\n"
    node.run("resources", "script", "demo", "--set", _script(tmp_path, good))
    node.run("update", "demo")
    assert _vars(node) == {"STAGE": "good"}

    bad = good.replace("good", "bad") + "raise SystemExit('the model server is down')\n"
    node.run("resources", "script", "demo", "--set", _script(tmp_path, bad))
    failed = node.run("update", "demo", check=False)

    assert failed.returncode == 4
    assert "resources init script failed" in failed.stderr
    assert "the model server is down" in failed.stderr
    shown = json.loads(node.run("show", "demo", "--json").stdout)
    assert shown["active_revision"] == 2
    assert _vars(node) == {"STAGE": "good"}
    assert not list((node.home / "envs" / "demo").glob(".staged-*"))


def test_resources_init_runs_now_and_vars_survive_rollback(
    node: Node, newest: str, tmp_path: Path
) -> None:
    node.run("create", "demo", "--python", newest)
    script = "from codenv_runtime import resources\nresources.set_env_path('TORCH_HOME', 't')\n"
    node.run(
        "resources", "script", "demo", "--set", _script(tmp_path, script), "--no-run-on-update"
    )
    assert "already up to date" in node.run("update", "demo").stdout  # the script is not run
    assert _vars(node) == {}

    node.run("resources", "init", "demo")
    torch_home = str(node.home / "envs" / "demo" / "resources" / "t")
    assert _vars(node) == {"TORCH_HOME": torch_home}
    node.run("save", "demo", "--add", "alpha", "--update")
    node.run("rollback", "demo", "1")
    assert _vars(node) == {"TORCH_HOME": torch_home}


def test_init_script_needs_the_core_package(node: Node, newest: str, tmp_path: Path) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    refused = node.run(
        "resources", "script", "demo", "--set", _script(tmp_path, "print(1)"), check=False
    )
    assert refused.returncode == 2
    assert "error [resources_init_script]" in refused.stderr
    assert "core package" in refused.stderr


def test_run_passes_exit_code_and_stdin_and_refuses_unbuilt_envs(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    code = "import sys; data = sys.stdin.read(); print(data.upper()); sys.exit(len(data))"
    result = node.run("run", "demo", "--", "python", "-c", code, input="abc", check=False)
    assert (result.returncode, result.stdout.strip()) == (3, "ABC")
    assert node.run("path", "demo").stdout.strip() == str(node.python("demo"))
    refused = node.run("run", "nothere", "--", "python", check=False)
    assert refused.returncode == 3 and "no code env named 'nothere'" in refused.stderr


def test_run_refuses_an_env_that_never_built(node: Node, newest: str, tmp_path: Path) -> None:
    requirements = tmp_path / "req.txt"
    requirements.write_text("alpha>=99\n")
    failed = node.run("create", "demo", "--python", newest, "-r", str(requirements), check=False)
    assert failed.returncode == 4
    for command in (("run", "demo", "--", "python", "-V"), ("path", "demo")):
        refused = node.run(*command, check=False)
        assert refused.returncode == 3 and "never built successfully" in refused.stderr


def _snapshot(directory: Path) -> dict[str, tuple[int, float, bytes]]:
    return {
        str(path): (
            path.stat().st_size,
            path.stat().st_mtime,
            path.read_bytes() if path.is_file() else b"",
        )
        for path in sorted(directory.rglob("*"))
    }


def test_file_explorer_refuses_every_way_out(node: Node, newest: str, tmp_path: Path) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    outside = node.home / "envs" / "outside-secrets"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch")
    resources = node.home / "envs" / "demo" / "resources"
    resources.mkdir()
    (resources / "escape").symlink_to(outside)
    local = tmp_path / "upload.txt"
    local.write_text("payload")
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../outside-secrets/evil.txt", "evil")
    before = _snapshot(outside)

    attempts = [
        ("resources", "put", "demo", str(local), "../upload.txt"),
        ("resources", "put", "demo", str(local), "escape/upload.txt"),
        ("resources", "put", "demo", str(slip), "--unzip"),
        ("resources", "get", "demo", "../outside-secrets/secret.txt", str(tmp_path)),
        ("resources", "get", "demo", "escape/secret.txt", str(tmp_path)),
        ("resources", "get", "demo", "/etc/passwd", str(tmp_path)),
        ("resources", "ls", "demo", "escape"),
        ("resources", "rm", "demo", "escape/secret.txt"),
        ("resources", "rm", "demo", "../outside-secrets"),
    ]
    for attempt in attempts:
        refused = node.run(*attempt, check=False)
        assert refused.returncode == 2, attempt
        assert "[path]" in refused.stderr and "inside the resources directory" in refused.stderr
    assert _snapshot(outside) == before
    assert not (resources / "ok.txt").exists(), "a refused zip must write nothing"

    node.run("resources", "put", "demo", str(local), "models/upload.txt")
    node.run("resources", "get", "demo", "models/upload.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "payload"
    node.run("resources", "rm", "demo", "models")
    assert not (resources / "models").exists()
