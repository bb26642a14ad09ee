"""Reading and changing an env's permissions: owner, usable by all, group grants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codenv.domain.errors import InvalidInput, NotFound, PermissionDenied
from codenv.domain.spec import EnvSpec
from codenv.services import accounts, builds, envs, logs, permissions
from codenv.services.access_views import Grant
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor
from support.access import opened, user_in
from support.databases import database_url  # noqa: F401
from support.pkgindex import PackageIndex

ADMIN = Actor.local_admin()


@pytest.fixture
def app(
    tmp_path: Path,
    database_url: str,  # noqa: F811
    sample_index: PackageIndex,
) -> Iterator[Codenv]:
    with opened(tmp_path / "home", database_url, sample_index.url) as opened_app:
        yield opened_app


def _env(app: Codenv, creator: Actor, name: str, python: str) -> str:
    spec = EnvSpec(python=python, install_core_packages=False)
    return envs.create_env(app, creator, name, spec).build_id


def test_permissions_round_trip_and_owner_transfer(app: Codenv, newest: str) -> None:
    alice = user_in(app, ADMIN, "alice", group="creators", may_create_envs=True)
    bob = user_in(app, ADMIN, "bob", group="team")
    _env(app, alice, "demo", newest)

    shown = permissions.get_permissions(app, alice, "demo")
    assert (shown.owner, shown.usable_by_all, shown.grants) == ("alice", False, [])
    assert shown.caller_level == "manage_users"

    changed = permissions.set_permissions(
        app, alice, "DEMO", usable_by_all=True, grants=[("TEAM", "update")]
    )
    assert changed.grants == [Grant("team", "update")] and changed.usable_by_all
    assert permissions.get_permissions(app, bob, "demo").caller_level == "update"
    assert changed.to_dict()["grants"] == [{"group": "team", "level": "update"}]

    # Ownership moves: bob may now manage it; alice keeps only what everyone has.
    permissions.set_permissions(app, alice, "demo", owner="BOB", usable_by_all=False)
    assert permissions.get_permissions(app, bob, "demo").owner == "bob"
    assert permissions.get_permissions(app, bob, "demo").caller_level == "manage_users"
    with pytest.raises(NotFound):
        permissions.get_permissions(app, alice, "demo")
    assert envs.show_env(app, bob, "demo").owner == "bob"


@pytest.mark.parametrize(
    ("arguments", "field", "wording"),
    [
        ({"grants": [("nobody", "use")]}, "grants", "no group named 'nobody'"),
        ({"grants": [("team", "admin")]}, "grants", "unknown level 'admin'"),
        ({"grants": [("team", "use"), ("Team", "update")]}, "grants", "listed twice"),
        ({"owner": "ghost"}, "owner", "no user named 'ghost'"),
        ({"owner": "gone"}, "owner", "is disabled"),
    ],
)
def test_invalid_permissions_are_refused_whole(
    app: Codenv, newest: str, arguments: dict[str, object], field: str, wording: str
) -> None:
    user_in(app, ADMIN, "member", group="team")
    user_in(app, ADMIN, "gone")
    accounts.disable_user(app, ADMIN, "gone")
    _env(app, ADMIN, "demo", newest)
    permissions.set_permissions(app, ADMIN, "demo", grants=[("team", "use")])

    with pytest.raises(InvalidInput) as refused:
        permissions.set_permissions(app, ADMIN, "demo", usable_by_all=True, **arguments)
    assert refused.value.field == field and wording in refused.value.message
    kept = permissions.get_permissions(app, ADMIN, "demo")
    assert kept.grants == [Grant("team", "use")] and not kept.usable_by_all


def test_deleting_a_group_takes_its_grants_away(app: Codenv, newest: str) -> None:
    carol = user_in(app, ADMIN, "carol", group="readers")
    _env(app, ADMIN, "demo", newest)
    permissions.set_permissions(app, ADMIN, "demo", grants=[("readers", "use")])
    assert [env.name for env in envs.list_envs(app, carol)] == ["demo"]

    accounts.delete_group(app, ADMIN, "readers")
    carol = load_actor(app, carol.user_id or 0)
    assert carol.groups == frozenset()
    assert envs.list_envs(app, carol) == []
    assert permissions.get_permissions(app, ADMIN, "demo").grants == []


def test_global_rights_apply_at_the_next_authentication(app: Codenv, newest: str) -> None:
    dave = user_in(app, ADMIN, "dave", group="staff")
    spec = EnvSpec(python=newest, install_core_packages=False)
    with pytest.raises(PermissionDenied, match="may not create"):
        envs.create_env(app, dave, "mine", spec)
    accounts.set_group_rights(app, ADMIN, "staff", may_create_envs=True)
    dave = load_actor(app, dave.user_id or 0)
    assert dave.may_create and not dave.is_admin
    envs.create_env(app, dave, "mine", spec)
    # The creator owns it: may change, not delete.
    permissions.set_permissions(app, dave, "mine", usable_by_all=True)
    with pytest.raises(PermissionDenied, match="may delete"):
        envs.delete_env(app, dave, "mine", delete_resources=True)


def test_builds_and_logs_of_invisible_envs_do_not_exist(app: Codenv, newest: str) -> None:
    eve = user_in(app, ADMIN, "eve")
    build_id = _env(app, ADMIN, "secret", newest)
    text, offset = logs.read_log(app, ADMIN, build_id)
    assert "==>" in text and offset > 0
    for call in (
        lambda: builds.get_build(app, eve, build_id),
        lambda: logs.read_log(app, eve, build_id),
        lambda: builds.list_builds(app, eve, "secret"),
    ):
        with pytest.raises(NotFound):
            call()
    permissions.set_permissions(app, ADMIN, "secret", usable_by_all=True)
    assert builds.get_build(app, eve, build_id).status == "succeeded"
    assert logs.read_log(app, eve, build_id, offset) == ("", offset)


def test_builds_of_a_deleted_env_stay_visible_to_their_requester_only(
    app: Codenv, newest: str
) -> None:
    frank = user_in(app, ADMIN, "frank", group="makers", may_create_envs=True)
    other = user_in(app, ADMIN, "other")
    build_id = _env(app, frank, "short-lived", newest)
    envs.delete_env(app, ADMIN, "short-lived", delete_resources=True)
    assert builds.get_build(app, frank, build_id).env == "short-lived"
    assert builds.get_build(app, ADMIN, build_id).status == "succeeded"
    with pytest.raises(NotFound):
        builds.get_build(app, other, build_id)


# --- giving an env to another owner: its owner and those who manage all envs only ---
# A group granted manage_users may change grants and usable-by-all, but making itself (or
# anyone) the owner would take the env away from its owner: refused, and nothing changes.


@pytest.fixture
def transfer_people(app: Codenv, newest: str) -> dict[str, Actor]:
    owner = user_in(app, ADMIN, "owner", group="creators", may_create_envs=True)
    people = {
        "owner": owner,
        "grantee": user_in(app, ADMIN, "grantee", group="managers-of-demo"),
        "manager": user_in(app, ADMIN, "manager", group="all-envs", may_manage_all_envs=True),
        "other": user_in(app, ADMIN, "other"),
    }
    envs.create_env(app, owner, "demo", EnvSpec(python=newest, install_core_packages=False))
    permissions.set_permissions(app, owner, "demo", grants=[("managers-of-demo", "manage_users")])
    return people


def test_a_manage_users_grantee_cannot_take_or_give_the_env(
    app: Codenv, transfer_people: dict[str, Actor]
) -> None:
    grantee = transfer_people["grantee"]
    for new_owner in ("grantee", "other"):
        with pytest.raises(PermissionDenied) as refused:
            permissions.set_permissions(app, grantee, "demo", owner=new_owner, usable_by_all=True)
        assert refused.value.field == "owner"
    shown = permissions.get_permissions(app, transfer_people["owner"], "demo")
    assert (shown.owner, shown.usable_by_all) == ("owner", False)  # refused whole
    # What the grant is for still works.
    changed = permissions.set_permissions(app, grantee, "demo", usable_by_all=True)
    assert changed.usable_by_all and changed.owner == "owner"
    assert permissions.set_permissions(app, grantee, "demo", owner="OWNER").owner == "owner"


@pytest.mark.parametrize("giver", ["owner", "manager"])
def test_the_owner_and_those_who_manage_all_can_give_it(
    app: Codenv, transfer_people: dict[str, Actor], giver: str
) -> None:
    given = permissions.set_permissions(app, transfer_people[giver], "demo", owner="other")
    assert given.owner == "other"
