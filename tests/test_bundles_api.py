"""Bundles over real HTTP: export from one server, import into another, through the API and
through the remote CLI (`--url`).

Two homes, two servers on loopback, the sample index. The importing server takes uploads of
at most CAP bytes. The export is answered as a download (no temporary file left under the
home); an import answers its report, each env with its import build; a user without the
update right cannot export; an upload over the limit, or a tampered bundle, creates nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import envs, permissions, revisions
from codenv.services.actor import Actor
from conftest import Node
from support.access import PASSWORD, user_in
from support.bundles import members, rewritten
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server, wait_for_build

API = "/api/v1"
CAP = 256 * 1024  # the importing server's upload limit: a sample bundle is far smaller


@dataclass
class Served:
    server: RunningServer
    client: httpx.Client  # the administrator, with an API token
    token: str


@pytest.fixture(scope="module")
def design(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("bundles-design") / "home"
    with running_server(home, sample_index.url) as server:
        admin = Actor.local_admin()
        user_in(server.app, admin, "plain")
        spec = EnvSpec(python=newest, requested="beta\n")
        created = envs.create_env(server.app, admin, "ml", spec)
        token = server.admin_token()
        with server.client(token) as client:
            assert wait_for_build(client, str(created.build_id))["status"] == "succeeded"
            yield Served(server, client, token)


@pytest.fixture(scope="module")
def importer(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("bundles-import") / "home"
    environ = {"CODENV_MAX_BUNDLE_BYTES": str(CAP)}
    with running_server(home, sample_index.url, environ) as server:
        token = server.admin_token()
        with server.client(token) as client:
            yield Served(server, client, token)


@pytest.fixture(scope="module")
def bundle(design: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Env "ml" of the design server with its wheels, downloaded through the API."""
    body = {"envs": ["ml"], "with_wheels": True}
    response = design.client.post(f"{API}/bundles/export", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    disposition = response.headers["content-disposition"]
    assert disposition == 'attachment; filename="ml.codenv.tar"'
    assert int(response.headers["content-length"]) == len(response.content)
    target = tmp_path_factory.mktemp("bundles") / "ml.codenv.tar"
    target.write_bytes(response.content)
    return target


def upload(client: httpx.Client, path: Path, **params: object) -> httpx.Response:
    with path.open("rb") as handle:
        files = {"file": (path.name, handle, "application/x-tar")}
        return client.post(f"{API}/bundles/import", params=params, files=files)


def installed(server: RunningServer, name: str) -> list[tuple[str, str]]:
    _, packages = revisions.installed_packages(server.app, Actor.local_admin(), name)
    return sorted((p["name"], p["version"]) for p in packages)


def env_names(server: RunningServer) -> list[str]:
    return [env.name for env in envs.list_envs(server.app, Actor.local_admin())]


def leftovers(server: RunningServer) -> list[Path]:
    """What an export or an import left under the home's working directories."""
    settings = server.app.settings
    found = list(settings.builds_dir.glob("download-*")) + list(
        settings.builds_dir.glob("export-*")
    )
    return found + list(settings.imports_dir.glob("unpack-*"))


def test_export_then_import_over_http_installs_the_same_lock(
    design: Served, importer: Served, bundle: Path
) -> None:
    found = members(bundle)
    manifest = json.loads(found["manifest.json"])
    assert [env["name"] for env in manifest["envs"]] == ["ml"]
    assert any(name.startswith("envs/ml/wheels/beta-") for name in found)
    assert leftovers(design.server) == [], "the download removed its temporary file"

    response = upload(importer.client, bundle, offline=True)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["bundle"] == "ml.codenv.tar"
    (item,) = report["envs"]
    assert (item["env"], item["action"], item["created"]) == ("ml", "queued", True)
    assert set(item) == {"env", "action", "message", "build_id", "version", "created"}
    build = wait_for_build(importer.client, item["build_id"])
    assert build["status"] == "succeeded", build
    log = importer.client.get(f"{API}/builds/{item['build_id']}/log").text
    assert "installing the bundle's exact lock" in log
    assert installed(importer.server, "ml") == installed(design.server, "ml")
    assert ("beta", "2.0") in installed(importer.server, "ml")

    again = upload(importer.client, bundle).json()["envs"][0]
    assert (again["action"], again["version"], again["build_id"]) == ("already held", 1, None)
    assert leftovers(importer.server) == []


def test_import_options_as_name_and_modes(importer: Served, bundle: Path) -> None:
    dry = upload(importer.client, bundle, as_name="ml-copy", mode="DO_NOTHING")
    assert dry.status_code == 200, dry.text
    assert dry.json()["envs"][0]["action"] == "nothing done"
    missing = upload(importer.client, bundle, as_name="ml-other", mode="FAIL_IF_MISSING")
    assert missing.status_code == 404 and "FAIL_IF_MISSING" in missing.json()["error"]["message"]
    odd = upload(importer.client, bundle, mode="SOMETIMES")
    assert odd.status_code == 422 and odd.json()["error"]["field"] == "mode"
    bad_name = upload(importer.client, bundle, as_name="../x")
    assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "as_name"
    no_file = importer.client.post(f"{API}/bundles/import", data={"mode": "DO_NOTHING"})
    assert no_file.status_code == 422 and no_file.json()["error"]["field"] == "file"
    assert "ml-copy" not in env_names(importer.server)
    assert "ml-other" not in env_names(importer.server)


def test_export_needs_the_update_right(design: Served) -> None:
    plain = design.server.login("plain", PASSWORD)
    try:
        body = {"envs": ["ml"]}
        unseen = plain.post(f"{API}/bundles/export", json=body)
        assert unseen.status_code == 404 and unseen.json()["error"]["code"] == "not_found"
        permissions.set_permissions(
            design.server.app, Actor.local_admin(), "ml", usable_by_all=True
        )
        refused = plain.post(f"{API}/bundles/export", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "permission_denied"
        nothing = plain.post(f"{API}/bundles/export", json={"all": True})
        assert nothing.status_code == 404 and "no code env to export" in nothing.text
    finally:
        permissions.set_permissions(
            design.server.app, Actor.local_admin(), "ml", usable_by_all=False
        )
        plain.close()
    assert leftovers(design.server) == []
    with design.server.client() as anonymous:
        assert anonymous.post(f"{API}/bundles/export", json={"all": True}).status_code == 401
        files = {"file": ("x.tar", b"x", "application/x-tar")}
        assert anonymous.post(f"{API}/bundles/import", files=files).status_code == 401


def test_export_needs_envs_or_all(design: Served) -> None:
    for body in ({}, {"envs": ["ml"], "all": True}):
        answer = design.client.post(f"{API}/bundles/export", json=body)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "envs"
    several = design.client.post(f"{API}/bundles/export", json={"all": True, "revision": 1})
    assert several.status_code == 409 and several.json()["error"]["field"] == "revision"
    unknown = design.client.post(f"{API}/bundles/export", json={"envs": ["../nothing"]})
    assert unknown.status_code == 404
    assert (
        design.client.post(
            f"{API}/bundles/export", json={"envs": ["ml"], "revision": 9}
        ).status_code
        == 404
    )


def test_upload_over_the_limit_is_refused(importer: Served, tmp_path: Path) -> None:
    large = tmp_path / "large.codenv.tar"
    large.write_bytes(b"\0" * (CAP + 1024))
    before = env_names(importer.server)
    refused = upload(importer.client, large)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["field"] == "file" and "CODENV_MAX_BUNDLE_BYTES" in error["message"]
    assert env_names(importer.server) == before


def test_tampered_bundle_is_refused_naming_the_file(
    importer: Served, bundle: Path, tmp_path: Path
) -> None:
    member = "envs/ml/requirements.lock"
    data = bytearray(members(bundle)[member])
    data[len(data) // 2] ^= 1
    tampered = rewritten(bundle, tmp_path / "tampered.codenv.tar", {member: bytes(data)})
    before = env_names(importer.server)
    refused = upload(importer.client, tampered, as_name="tampered")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert member in error["message"] and "does not match" in error["message"]
    assert env_names(importer.server) == before
    assert not any(importer.server.app.settings.imports_dir.glob("*-*"))


def test_remote_cli_exports_and_imports_as_locally(
    design: Served, importer: Served, tmp_path: Path, sample_index: PackageIndex
) -> None:
    exporting = Node(
        tmp_path / "nowhere",
        sample_index.url,
        {"CODENV_URL": design.server.url, "CODENV_TOKEN": design.token},
    )
    out = tmp_path / "remote.codenv.tar"
    wrote = exporting.run("export", "ml", "--with-wheels", "-o", str(out), "--json")
    result = json.loads(wrote.stdout)
    assert result["path"] == str(out) and result["size_bytes"] == out.stat().st_size
    (env,) = result["envs"]
    assert (env["name"], env["revision"], env["with_wheels"]) == ("ml", 1, True)
    assert env["wheels"] == 2  # alpha and beta
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    told = exporting.run("export", "ml", "-o", str(tmp_path / "plain.codenv.tar")).stdout
    assert told.startswith(f"wrote {tmp_path / 'plain.codenv.tar'} (") and "ml (revision 1)" in told

    importing = Node(
        tmp_path / "nowhere",
        sample_index.url,
        {"CODENV_URL": importer.server.url, "CODENV_TOKEN": importer.token},
    )
    imported = importing.run("import", str(out), "--as", "ml-remote", "--offline")
    assert imported.stdout == "ml-remote: version 1 is active\n", imported.stderr
    assert installed(importer.server, "ml-remote") == installed(design.server, "ml")
    held = json.loads(importing.run("import", str(out), "--as", "ml-remote", "--json").stdout)
    assert held["envs"][0]["action"] == "already held"

    missing = exporting.run("export", "nothing", "-o", str(tmp_path / "x.tar"), check=False)
    assert missing.returncode == 3 and "nothing" in missing.stderr
    assert not (tmp_path / "x.tar").exists()
    broken = importing.run(
        "import",
        str(tmp_path / "plain.codenv.tar"),
        "--mode",
        "FAIL_IF_MISSING",
        "--as",
        "absent",
        check=False,
    )
    assert broken.returncode == 3 and "FAIL_IF_MISSING" in broken.stderr
    gone = importing.run("import", str(tmp_path / "gone.codenv.tar"), check=False)
    assert gone.returncode == 2 and "error [file]: no bundle file at" in gone.stderr
    assert not (tmp_path / "nowhere").exists(), "remote mode touched no local home"
