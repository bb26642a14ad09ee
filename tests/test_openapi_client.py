"""The API's responses are typed: a client generated from docs/openapi.json by a well-known
generator (openapi-python-client) type-checks a script that uses it, and refuses one that reads
an attribute an env does not have; the generated client works against a live server; the
response types mirror the services' views key for key, so none is dropped on the way out."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from codenv.api import responses, responses_admin
from codenv.domain.spec import EnvSpec
from codenv.services import (
    access_views,
    bundle_import,
    containers,
    env_listing,
    envs,
    images,
    installed,
    kept_resources,
    node_info,
    sessions,
    views,
)
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PACKAGE = "codenv_client"

# A script a user of the generated client writes: log in, list envs (plain and paged), show
# one, read its builds. Every value it reads is typed.
GOOD = """
from codenv_client import AuthenticatedClient, Client
from codenv_client.api.envs import list_builds, list_envs, show_env
from codenv_client.api.session import login
from codenv_client.models import Build, Env, EnvPage, LoggedIn, LoginBody


def log_in(url: str, name: str, password: str) -> str:
    answer = login.sync(client=Client(base_url=url), body=LoginBody(name=name, password=password))
    assert isinstance(answer, LoggedIn)
    return answer.csrf_token


def names(client: AuthenticatedClient) -> list[str]:
    found = list_envs.sync(client=client)
    assert isinstance(found, list)
    return [env.name for env in found]


def first_page(client: AuthenticatedClient) -> tuple[list[str], str | None]:
    page = list_envs.sync(client=client, limit=10, owner="admin", status="ready")
    assert isinstance(page, EnvPage)
    return [env.owner for env in page.items], page.next_cursor


def show(client: AuthenticatedClient, name: str) -> tuple[str, int | None, bool]:
    env = show_env.sync(name, client=client)
    assert isinstance(env, Env)
    last: Build | None = env.last_build
    return env.spec.python, env.active_revision, last is not None and env.capabilities.may_update


def builds(client: AuthenticatedClient, name: str) -> list[tuple[str, float | None]]:
    found = list_builds.sync(name, client=client)
    assert isinstance(found, list)
    return [(build.status, build.duration_seconds) for build in found]
"""
# The same client, misused: mypy must refuse both lines.
BAD = """
from codenv_client import AuthenticatedClient
from codenv_client.api.envs import show_env
from codenv_client.models import Env


def wrong(client: AuthenticatedClient) -> int:
    env = show_env.sync("demo", client=client)
    assert isinstance(env, Env)
    print(env.nonexistent)
    return env.name
"""


def generate(into: Path) -> Path:
    """The client generated from the exported schema, offline, as package `codenv_client`."""
    package = into / PACKAGE
    subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "docs" / "openapi.json"),
            "--output-path",
            str(package),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        # Its post-hooks run ruff, found on PATH: the project's own.
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=120,
    )
    assert (package / "api" / "envs" / "list_envs.py").is_file()
    return package


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("client")
    generate(into)
    return into


def test_the_generated_client_is_typed(client_dir: Path) -> None:
    (client_dir / "good.py").write_text(textwrap.dedent(GOOD))
    (client_dir / "bad.py").write_text(textwrap.dedent(BAD))
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(client_dir / ".mypy_cache"),
            "--config-file",
            os.devnull,
            "good.py",
            "bad.py",
        ],
        check=False,
        cwd=client_dir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert not [line for line in errors if line.startswith("good.py")], checked.stdout
    assert any('"Env" has no attribute "nonexistent"' in line for line in errors), checked.stdout
    assert any(
        line.startswith("bad.py") and "Incompatible return value" in line for line in errors
    ), checked.stdout


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("client-server") / "home", sample_index.url) as s:
        yield s


def test_the_generated_client_talks_to_a_live_server(
    client_dir: Path, server: RunningServer
) -> None:
    sys.path.insert(0, str(client_dir))
    try:
        from codenv_client import AuthenticatedClient  # type: ignore[import-not-found]
        from codenv_client.api.accounts import (  # type: ignore[import-not-found]
            create_user,
            list_users,
        )
        from codenv_client.api.envs import list_envs  # type: ignore[import-not-found]
        from codenv_client.models import UserBody, UserPage  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(client_dir))
    client = AuthenticatedClient(base_url=server.url, token=server.admin_token())
    for name in ("ana", "anton", "bob"):
        create_user.sync(client=client, body=UserBody(name=name, password="a-long-password-1"))
    page = list_users.sync(client=client, limit=1, prefix="an")
    assert isinstance(page, UserPage)
    assert [user.name for user in page.items] == ["ana"]
    second = list_users.sync(client=client, limit=1, prefix="an", cursor=page.next_cursor)
    assert [user.name for user in second.items] == ["anton"]
    assert second.next_cursor is None
    assert list_envs.sync(client=client) == []


def test_answers_are_the_views_byte_for_byte(server: RunningServer) -> None:
    """Typing the responses changes no byte: the keys, their order, the values."""
    with server.client(server.admin_token()) as client:
        for path in ("/api/v1/users", "/api/v1/me", "/api/v1/node", "/api/v1/tokens"):
            answer = client.get(path)
            assert answer.status_code == 200
            again = json.dumps(answer.json(), ensure_ascii=False, separators=(",", ":"))
            assert answer.content == again.encode()


def _fields(view: type) -> list[str]:
    return [field.name for field in dataclasses.fields(view)]


MIRRORS: list[tuple[type, list[str]]] = [
    (responses.Build, _fields(views.BuildInfo)),
    (responses.Env, _fields(views.EnvInfo)),
    (responses.EnvSummary, _fields(env_listing.EnvSummary)),
    (responses.Capabilities, _fields(views.Capabilities)),
    (responses.UpdateResult, _fields(views.UpdateResult)),
    (responses.Revision, _fields(views.RevisionInfo)),
    (responses.Created, _fields(envs.Created)),
    (responses.Installed, _fields(installed.InstalledPackages)),
    (responses.PackagesDiff, _fields(installed.PackagesDiff)),
    (responses.Drift, _fields(installed.Drift)),
    (responses.PackageChange, _fields(installed.PackageChange)),
    (responses.Permissions, _fields(access_views.EnvPermissions)),
    (responses.Grant, _fields(access_views.Grant)),
    (responses.ImportedEnv, _fields(bundle_import.EnvImport)),
    (responses.ImportReport, _fields(bundle_import.ImportReport)),
    (responses.ContainerConfig, _fields(containers.ContainerConfigInfo)),
    (responses.Image, _fields(images.ImageInfo)),
    (responses.EnvImages, _fields(images.EnvImages)),
    (responses.Spec, list(EnvSpec(python="3.11").to_dict())),
    (responses_admin.User, _fields(access_views.UserInfo)),
    (responses_admin.Group, _fields(access_views.GroupInfo)),
    (responses_admin.Token, _fields(access_views.TokenInfo)),
    (responses_admin.NewToken, [*_fields(access_views.TokenInfo), "secret"]),
    (responses_admin.EnvRequest, _fields(access_views.RequestInfo)),
    (responses_admin.AuditEntry, _fields(access_views.AuditEntry)),
    (responses_admin.Session, _fields(sessions.SessionInfo)),
    (responses_admin.KeptResources, _fields(kept_resources.KeptResources)),
    (responses_admin.Node, _fields(node_info.NodeInfo)),
]


@pytest.mark.parametrize(("typed", "keys"), MIRRORS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_response_type_mirrors_its_view(typed: type, keys: list[str]) -> None:
    # In the same order: pydantic writes a TypedDict's keys in the order it declares them.
    assert list(typed.__annotations__) == keys


def test_a_key_the_type_lacks_fails_loudly_instead_of_being_dropped() -> None:
    build: dict[str, Any] = {
        "id": "b1",
        "env": "demo",
        "status": "queued",
        "step": "",
        "upgrade_all": False,
        "rebuild": False,
        "requested_by": "ana",
        "revision": None,
        "error": None,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_seconds": None,
        "kind": "update",
        "worker": None,
        "host": None,
    }
    adapter = TypeAdapter(responses.Build)
    assert (
        adapter.dump_json(adapter.validate_python(build))
        == json.dumps(build, separators=(",", ":")).encode()
    )
    with pytest.raises(ValidationError, match="extra_forbidden"):
        adapter.validate_python({**build, "line": 3})
    with pytest.raises(ValidationError):  # no silent conversion either
        adapter.validate_python({**build, "revision": "3"})


def test_list_parameters_page_and_are_bounded(server: RunningServer) -> None:
    with server.client(server.admin_token()) as client:
        assert client.get("/api/v1/envs").json() == []
        assert client.get("/api/v1/envs", params={"limit": 5}).json() == {
            "items": [],
            "next_cursor": None,
        }
        for params, field in (
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"cursor": "x" * 600}, "cursor"),
            ({"owner": "o" * 300}, "owner"),
        ):
            refused = client.get("/api/v1/envs", params=params)
            assert refused.status_code == 422, params
            assert refused.json()["error"]["field"] == field
        first = client.get("/api/v1/audit", params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        second = client.get("/api/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]})
        assert second.json()["items"][0]["id"] < first["items"][-1]["id"]
        older = client.get("/api/v1/audit", params={"limit": 2, "offset": 0}).json()
        assert [entry["id"] for entry in older] == [entry["id"] for entry in first["items"]]
        mine = client.get("/api/v1/requests", params={"mine": True, "limit": 1})
        assert mine.status_code == 200 and mine.json() == {"items": [], "next_cursor": None}
        foreign = client.get(
            "/api/v1/requests", params={"mine": True, "cursor": first["next_cursor"]}
        )
        assert foreign.status_code == 422 and foreign.json()["error"]["field"] == "cursor"
