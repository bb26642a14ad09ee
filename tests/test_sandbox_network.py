"""A box in `indexes` mode reaches the package indexes its policy names and nothing else:
real bwrap, real uv and pip, a real index A on loopback (allowed) and a second loopback
server B standing in for the codenv server (not allowed)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from codenv.domain.pythons import Interpreter
from codenv.interpreters import Discovery
from codenv.sandbox import (
    PROXY_PORT,
    NetworkMode,
    SandboxLimits,
    SandboxPolicy,
    SandboxResult,
    allowed_hosts_for,
    interpreter_prefix,
    run,
    sandbox_argv,
    sandbox_available,
)
from codenv.sandbox.network import Refused, resolve_allowed
from codenv.sandbox.proxy import MAX_CONNECTIONS
from codenv.sandbox.proxy_http import parse_request
from support.listener import Listener
from support.pkgindex import PackageIndex

# Python 3.6 syntax. Every attempt to reach B reports how it ended; "done" means it got through.
ATTEMPTS = r"""
import json, socket, sys, urllib.request
b = int(sys.argv[1])
proxy = ("127.0.0.1", int(sys.argv[2]))
def attempt(action):
    try:
        return "done: " + str(action())[:80]
    except Exception as exc:
        return "refused: " + type(exc).__name__ + " " + str(exc)[:200]
def through_proxy(line):
    with socket.create_connection(proxy, timeout=5) as conn:
        conn.sendall(line.encode() + b"\r\nHost: x\r\n\r\n")
        answer = conn.recv(4096).decode()
    if " 200 " in answer.split("\r\n")[0]:
        return answer
    raise ConnectionRefusedError(answer.split("\r\n")[0])
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(json.dumps({
    "urllib": attempt(lambda: urllib.request.urlopen("http://127.0.0.1:%d/" % b, timeout=5)),
    "urllib, no proxy": attempt(lambda: direct.open("http://127.0.0.1:%d/" % b, timeout=5)),
    "urllib, localhost": attempt(lambda: urllib.request.urlopen("http://localhost:%d/" % b)),
    "raw socket": attempt(lambda: socket.create_connection(("127.0.0.1", b), timeout=5)),
    "CONNECT": attempt(lambda: through_proxy("CONNECT 127.0.0.1:%d HTTP/1.1" % b)),
    "CONNECT [::1]": attempt(lambda: through_proxy("CONNECT [::1]:%d HTTP/1.1" % b)),
    "GET": attempt(lambda: through_proxy("GET http://127.0.0.1:%d/ HTTP/1.1" % b)),
    "DNS": attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
}))
"""

# Holds more connections to the proxy than it serves at once, then asks for one more.
CROWD = r"""
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(int(sys.argv[2]))]
last = socket.create_connection(("127.0.0.1", port), timeout=10)
last.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
print(last.recv(4096).decode().split("\r\n")[0])
"""


class NodeProxy(Listener):
    """The node's own proxy (stands in for a corporate one): records each request head and
    carries every request to `port` on loopback, whatever host it names."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.heads: list[str] = []
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        threading.Thread(target=self._carry, args=(connection,), daemon=True).start()

    def _carry(self, connection: socket.socket) -> None:
        with connection, socket.create_connection(("127.0.0.1", self.target)) as index:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = connection.recv(1)
                if not byte:
                    return
                head += byte
            self.heads.append(head.decode())
            if head.startswith(b"CONNECT "):
                connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=_copy, args=(connection, index), daemon=True).start()
            else:
                index.sendall(head)
            _copy(index, connection)


def _copy(source: socket.socket, destination: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            destination.sendall(data)
        destination.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module", autouse=True)
def sandbox_works() -> None:
    reason = sandbox_available()
    if reason is not None:
        pytest.fail(f"the sandbox cannot start on this machine: {reason}")


@pytest.fixture(scope="module")
def newest_python(pythons: Discovery) -> Interpreter:
    found = pythons.for_minor(pythons.minors()[-1])
    assert found is not None
    return found


@pytest.fixture(scope="module")
def oldest_python(pythons: Discovery) -> Interpreter:
    found = pythons.for_minor(pythons.minors()[0])
    assert found is not None
    return found


@pytest.fixture
def server_b() -> Iterator[Listener]:
    with Listener() as listener:
        yield listener


def indexes_box(
    interpreter: Interpreter,
    index: PackageIndex,
    *read_only: Path,
    allowed: tuple[tuple[str, int], ...] | None = None,
    **fields: Any,
) -> SandboxPolicy:
    """A box that can run `interpreter` and reach `index` (or the `allowed` hosts)."""
    return SandboxPolicy(
        read_only=(interpreter_prefix(interpreter.path), *read_only),
        network=NetworkMode.INDEXES,
        allowed_hosts=allowed if allowed is not None else allowed_hosts_for([index.url]),
        **fields,
    )


def threads_and_fds() -> tuple[set[threading.Thread], set[str]]:
    """What a box's proxy would leave behind: threads (its loop, its resolver) and open
    descriptors (its listener, its connections)."""
    return set(threading.enumerate()), set(os.listdir("/proc/self/fd"))


def settled_to(before: tuple[set[threading.Thread], set[str]], seconds: float = 5) -> bool:
    """Whether threads and descriptors come back to `before`. The test index serves from this
    process too: its handler thread for the proxy's last connection may need a moment."""
    deadline = time.monotonic() + seconds
    while threads_and_fds() != before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _uv_compile(tmp_path: Path, interpreter: Interpreter, index: PackageIndex) -> SandboxResult:
    uv, requirements = find_uv_bin(), tmp_path / "requirements.in"
    requirements.write_text("beta\n")
    environment = {"UV_CACHE_DIR": "/tmp/cache", "UV_NO_CONFIG": "1"}
    policy = indexes_box(interpreter, index, Path(uv), requirements, environment=environment)
    command = [uv, "pip", "compile", str(requirements), "--python", interpreter.path]
    return run(policy, [*command, "--index-url", index.url])


# --- what a box reaches ------------------------------------------------------------------


def test_uv_resolves_from_the_allowed_index_through_the_proxy(
    tmp_path: Path, sample_index: PackageIndex, newest_python: Interpreter
) -> None:
    sample_index.clear_requests()
    before = threads_and_fds()
    resolved = _uv_compile(tmp_path, newest_python, sample_index)
    assert resolved.returncode == 0, resolved.stderr
    assert "alpha==1.0" in resolved.stdout and "beta==2.0" in resolved.stdout
    assert "/simple/beta/" in sample_index.requests, "uv must have gone through the proxy"
    assert resolved.refused == ()
    assert settled_to(before), "the proxy ends with its box"


def test_pip_of_the_oldest_python_installs_from_the_allowed_index(
    tmp_path: Path, sample_index: PackageIndex, oldest_python: Interpreter
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    policy = indexes_box(oldest_python, sample_index, writable=(target,))
    pip = [oldest_python.path, "-m", "pip", "install", "--disable-pip-version-check", "beta"]
    done = run(policy, [*pip, "--target", str(target), "--index-url", sample_index.url])
    assert done.returncode == 0, done.stderr
    assert (target / "beta").is_dir() and (target / "alpha").is_dir()


# --- what it does not reach --------------------------------------------------------------


def test_the_server_port_dns_and_every_other_host_stay_out_of_reach(
    sample_index: PackageIndex, newest_python: Interpreter, server_b: Listener
) -> None:
    policy = indexes_box(newest_python, sample_index)
    done = run(policy, [newest_python.path, "-c", ATTEMPTS, str(server_b.port), str(PROXY_PORT)])
    assert done.returncode == 0, done.stderr
    attempts = json.loads(done.stdout)
    assert {
        name: ended for name, ended in attempts.items() if not ended.startswith("refused")
    } == {}
    assert "403" in attempts["urllib"] and "403" in attempts["CONNECT"]
    assert server_b.accepted == 0
    assert any(f"'127.0.0.1:{server_b.port}' is not an index" in line for line in done.refused)
    assert any(f"'localhost:{server_b.port}'" in line for line in done.refused)


# Python 3.6 syntax: a request through a CONNECT tunnel, as an https client would make it.
TUNNEL = r"""
import socket, sys
host = sys.argv[1]
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as conn:
    conn.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host)).encode())
    established = conn.recv(4096).split(b"\r\n")[0]
    conn.sendall(b"GET /simple/alpha/ HTTP/1.0\r\n\r\n")
    answer = b""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        answer += data
print(established.decode(), answer.split(b"\r\n")[0].decode(), b"alpha-1.0" in answer)
"""


FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).status)"


def test_a_node_behind_a_proxy_reaches_named_indexes_through_it(
    tmp_path: Path,
    sample_index: PackageIndex,
    newest_python: Interpreter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server's HTTP(S)_PROXY (with credentials) carries the box's allowed requests;
    an index named as loopback is on this node and skips it."""
    named = f"index.invalid:{sample_index.port}"  # resolves nowhere here: its proxy resolves it
    allowed = (("index.invalid", sample_index.port), ("127.0.0.1", sample_index.port))
    uv, requirements = find_uv_bin(), tmp_path / "requirements.in"
    requirements.write_text("beta\n")
    environment = {"UV_CACHE_DIR": "/tmp/cache", "UV_NO_CONFIG": "1"}
    policy = indexes_box(
        newest_python,
        sample_index,
        Path(uv),
        requirements,
        allowed=allowed,
        environment=environment,
    )
    compile_ = [uv, "pip", "compile", str(requirements), "--python", newest_python.path]
    with NodeProxy(sample_index.port) as node_proxy:
        url = f"http://codenv:s3cret@127.0.0.1:{node_proxy.port}"
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.setenv("HTTPS_PROXY", url)
        resolved = run(policy, [*compile_, "--index-url", f"http://{named}/simple/"])
        tunnel = run(policy, [newest_python.path, "-c", TUNNEL, named, str(PROXY_PORT)])
        heads = list(node_proxy.heads)
        direct = run(policy, [newest_python.path, "-c", FETCH, sample_index.url])
    assert resolved.returncode == 0, resolved.stderr
    assert "beta==2.0" in resolved.stdout
    assert tunnel.stdout.strip() == "HTTP/1.1 200 Connection established HTTP/1.0 200 OK True"
    assert any(head.startswith(f"GET http://{named}/simple/beta/ ") for head in heads)
    assert any(head.startswith(f"CONNECT {named} ") for head in heads)
    credentials = base64.b64encode(b"codenv:s3cret").decode()
    assert all(f"Proxy-Authorization: Basic {credentials}" in head for head in heads)
    assert direct.stdout.strip() == "200", direct.stderr
    assert node_proxy.heads == heads, "a loopback index is reached directly"


def test_a_box_over_the_connection_limit_is_answered_503(
    sample_index: PackageIndex, newest_python: Interpreter
) -> None:
    policy = indexes_box(newest_python, sample_index)
    code = [newest_python.path, "-c", CROWD, str(PROXY_PORT), str(MAX_CONNECTIONS)]
    done = run(policy, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HTTP/1.1 503 Service Unavailable"


# Opens a tunnel to the index, then outstays its box's time limit.
HOLD = r"""
import socket, sys, time
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
conn.sendall(("CONNECT %s HTTP/1.1\r\n\r\n" % sys.argv[2]).encode())
print(conn.recv(4096).split(b"\r\n")[0].decode(), flush=True)
time.sleep(30)
"""


def test_a_box_stopped_at_its_time_limit_takes_its_proxy_along(
    sample_index: PackageIndex, newest_python: Interpreter
) -> None:
    before = threads_and_fds()
    policy = indexes_box(newest_python, sample_index, limits=SandboxLimits(timeout_seconds=2.0))
    index = f"127.0.0.1:{sample_index.port}"
    done = run(policy, [newest_python.path, "-c", HOLD, str(PROXY_PORT), index])
    assert done.timed_out
    assert done.stdout.strip() == "HTTP/1.1 200 Connection established"
    assert settled_to(before)


# --- the rules, without a box ------------------------------------------------------------


def test_allowed_hosts_come_from_index_urls_with_pypi_files_added() -> None:
    urls = [
        "https://user:secret@PyPI.org/simple/",
        "http://127.0.0.1:5000/simple/",
        "https://[::1]:8443/simple",
        "file:///srv/wheels",
        "/srv/wheels",
    ]
    assert allowed_hosts_for(urls) == (
        ("pypi.org", 443),
        ("files.pythonhosted.org", 443),
        ("127.0.0.1", 5000),
        ("::1", 8443),
    )


def test_policy_sets_the_proxy_over_the_callers_variables() -> None:
    policy = SandboxPolicy(
        network=NetworkMode.INDEXES,
        allowed_hosts=(("Index.Example.", 443),),
        environment={"HTTPS_PROXY": "http://elsewhere:1", "NO_PROXY": "127.0.0.1"},
    )
    environment = policy.box_environment()
    assert environment["HTTPS_PROXY"] == environment["http_proxy"] == "http://127.0.0.1:3128"
    assert environment["NO_PROXY"] == environment["no_proxy"] == ""
    assert policy.allowed_hosts == (("index.example", 443),)
    assert "--unshare-net" in sandbox_argv(policy, ["true"])
    with pytest.raises(ValueError, match="allowed_hosts need"):
        SandboxPolicy(allowed_hosts=(("pypi.org", 443),))


def test_plain_http_requests_are_forwarded_one_per_connection_without_proxy_headers() -> None:
    head = (
        b"GET http://u:p@127.0.0.1:5000/simple/beta/?x=1 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n"
        b"Proxy-Authorization: Basic eDp5\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"
    )
    request = parse_request(head)
    assert request.target == ("127.0.0.1", 5000)
    assert request.head(origin_form=True) == (
        b"GET /simple/beta/?x=1 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nAccept: */*\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert parse_request(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n").target == ("::1", 443)
    bad_requests = (
        b"GET /simple/ HTTP/1.1\r\n\r\n",
        b"CONNECT pypi.org HTTP/1.1\r\n\r\n",
        b"POST http://127.0.0.1:5000/simple/ HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
    )
    for bad in bad_requests:
        with pytest.raises(Refused) as refused:
            parse_request(bad)
        assert refused.value.status == 400


def test_a_name_resolving_to_loopback_is_refused_unless_named_as_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unit test of the rule (a fake resolver): an index name that DNS or /etc/hosts points
    at 127.0.0.1 must not open the server's own ports to the box."""
    answers = {"rebound.example": "127.0.0.2", "mapped.example": "::ffff:127.0.0.1"}

    def fake_getaddrinfo(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        address = answers.get(host, "127.0.0.1")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for name in answers:
        with pytest.raises(Refused, match="resolves to a loopback address"):
            resolve_allowed((name, 443))
    assert resolve_allowed(("localhost", 5000)) == [("127.0.0.1", 5000)]
    assert resolve_allowed(("127.0.0.1", 5000)) == [("127.0.0.1", 5000)]
