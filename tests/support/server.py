"""The real codenv server (uvicorn, HTTP on loopback) for API tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from codenv.http.app import create_app
from codenv.services.accounts import ensure_initial_admin
from codenv.services.app import Codenv, open_codenv
from codenv.settings import load_settings

ADMIN_PASSWORD = "admin-password-for-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    app: Codenv
    pid: int | None = None  # `codenv serve`'s process, when the server runs as one

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def login(self, name: str, password: str) -> httpx.Client:
        """A browser-like client: session cookie plus the CSRF header on every request."""
        client = httpx.Client(base_url=self.url, timeout=120)
        response = client.post("/api/v1/session", json={"name": name, "password": password})
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    def admin_token(self) -> str:
        admin = self.login("admin", ADMIN_PASSWORD)
        try:
            response = admin.post("/api/v1/tokens", json={"name": "tests"})
            response.raise_for_status()
            return str(response.json()["secret"])
        finally:
            admin.close()


@contextmanager
def running_server(
    home: Path, index_url: str, environ: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """The server on `home`; `environ` adds CODENV_* settings."""
    seed = os.environ.get("CODENV_SEED_PACKAGES", "1")
    settings = load_settings(
        home, {"CODENV_INDEX_URL": index_url, "CODENV_SEED_PACKAGES": seed, **(environ or {})}
    )
    app = open_codenv(settings)
    ensure_initial_admin(app, ADMIN_PASSWORD)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, app),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=False,  # as `codenv serve` runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        app.close()


@contextmanager
def serving_process(
    home: Path, index_url: str, workers: int, environ: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """`codenv serve --workers N` as a user starts it (its own processes); `app` is this test
    process's own context on the same home, for arranging and checking."""
    variables = {
        **os.environ,
        "CODENV_HOME": str(home),
        "CODENV_INDEX_URL": index_url,
        "CODENV_SEED_PACKAGES": os.environ.get("CODENV_SEED_PACKAGES", "1"),
        "CODENV_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **(environ or {}),
    }
    port = free_port()
    command = [sys.executable, "-m", "codenv", "serve", "--port", str(port)]
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"serve-{port}.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)], env=variables, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(url, process)
        app = open_codenv(load_settings(home, variables))
        try:
            yield RunningServer(url, app, process.pid)
        finally:
            app.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"codenv serve exited with {process.returncode}"
        try:
            if httpx.get(url + "/login", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("codenv serve did not answer in 60 s")


def wait_for_build(client: httpx.Client, build_id: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = client.get(f"/api/v1/builds/{build_id}").json()
        if build["status"] in ("succeeded", "failed", "cancelled"):
            return dict(build)
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} did not finish in {timeout} s")


def console_login(server: RunningServer, name: str, password: str) -> httpx.Client:
    """A client logged in through the console's login form (with the form's CSRF token)."""
    client = httpx.Client(base_url=server.url, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf": token.group(1)}
    )
    assert response.status_code == 303, response.text
    return client


def session_csrf(client: httpx.Client) -> str:
    return client.cookies.get("codenv_csrf", "") or ""


def post_form(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """A console form POST carrying the session's CSRF token, as the pages' forms do."""
    return client.post(path, data={"csrf": session_csrf(client), **data})
