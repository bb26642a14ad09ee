"""Every input has a size limit, checked before it costs the server anything (real HTTP).

The server runs with small limits so that the tests send little: bodies 64 KiB
(CODENV_MAX_BODY_BYTES), uploads 1 MiB (CODENV_MAX_UPLOAD_BYTES), unpacked zips 2 MiB and 50
members, and a resources quota of 3 MiB per env. A body over its limit is answered 413 before
authentication and before it is read whole, whether its Content-Length says so or it arrives
in chunks; fields, paths, integers and zips over theirs are answered 4xx naming the field,
never 500, and nothing is written.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import envs, resources
from codenv.services.actor import Actor
from codenv.settings import load_settings
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
    session_csrf,
    wait_for_build,
)

KIB, MIB = 1024, 1024**2
BODY_LIMIT = 64 * KIB
UPLOAD_CAP = MIB
LIMITS = {
    "CODENV_MAX_BODY_BYTES": str(BODY_LIMIT),
    "CODENV_MAX_UPLOAD_BYTES": str(UPLOAD_CAP),
    "CODENV_MAX_UNZIP_BYTES": str(2 * MIB),
    "CODENV_MAX_ZIP_MEMBERS": "50",
    "CODENV_RESOURCES_QUOTA_BYTES": str(3 * MIB),
}
HUGE = 2**63  # one more than SQLite (and PostgreSQL's bigint) can hold
ENV = "limits"
API = "/api/v1"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("limits") / "home"
    with running_server(home, sample_index.url, LIMITS) as running:
        admin = Actor.local_admin()
        spec = EnvSpec(python=newest, install_core_packages=False)
        built = [envs.create_env(running.app, admin, name, spec) for name in (ENV, "quota")]
        with running.client(running.admin_token()) as client:
            for created in built:
                assert wait_for_build(client, created.build_id)["status"] == "succeeded"
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token()) as client:
        yield client


def listed(server: RunningServer, env: str = ENV, path: str = "") -> list[str]:
    return [e.path for e in resources.list_files(server.app, Actor.local_admin(), env, path)]


def refused(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    return str(error["message"])


class Counted:
    """A request body of `total` bytes, counting what the client managed to send."""

    def __init__(self, total: int) -> None:
        self.total, self.sent = total, 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * (256 * KIB)
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


# --- request bodies ----------------------------------------------------------------------


def test_the_default_body_limit_admits_a_spec_at_every_field_limit() -> None:
    from codenv.domain import limits
    from codenv.settings import DEFAULT_MAX_BODY_BYTES

    spec = {
        "name": "n" * 64,
        "python": "3.12",
        "requested": "r" * limits.MAX_REQUESTED_CHARS,
        "description": "d" * limits.MAX_DESCRIPTION_CHARS,
        "resources_init_script": "s" * limits.MAX_SCRIPT_CHARS,
        "install_options": ["o" * limits.MAX_OPTION_CHARS] * limits.MAX_OPTIONS,
    }
    assert len(json.dumps(spec).encode()) < DEFAULT_MAX_BODY_BYTES
    assert load_settings(Path("/nonexistent"), {}).max_body_bytes == DEFAULT_MAX_BODY_BYTES


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_anonymous_body_over_the_limit_is_refused_before_it_is_read(
    server: RunningServer, declared: bool
) -> None:
    body = Counted(64 * MIB)
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(body.total)
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        response = anonymous.post(f"{API}/envs", content=iter(body), headers=headers)
    message = refused(response, 413, "body")
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "64 KiB" in message and "CODENV_MAX_BODY_BYTES" in message
    assert body.sent < 16 * MIB, f"the server read {body.sent} bytes"


def test_a_console_form_over_the_limit_gets_an_error_page(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        response = browser.post("/login", data={"name": "admin", "password": "x" * BODY_LIMIT})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "64 KiB" in response.text and 'class="error"' in response.text


def test_uploads_have_the_upload_cap_and_nothing_else_has(
    server: RunningServer, admin: httpx.Client
) -> None:
    fits = admin.put(f"{API}/envs/{ENV}/resources/files/fits.bin", content=b"f" * (UPLOAD_CAP // 2))
    assert fits.status_code == 200, fits.text
    big = admin.put(f"{API}/envs/{ENV}/resources/files/big.bin", content=b"b" * 2 * UPLOAD_CAP)
    message = refused(big, 413, "file")
    assert "1 MiB" in message and "CODENV_MAX_UPLOAD_BYTES" in message
    chunked = admin.put(f"{API}/envs/{ENV}/resources/files/big.bin", content=iter(Counted(4 * MIB)))
    refused(chunked, 413, "file")
    # A spec body as large as the upload was is no upload.
    spec = admin.patch(f"{API}/envs/{ENV}/spec", json={"description": "d" * (UPLOAD_CAP // 2)})
    refused(spec, 413, "body")
    assert "fits.bin" in listed(server) and "big.bin" not in listed(server)


def test_a_console_upload_over_the_cap_gets_an_error_page(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    with closing(client):
        response = client.post(
            f"/envs/{ENV}/resources/upload",
            data={"csrf": session_csrf(client)},
            files={"file": ("huge.bin", b"h" * 2 * UPLOAD_CAP, "application/octet-stream")},
        )
    assert response.status_code == 413 and "1 MiB" in response.text
    assert "huge.bin" not in listed(server)


def test_every_response_says_nosniff(server: RunningServer, admin: httpx.Client) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        answers = [
            anonymous.get(f"{API}/me"),
            anonymous.get("/login"),
            anonymous.get("/openapi.json"),
            anonymous.get("/no-such-page"),
            admin.get(f"{API}/envs"),
            admin.get(f"{API}/envs/no-such-env"),
        ]
    for answer in answers:
        assert answer.headers.get("x-content-type-options") == "nosniff", answer.url


# --- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"description": "d" * 10_001}, "description"),
        ({"python": "3." + "1" * 40}, "python"),
        ({"install_options": ["--pre"] * 101}, "install_options"),
        ({"install_options": ["--index-url", "https://h/" + "p" * 5000]}, "install_options"),
        ({"venv_options": ["--system-site-packages"] * 101}, "venv_options"),
        ({"add_sets": ["s"] * 101}, "add_sets"),
    ],
)
def test_spec_fields_over_their_limit_are_refused_by_name(
    admin: httpx.Client, change: dict[str, object], field: str
) -> None:
    response = admin.patch(f"{API}/envs/{ENV}/spec", json=change)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].partition(".")[0] == field  # or an item of it


def test_names_over_their_limit_are_refused_by_name(admin: httpx.Client, newest: str) -> None:
    too_long = "n" * 65
    refused(admin.post(f"{API}/envs", json={"name": too_long, "python": newest}), 422, "name")
    refused(admin.post(f"{API}/users", json={"name": too_long, "password": "p" * 12}), 422, "name")
    refused(admin.post(f"{API}/groups", json={"name": too_long}), 422, "name")


def test_service_limits_hold_without_the_api(server: RunningServer, newest: str) -> None:
    from codenv.domain import limits
    from codenv.domain.errors import InvalidSpec
    from codenv.domain.spec import SpecChanges

    admin = Actor.local_admin()
    for change, field in (
        (SpecChanges(requested="r\n" * limits.MAX_REQUESTED_CHARS), "requested"),
        (
            SpecChanges(resources_init_script="#" * (limits.MAX_SCRIPT_CHARS + 1)),
            "resources_init_script",
        ),
        (SpecChanges(add_sets=("s",) * (limits.MAX_SETS + 1)), "sets"),
    ):
        with pytest.raises(InvalidSpec) as caught:
            envs.save_spec(server.app, admin, ENV, change)
        assert caught.value.field == field


# --- integers the database cannot hold -----------------------------------------------------


def test_integers_too_large_for_the_database_are_4xx(
    server: RunningServer, admin: httpx.Client
) -> None:
    answers = {
        "installed": admin.get(f"{API}/envs/{ENV}/installed", params={"revision": HUGE}),
        "rollback": admin.post(f"{API}/envs/{ENV}/rollback", json={"revision": HUGE}),
        "token": admin.delete(f"{API}/tokens/{HUGE}"),
        "request": admin.get(f"{API}/requests/{HUGE}"),
        "approve": admin.post(f"{API}/requests/{HUGE}/approve"),
        "reject": admin.post(f"{API}/requests/{HUGE}/reject", json={"reason": "no"}),
        "audit": admin.get(f"{API}/audit", params={"offset": HUGE}),
        "log": admin.get(f"{API}/builds/nope/log", params={"offset": HUGE}),
    }
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert all(status in (404, 422) for status in statuses.values()), statuses
    console = console_login(server, "admin", ADMIN_PASSWORD)
    with closing(console):
        pages = {
            "revoke": post_form(console, f"/admin/tokens/{HUGE}/revoke", {}),
            "approve": post_form(console, f"/admin/requests/{HUGE}/approve", {}),
            "rollback": post_form(console, f"/envs/{ENV}/rollback", {"revision": str(HUGE)}),
        }
    statuses = {what: page.status_code for what, page in pages.items()}
    assert all(status in (404, 422) for status in statuses.values()), statuses


# --- resources paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["a%00b.txt", "n" * 256, "d/" * 33 + "f", ("p" * 200 + "/") * 21 + "f"],
    ids=["nul", "long-name", "deep", "long-path"],
)
def test_bad_upload_paths_are_refused_by_name_before_the_disk(
    server: RunningServer, admin: httpx.Client, path: str
) -> None:
    response = admin.put(f"{API}/envs/{ENV}/resources/files/{path}", content=b"x")
    refused(response, 422, "path")
    query = {"path": path.replace("%00", "\x00")}
    assert admin.get(f"{API}/envs/{ENV}/resources/files", params=query).status_code == 422
    assert not {"a", "d", "p" * 200, "n" * 256} & set(listed(server))


def test_a_thousand_levels_deep_is_refused_at_once(
    server: RunningServer, admin: httpx.Client
) -> None:
    started = time.monotonic()
    response = admin.put(f"{API}/envs/{ENV}/resources/files/{'d/' * 1000}f", content=b"x")
    assert time.monotonic() - started < 2
    refused(response, 422, "path")
    assert "d" not in listed(server)


def test_a_console_upload_with_a_bad_file_name_is_refused_in_place(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    with closing(client):
        for name in (b"n" * 256, b"a\x00b"):  # sent raw: httpx would escape the NUL
            body = (
                b'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
                + session_csrf(client).encode()
                + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="'
                + name
                + b'"\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n'
            )
            response = client.post(
                f"/envs/{ENV}/resources/upload",
                content=body,
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            )
            assert response.status_code == 422, response.text
            assert 'class="error"' in response.text and "resources path" in response.text


# --- zips and the quota --------------------------------------------------------------------


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def unzip(admin: httpx.Client, env: str, dest: str, body: bytes) -> httpx.Response:
    return admin.put(
        f"{API}/envs/{env}/resources/files/{dest}", content=body, params={"unzip": True}
    )


def test_a_zip_with_too_many_members_is_refused_whole(
    server: RunningServer, admin: httpx.Client
) -> None:
    body = zipped({f"m-{number}.txt": b"m" for number in range(51)})
    message = refused(unzip(admin, ENV, "many", body), 422, "archive")
    assert "50" in message and "CODENV_MAX_ZIP_MEMBERS" in message
    assert "many" not in listed(server)
    assert unzip(admin, ENV, "fifty", zipped({f"m-{n}.txt": b"m" for n in range(50)})).is_success


def test_a_zip_bomb_is_refused_before_anything_is_written(
    server: RunningServer, admin: httpx.Client
) -> None:
    body = zipped({"ok.txt": b"ok", "zeros.bin": bytes(3 * MIB)})
    assert len(body) < 20 * KIB
    message = refused(unzip(admin, ENV, "bomb", body), 422, "archive")
    assert "2 MiB" in message and "CODENV_MAX_UNZIP_BYTES" in message
    assert "bomb" not in listed(server)


def test_the_resources_quota_holds_for_files_and_zips(
    server: RunningServer, admin: httpx.Client
) -> None:
    part = b"q" * (900 * KIB)
    for number in range(3):
        put = admin.put(f"{API}/envs/quota/resources/files/part-{number}.bin", content=part)
        assert put.status_code == 200, put.text
    message = refused(
        admin.put(f"{API}/envs/quota/resources/files/one-more.bin", content=part), 422, "file"
    )
    assert "3 MiB" in message and "CODENV_RESOURCES_QUOTA_BYTES" in message
    message = refused(unzip(admin, "quota", "z", zipped({"z.bin": part})), 422, "archive")
    assert "CODENV_RESOURCES_QUOTA_BYTES" in message
    assert sorted(listed(server, "quota")) == [f"part-{n}.bin" for n in range(3)]
    # Other envs have quotas of their own.
    assert admin.put(f"{API}/envs/{ENV}/resources/files/other.bin", content=part).is_success
