"""Groups, users and general settings through the seed system's official client (`dataikuapi`
15.2.0) against a real `codenv serve`: administrators' scripts run unchanged, and what they
change is what codenv's services then enforce."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dataikuapi
import httpx
import pytest
from dataikuapi.utils import DataikuException

from codenv.domain.errors import PermissionDenied
from codenv.domain.spec import EnvSpec
from codenv.services import accounts, envs, node_settings
from codenv.services.actor import Actor
from codenv.services.authentication import load_actor
from support.dss import DOC_PREFIX, admin_token, dss_client, dss_server, user_token
from support.pkgindex import PackageIndex
from support.server import RunningServer, wait_for_build

ADMIN = Actor.local_admin()
INDEX = "https://reader:hunter2@repo.example/simple"


@dataclass
class World:
    server: RunningServer
    admin: dataikuapi.DSSClient
    bob: dataikuapi.DSSClient
    admin_token: str
    newest: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("dss-admin") / "home"
    with dss_server(home, sample_index.url, fake=True) as server:
        token = admin_token(server)
        bob = user_token(server, "bob", group="makers")
        yield World(
            server, dss_client(server.url, token), dss_client(server.url, bob), token, newest
        )


def bob_creates(w: World, name: str) -> str:
    """Bob creates an env through the services, as his rights stand now; the build id."""
    info = accounts.get_user(w.server.app, ADMIN, "bob")
    bob = load_actor(w.server.app, info.id, source="test")
    spec = EnvSpec(python=w.newest, install_core_packages=False)
    return envs.create_env(w.server.app, bob, name, spec).build_id


def test_groups_are_listed_with_their_code_env_rights(world: World) -> None:
    groups = {group["name"]: group for group in world.admin.list_groups()}
    assert groups["administrators"]["admin"] is True
    assert groups["makers"]["mayCreateCodeEnvs"] is False
    assert groups["makers"]["codenv"]["members"] == ["bob"]


def test_toggling_may_create_code_envs_gives_and_takes_the_right(world: World) -> None:
    with pytest.raises(PermissionDenied):
        bob_creates(world, "bob_before")
    group = world.admin.get_group("makers")
    definition = group.get_definition()
    definition["mayCreateCodeEnvs"] = True
    definition["mayWriteUnsafeCode"] = True  # a DSS right codenv lacks: accepted, ignored
    answer = group.set_definition(definition)
    assert answer["mayCreateCodeEnvs"] is True and answer["mayWriteUnsafeCode"] is False

    build = bob_creates(world, "bob_env")
    admin_http = httpx.Client(
        base_url=world.server.url, headers={"Authorization": f"Bearer {world.admin_token}"}
    )
    with admin_http:
        assert wait_for_build(admin_http, build)["status"] == "succeeded"

    definition = group.get_definition()
    definition["mayCreateCodeEnvs"] = False
    group.set_definition(definition)
    with pytest.raises(PermissionDenied):
        bob_creates(world, "bob_after")


def test_group_create_describe_and_delete(world: World) -> None:
    created = world.admin.create_group("dss-made", description="made by a script")
    definition = created.get_definition()
    assert definition["description"] == "made by a script"
    definition["description"] = "changed"
    definition["mayManageCodeEnvs"] = True
    created.set_definition(definition)
    shown = next(g for g in accounts.list_groups(world.server.app, ADMIN) if g.name == "dss-made")
    assert (shown.description, shown.may_manage_all_envs) == ("changed", True)
    with pytest.raises(DataikuException, match="already exists"):
        world.admin.create_group("dss-made")
    created.delete()
    assert "dss-made" not in accounts.group_names(world.server.app, ADMIN)
    with pytest.raises(DataikuException, match="NotFoundException: no group named"):
        created.get_definition()


def test_the_last_administrator_is_kept(world: World) -> None:
    group = world.admin.get_group("administrators")
    definition = group.get_definition()
    definition["admin"] = False
    with pytest.raises(DataikuException, match="no active administrator"):
        group.set_definition(definition)
    assert group.get_definition()["admin"] is True


def test_users_are_listed_and_their_settings_saved(world: World) -> None:
    logins = {user["login"] for user in world.admin.list_users()}
    assert {"admin", "bob"} <= logins
    world.admin.create_user("carol", "carol-password!", display_name="Carol", groups=["makers"])
    settings = world.admin.get_user("carol").get_settings()
    assert settings.get_raw()["groups"] == ["makers"] and settings.enabled is True
    settings.save()  # an unchanged round trip
    settings.get_raw()["displayName"] = "Carol C."
    settings.get_raw()["groups"] = []
    settings.enabled = False
    settings.save()
    carol = accounts.get_user(world.server.app, ADMIN, "carol")
    assert (carol.display_name, carol.groups, carol.active) == ("Carol C.", [], False)
    world.admin.get_user("carol").delete()
    assert "carol" not in {user["login"] for user in world.admin.list_users()}


def test_general_settings_code_envs_part_drives_the_node_settings(world: World) -> None:
    settings = world.admin.get_general_settings()
    code_envs = settings.get_raw()["codeEnvs"]
    code_envs["pipInstallExtraOptions"] = ["--index-url", INDEX, "--pre"]
    code_envs["virtualenvCreateExtraOptions"] = ["--system-site-packages"]
    settings.save()
    shown = node_settings.show_settings(world.server.app, ADMIN)
    masked = ["--index-url", "https://reader:***@repo.example/simple", "--pre"]
    assert shown["install_options"] == masked
    assert shown["venv_options"] == ["--system-site-packages"]

    again = world.admin.get_general_settings()
    assert again.get_raw()["codeEnvs"]["pipInstallExtraOptions"] == masked
    again.save()  # the masked credential round-trips: the stored one is kept
    stored = node_settings.code_envs_settings(world.server.app)["pipInstallExtraOptions"]
    assert stored == ["--index-url", INDEX, "--pre"]

    again.get_raw()["codeEnvs"]["condaInstallExtraOptions"] = ["-c", "conda-forge"]
    with pytest.raises(DataikuException, match="does not manage conda envs"):
        again.save()
    again.get_raw()["codeEnvs"]["condaInstallExtraOptions"] = []
    again.get_raw()["codeEnvs"]["pipInstallExtraOptions"] = ["--target", "/tmp"]
    with pytest.raises(DataikuException, match="not supported here"):
        again.save()
    assert node_settings.code_envs_settings(world.server.app)["pipInstallExtraOptions"] == stored


def test_a_non_admin_token_is_told_why(world: World) -> None:
    with pytest.raises(DataikuException, match="only an administrator may list groups"):
        world.bob.list_groups()
    with pytest.raises(DataikuException, match="only an administrator may read the node"):
        world.bob.get_general_settings()
    with pytest.raises(DataikuException, match="UnauthorizedException: only an administrator"):
        world.bob.list_users()
    definition = world.admin.get_group("makers").get_definition()
    definition["admin"] = True
    with pytest.raises(DataikuException, match="UnauthorizedException: only an administrator"):
        world.bob.get_group("makers").set_definition(definition)
    assert world.bob.get_own_user().get_settings().get_raw()["login"] == "bob"
    assert "makers" in {group.name for group in world.bob.list_groups_info()}


def test_the_doc_prefix_and_a_json_body_without_content_type(world: World) -> None:
    auth = httpx.BasicAuth("", world.admin_token)  # the token as password, as DSS's doc says
    with httpx.Client(base_url=world.server.url + DOC_PREFIX, auth=auth) as client:
        made = client.post("/admin/groups/", content=b'{"name": "raw-made"}')
        assert made.status_code == 200, made.text
        assert client.get("/admin/groups/raw-made").json()["sourceType"] == "LOCAL"
        bad = client.put("/admin/groups/raw-made", content=b'{"sourceType": "LDAP"}')
        assert bad.status_code == 400
        assert bad.json()["code"] == "ERR_CODEENV_UNSUPPORTED_OPERATION_FOR_ENV_TYPE"
        assert client.delete("/admin/groups/raw-made").status_code == 200
        matrix = client.get("/admin/authorization-matrix")
        assert matrix.status_code == 404
        assert matrix.json()["errorType"].endswith("NotFoundException")
        own_save = client.put("/current-user", content=b"{}")
        assert own_save.status_code == 405 and "not allowed" in own_save.json()["message"]
