"""Code from a spec attacks the node: a resources init script, and the setup code of an sdist
served by the test index. Every attempt is refused, the build log says so, and the other env,
the server's files and its processes are untouched."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import codenv
from conftest import Node
from support import pkgbuild
from support.listener import Listener
from support.pkgindex import PackageIndex

# Each attempt prints REFUSED or ESCAPED with its name; the build log collects them.
ATTACK = """
import os, signal, socket

def attempt(name, action):
    try:
        action()
    except BaseException as error:
        print("REFUSED", name, type(error).__name__, flush=True)
    else:
        print("ESCAPED", name, flush=True)

def read(path):
    return lambda: open(path, "rb").read()

def write(path):
    def action():
        with open(path, "w") as handle:
            handle.write("pwned")
    return action

def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=3):
        pass

def fetch():
    import urllib.request
    urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=5).read()

def memory():
    block = bytearray({memory})
    block[-1] = 1

def processes():
    children = []
    try:
        for _ in range(400):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            children.append(pid)
    finally:
        for pid in children:
            os.waitpid(pid, 0)

def poison():
    # Envs hard-link the shared cache's files: a change there would change them all.
    count = 0
    for root, _dirs, files in os.walk({cache!r}):
        if root.endswith(os.sep + "alpha") and "__init__.py" in files:
            with open(os.path.join(root, "__init__.py"), "w") as handle:
                handle.write("raise SystemExit('poisoned')")
            count += 1
    print("CACHE-WRITES", count, flush=True)

try:
    poison()
except BaseException as error:
    print("CACHE-REFUSED", type(error).__name__, flush=True)
attempt("secret-key", read({secret!r}))
attempt("database", read({database!r}))
attempt("other-resources", read({resources!r}))
attempt("other-revision", write({revision!r}))
attempt("server-package", write({package!r}))
attempt("signal", lambda: os.kill({pid}, signal.SIGTERM))
attempt("server-port", connect)
attempt("server-port-http", fetch)
attempt("memory", memory)
attempt("processes", processes)
"""
ATTEMPTS = (
    "secret-key",
    "database",
    "other-resources",
    "other-revision",
    "server-package",
    "signal",
    "server-port",
    "server-port-http",
    "memory",
    "processes",
)
LIMITS = {"memoryBytes": 1 << 30, "processes": 64}


@pytest.fixture
def target(node: Node, newest: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    """A node with an env `other` (a revision, resources with a secret) and a sleeping
    process, a listening port and a session key for the attacker to aim at."""
    config = node.home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "secret_key").write_text("the-session-signing-key")
    node.code_envs_setting("sandboxLimits", LIMITS)
    node.run("create", "other", "--python", newest, "--no-core-packages")
    node.run("save", "other", "--add", "alpha", "--update")  # hard-linked from the cache
    secret = node.home / "envs" / "other" / "resources" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("other team's data")
    sleeper = subprocess.Popen(["sleep", "300"])
    listener = Listener()
    try:
        yield {
            "secret": str(config / "secret_key"),
            "database": str(node.home / "codenv.db"),
            "resources": str(secret),
            "revision": str(node.home / "envs" / "other" / "revisions" / "1" / "pwned.txt"),
            "package": str(Path(codenv.__file__).parent / "pwned.txt"),
            "cache": str(node.home / "cache" / "uv"),
            "pid": sleeper.pid,
            "port": listener.port,
            "memory": 2 << 30,
            "listener": listener,
            "sleeper": sleeper,
        }
    finally:
        sleeper.kill()
        listener.close()


def _script(target: dict[str, object]) -> str:
    fields = {k: v for k, v in target.items() if k not in ("listener", "sleeper")}
    return ATTACK.format(**fields)


def _assert_all_refused(log: str, target: dict[str, object], node: Node) -> None:
    for name in ATTEMPTS:
        assert f"REFUSED {name}" in log, f"{name} was not refused:\n{log}"
    assert "ESCAPED" not in log
    assert not Path(str(target["revision"])).exists()
    assert not Path(str(target["package"])).exists()
    assert Path(str(target["resources"])).read_text() == "other team's data"
    sleeper = target["sleeper"]
    assert isinstance(sleeper, subprocess.Popen) and sleeper.poll() is None
    listener = target["listener"]
    assert isinstance(listener, Listener) and listener.accepted == 0
    assert f"127.0.0.1:{listener.port}" in log  # the refused request, named in the log
    assert node.run("installed", "other").returncode == 0
    # Whatever the box wrote in its view of the shared cache vanished with it.
    assert node.env_python_run("other", "import alpha; print(alpha.__version__)") == "1.0"


def _log(node: Node, env: str) -> str:
    return node.run("logs", env).stdout


def test_an_init_script_cannot_reach_anything_of_the_node(
    node: Node, newest: str, target: dict[str, object], tmp_path: Path
) -> None:
    script = tmp_path / "attack.py"
    script.write_text(_script(target))
    node.run("create", "evil", "--python", newest)
    node.run("resources", "script", "evil", "--set", str(script))
    node.run("resources", "init", "evil", check=False)
    _assert_all_refused(_log(node, "evil"), target, node)


def test_the_setup_code_of_an_sdist_cannot_reach_anything_of_the_node(
    node: Node, newest: str, target: dict[str, object], index: PackageIndex, tmp_path: Path
) -> None:
    tree = pkgbuild.write_source_tree(tmp_path / "evil-1.0", "evil", "1.0")
    backend = tree / "backend.py"
    # Runs when an installer loads the build backend (to read the sdist's metadata); then
    # fails the build, so that the installer shows what the backend printed.
    attack = _script(target) + "\nraise RuntimeError('attack finished')\n"
    backend.write_text(attack + backend.read_text())
    pkgbuild.make_tar_archive(tree, index.directory / "evil-1.0.tar.gz")
    node.index_url = index.url
    node.run("create", "evil", "--python", newest, "--no-core-packages")
    node.run("save", "evil", "--add", "evil", "--update", check=False)
    log = _log(node, "evil")
    _assert_all_refused(log, target, node)
    # It did change alpha's files in its view of the shared cache: only there.
    assert re.search(r"CACHE-WRITES [1-9]", log), log
