"""Uploads over real HTTP: blocking work stays off the event loop; one size cap for API and console.

The server runs with a 1 MiB upload cap (CODENV_MAX_UPLOAD_BYTES). A zip of thousands of small
files takes seconds to check and unpack; while the API unpacks it, a cheap route must keep
answering at once (before, the unpacking ran on the event loop and every other request waited
for it). A body over the cap is refused (413) by the API and with an error page by the console,
before it is read whole, and nothing of it is written.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import envs, resources
from codenv.services.actor import Actor
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    running_server,
    session_csrf,
    wait_for_build,
)

CAP = 1024**2
ZIP_MEMBERS = 3000
SLOW_ENOUGH = 1.5  # seconds the unpacking must take for the check below to mean something
QUICK = 1.0  # seconds a cheap request may take meanwhile (it takes milliseconds)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("uploads") / "home"
    environ = {"CODENV_MAX_UPLOAD_BYTES": str(CAP)}
    with running_server(home, sample_index.url, environ) as running:
        spec = EnvSpec(python=newest, install_core_packages=False)
        created = envs.create_env(running.app, Actor.local_admin(), "files", spec)
        with running.client(running.admin_token()) as admin:
            assert wait_for_build(admin, created.build_id)["status"] == "succeeded"
        yield running


def many_files(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            archive.writestr(f"part-{index % 40}/file-{index}.txt", "x")
    return buffer.getvalue()


def listed(server: RunningServer, path: str = "") -> list[str]:
    return [e.path for e in resources.list_files(server.app, Actor.local_admin(), "files", path)]


def test_cheap_requests_answer_while_a_big_zip_is_unpacked(server: RunningServer) -> None:
    token = server.admin_token()
    body = many_files(ZIP_MEMBERS)
    assert len(body) < CAP
    outcome: dict[str, float | int] = {}

    def upload() -> None:
        with server.client(token) as uploader:
            started = time.monotonic()
            response = uploader.put(
                "/api/v1/envs/files/resources/files/unpacked", content=body, params={"unzip": True}
            )
            outcome.update(status=response.status_code, seconds=time.monotonic() - started)

    latencies: list[float] = []
    with server.client(token) as cheap:
        assert cheap.get("/api/v1/me").status_code == 200
        slow = threading.Thread(target=upload)
        slow.start()
        while slow.is_alive():
            started = time.monotonic()
            assert cheap.get("/api/v1/me").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
        slow.join()
    print(f"unpacking {outcome['seconds']:.2f} s, slowest cheap request {max(latencies):.3f} s")
    assert outcome["status"] == 200
    assert outcome["seconds"] > SLOW_ENOUGH, outcome
    assert len(latencies) > 5 and max(latencies) < QUICK, (outcome, max(latencies))
    assert len(listed(server, "unpacked")) == 40


def test_the_api_refuses_a_body_over_the_cap(server: RunningServer) -> None:
    with server.client(server.admin_token()) as admin:
        response = admin.put("/api/v1/envs/files/resources/files/big.bin", content=b"x" * 2 * CAP)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("payload_too_large", "file")
    assert "1 MiB" in error["message"]
    assert "big.bin" not in listed(server)


def test_the_console_refuses_a_form_over_the_cap_with_an_error_page(server: RunningServer) -> None:
    client: httpx.Client = console_login(server, "admin", ADMIN_PASSWORD)
    try:
        response = client.post(
            "/envs/files/resources/upload",
            data={"csrf": session_csrf(client)},
            files={"file": ("big.bin", b"x" * 2 * CAP, "application/octet-stream")},
        )
        assert response.status_code == 413, response.text
        assert 'class="error"' in response.text and "1 MiB" in response.text
        small = client.post(
            "/envs/files/resources/upload",
            data={"csrf": session_csrf(client)},
            files={"file": ("small.txt", b"small", "text/plain")},
        )
        assert small.status_code == 303, small.text
    finally:
        client.close()
    assert "big.bin" not in listed(server) and "small.txt" in listed(server)


def test_downloads_are_attachments_and_leave_nothing_behind(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("notes\n")
    resources.put_files(server.app, Actor.local_admin(), "files", source, "notes.txt", unzip=False)
    before = set(Path("/tmp").glob("codenv-download-*"))
    with server.client(server.admin_token()) as admin:
        response = admin.get("/api/v1/envs/files/resources/content/notes.txt")
    assert response.status_code == 200 and response.content == b"notes\n"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    time.sleep(0.2)  # the directory is removed once the response is sent
    assert set(Path("/tmp").glob("codenv-download-*")) <= before
