"""Credentials in a spec are used, never shown: not to its users, not even to those who may
change it, and not lost when they save it back masked.

An owner's env carries an index URL with a password in its install options, a requirement line
with a token in its URL, and an init script holding a password. A user with the update right
and one with the use right read the env (services, API, console): every credential is `***`.
When the update user saves the spec back as shown (with a line added around the masked ones),
the stored credentials are kept. The init script is not shown at all to use-only users.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from codenv.domain.errors import PermissionDenied
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.services import envs, permissions, resources
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.storage import queries
from support.access import PASSWORD, opened, user_in
from support.pkgindex import PackageIndex
from support.server import RunningServer, console_login, post_form, running_server, wait_for_build

ADMIN = Actor.local_admin()
SECRETS = ("index-password", "TOKEN-8f3a", "script-password")
INDEX = "https://builder:index-password@pypi.example.invalid/simple"
GIT_LINE = "private-lib @ git+https://oauth2:TOKEN-8f3a@git.example.invalid/team/lib.git"
REQUESTED = f"alpha\n{GIT_LINE}\n"
SCRIPT = 'URL = "https://bot:script-password@data.example.invalid/model.bin"\nprint(URL)\n'
OPTIONS = ("--index-url", INDEX, "--pre")


def shows_no_secret(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def stored(app: Codenv, name: str) -> EnvSpec:
    with app.db.session() as session:
        return EnvSpec.from_dict(queries.require_env(session, name).spec)


def add_secrets(app: Codenv, name: str) -> None:
    envs.save_spec(
        app,
        ADMIN,
        name,
        SpecChanges(requested=REQUESTED, install_options=OPTIONS, resources_init_script=SCRIPT),
    )


# --- the services ---------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path, sample_index: PackageIndex) -> Iterator[Codenv]:
    with opened(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite'}", sample_index.url) as made:
        yield made


@pytest.fixture
def people(app: Codenv, newest: str) -> dict[str, Actor]:
    owner = user_in(app, ADMIN, "owner", group="creators", may_create_envs=True)
    updater = user_in(app, ADMIN, "updater", group="updaters")
    reader = user_in(app, ADMIN, "reader", group="readers")
    envs.create_env(app, owner, "secret-env", EnvSpec(python=newest))
    add_secrets(app, "secret-env")
    grants = [("updaters", "update"), ("readers", "use")]
    permissions.set_permissions(app, owner, "secret-env", grants=grants)
    return {"owner": owner, "updater": updater, "reader": reader}


def test_every_spec_a_service_returns_is_masked(app: Codenv, people: dict[str, Actor]) -> None:
    for who in ("owner", "updater", "reader"):
        shown = envs.show_env(app, people[who], "secret-env").to_dict()
        assert shows_no_secret(str(shown)), who
        assert "oauth2:***@" in shown["spec"]["requested"]
        assert "builder:***@" in " ".join(shown["spec"]["install_options"])
    listed = envs.list_envs(app, people["reader"])
    assert shows_no_secret(str([info.to_dict() for info in listed]))
    saved = envs.save_spec(app, people["updater"], "secret-env", SpecChanges(description="new"))
    assert shows_no_secret(str(saved.to_dict()))
    script = resources.get_init_script(app, people["updater"], "secret-env")
    assert shows_no_secret(str(script.to_dict())) and "bot:***@" in script.script


def test_saving_back_what_was_shown_keeps_the_stored_credentials(
    app: Codenv, people: dict[str, Actor]
) -> None:
    updater = people["updater"]
    shown = envs.show_env(app, updater, "secret-env").spec
    changes = SpecChanges(
        requested="# edited around the masked line\n" + shown["requested"] + "beta\n",
        install_options=(*shown["install_options"], "--only-binary", ":all:"),
    )
    envs.save_spec(app, updater, "secret-env", changes)
    script = resources.get_init_script(app, updater, "secret-env").script
    resources.set_init_script(app, updater, "secret-env", script="import os\n" + script)
    kept = stored(app, "secret-env")
    assert GIT_LINE in kept.requested.splitlines() and "beta" in kept.requested
    assert kept.requested.startswith("# edited around the masked line\n")
    assert kept.install_options == (*OPTIONS, "--only-binary", ":all:")
    assert kept.resources_init_script == "import os\n" + SCRIPT


def test_a_masked_line_that_was_changed_does_not_get_the_secret(
    app: Codenv, people: dict[str, Actor]
) -> None:
    moved = GIT_LINE.replace("TOKEN-8f3a", "***").replace("team/lib", "other/lib")
    envs.save_spec(app, people["updater"], "secret-env", SpecChanges(requested=moved + "\n"))
    assert shows_no_secret(stored(app, "secret-env").requested)


def test_use_only_users_cannot_read_the_init_script(app: Codenv, people: dict[str, Actor]) -> None:
    with pytest.raises(PermissionDenied):
        resources.get_init_script(app, people["reader"], "secret-env")
    assert resources.get_init_script(app, people["updater"], "secret-env").script


# --- over HTTP: the API and the console -----------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("masking") / "home"
    with running_server(home, sample_index.url) as running:
        user_in(running.app, ADMIN, "updater", group="updaters")
        user_in(running.app, ADMIN, "reader", group="readers")
        spec = EnvSpec(python=newest, install_core_packages=False)
        created = envs.create_env(running.app, ADMIN, "shared", spec)
        with running.client(running.admin_token()) as admin:
            assert wait_for_build(admin, created.build_id)["status"] == "succeeded"
        grants = [("updaters", "update"), ("readers", "use")]
        permissions.set_permissions(running.app, ADMIN, "shared", grants=grants)
        # The core package is what lets an env have an init script.
        envs.save_spec(running.app, ADMIN, "shared", SpecChanges(install_core_packages=True))
        add_secrets(running.app, "shared")
        yield running


def test_the_api_masks_specs_and_keeps_credentials_saved_back(server: RunningServer) -> None:
    updater = server.login("updater", PASSWORD)
    with closing(updater):
        shown = updater.get("/api/v1/envs/shared")
        assert shown.status_code == 200 and shows_no_secret(shown.text)
        spec = shown.json()["spec"]
        patched = updater.patch(
            "/api/v1/envs/shared/spec",
            json={
                "requested": spec["requested"] + "beta\n",
                "install_options": spec["install_options"],
            },
        )
        assert patched.status_code == 200, patched.text
        assert shows_no_secret(patched.text) and "builder:***@" in patched.text
        script = updater.get("/api/v1/envs/shared/resources/script")
        assert script.status_code == 200 and shows_no_secret(script.text)
        put = updater.put("/api/v1/envs/shared/resources/script", json=script.json())
        assert put.status_code == 200 and shows_no_secret(put.text)
    kept = stored(server.app, "shared")
    assert GIT_LINE in kept.requested and kept.install_options == OPTIONS
    assert kept.resources_init_script == SCRIPT


def test_the_api_refuses_the_init_script_to_use_only_users(server: RunningServer) -> None:
    reader = server.login("reader", PASSWORD)
    with closing(reader):
        assert reader.get("/api/v1/envs/shared/resources/script").status_code == 403
        shown = reader.get("/api/v1/envs/shared")
        assert shown.status_code == 200 and shows_no_secret(shown.text)


def test_the_console_masks_and_keeps_credentials(server: RunningServer) -> None:
    updater = console_login(server, "updater", PASSWORD)
    with closing(updater):
        page = updater.get("/envs/shared/packages")
        assert page.status_code == 200 and shows_no_secret(page.text)
        found = re.search(r'<textarea name="requested"[^>]*>(.*?)</textarea>', page.text, re.S)
        assert found and "oauth2:***@" in found.group(1)
        requested = found.group(1).replace("&#34;", '"').replace("&amp;", "&") + "gamma\n"
        saved = post_form(updater, "/envs/shared/packages", {"requested": requested})
        assert saved.status_code == 303, saved.text
        tab = updater.get("/envs/shared/resources")
        assert tab.status_code == 200 and shows_no_secret(tab.text) and "bot:***@" in tab.text
    kept = stored(server.app, "shared")
    assert GIT_LINE in kept.requested and "gamma" in kept.requested
    assert kept.resources_init_script == SCRIPT


def test_the_console_hides_the_init_script_from_use_only_users(server: RunningServer) -> None:
    reader = console_login(server, "reader", PASSWORD)
    with closing(reader):
        for page in ("/envs/shared", "/envs/shared/packages", "/envs/shared/resources"):
            shown = reader.get(page)
            assert shown.status_code == 200 and shows_no_secret(shown.text), page
        assert "data.example.invalid" not in reader.get("/envs/shared/resources").text
