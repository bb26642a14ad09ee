"""Brokers and `codenv worker` processes for tests of builds on workers.

* the brokers are the real ones on loopback: Redis (``127.0.0.1:6379``) and RabbitMQ
  (``127.0.0.1:5672``, guest/guest). Unreachable, the test is skipped, but in CI (``CI=true``),
  where a missing service is a failure. Each test has a queue of its own (``broker_queue``),
  removed afterwards with whatever the workers left in the broker under its names;
* each worker runs under a host name of its own, in a UTS namespace of its own
  (``unshare --uts``, as root), as a worker on another host would: the names it records on
  the builds it runs are its host's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from kombu import Connection

from support.databases import in_ci

BROKERS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
CONNECT_TIMEOUT = 3
# Sets this process's host name (in the UTS namespace `unshare` made), then becomes the
# command: the name and the command are arguments, never parsed by a shell.
HOST_LAUNCHER = (
    "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])"
)
READY_SECONDS = 60


@cache
def _broker_problem(url: str) -> str | None:
    try:
        with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # kombu raises each transport's own errors
        return f"the broker {Connection(url).as_uri()} is not reachable: {error}"
    return None


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the service is required)", pytrace=False)
    pytest.skip(reason)


def broker_url(kind: str) -> str:
    """The URL of the `kind` broker; skips (fails in CI) the test when it is unreachable."""
    url = BROKERS[kind]
    problem = _broker_problem(url)
    if problem is not None:
        _unavailable(problem)
    return url


def require_uts_namespaces() -> None:
    """Workers under host names of their own need root and `unshare` (util-linux)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        _unavailable("workers on host names of their own need root and unshare (util-linux)")


@contextmanager
def broker_queue(url: str) -> Iterator[str]:
    """A build queue name of this test's own; what the test left in the broker under its
    names (the queue, its messages, bindings, workers' mailboxes) is removed afterwards."""
    token = f"codenv-test-{uuid.uuid4().hex[:12]}"
    try:
        yield token
    finally:
        if url.startswith("redis"):
            _clean_redis(url, token)
        else:
            _clean_rabbitmq(url, token)


def _clean_redis(url: str, token: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{token}*"):
            client.delete(key)
        # Messages taken and not acknowledged (a killed worker's) wait in shared keys.
        for tag, message in client.hscan_iter("unacked"):
            if token.encode() in message:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


def _clean_rabbitmq(url: str, token: str) -> None:
    with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        connection.default_channel.queue_delete(token)


def host_name(label: str) -> str:
    """A host name no other test uses (broker mailboxes are named after it)."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


@dataclass
class Worker:
    """A `codenv worker` process under `host`; `output` holds what it has logged so far."""

    host: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return f"celery@{self.host}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if f"{self.name} ready." in line:
                self.ready.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} did not start:\n{self.log()}")

    def log(self) -> str:
        return "".join(self.output)

    def kill(self) -> None:
        """SIGKILL, to the worker and every process it started (its process group): a host
        that stops at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(host: str, environ: Mapping[str, str], *args: str, concurrency: int = 2) -> Worker:
    """`codenv worker` in a UTS namespace of its own, named `host`."""
    command = [sys.executable, "-m", "codenv", "worker", "--concurrency", str(concurrency), *args]
    process = subprocess.Popen(
        ["unshare", "--uts", "--", sys.executable, "-c", HOST_LAUNCHER, host, *command],
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    worker = Worker(host, process)
    threading.Thread(target=worker._read, daemon=True).start()
    return worker


@contextmanager
def running_workers(hosts: list[str], environ: Mapping[str, str]) -> Iterator[list[Worker]]:
    """One worker per host name, ready to take builds; stopped (or killed) afterwards."""
    workers = [start_worker(host, environ) for host in hosts]
    try:
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


class BrokerProxy:
    """A TCP relay on loopback to the broker at `url`, whose connections `cut` breaks: a
    broker connection lost (a network cut, a broker restart) to the clients given `url`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 0)
        self._server = socket.create_server(("127.0.0.1", 0))
        port = self._server.getsockname()[1]
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream, timeout=CONNECT_TIMEOUT)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=relay, args=(source, target), daemon=True).start()

    def cut(self) -> None:
        """Break every connection open now; new ones are relayed again."""
        with self._lock:
            broken, self._open = self._open, []
            self.cuts += 1
        for connection in broken:
            close_quietly(connection)

    def close(self) -> None:
        close_quietly(self._server)
        self.cut()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def relay(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    close_quietly(source)
    close_quietly(target)


def close_quietly(connection: socket.socket) -> None:
    with suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()
