"""Users, groups, passwords, password logins slowed down after failures, the first administrator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from codenv.domain.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from codenv.services import accounts
from codenv.services.actor import Actor, AuthenticationFailed, TooManyAttempts
from codenv.services.app import Codenv
from codenv.services.authentication import (
    LOGIN_FAILED,
    LoginPolicy,
    authenticate_password,
    load_actor,
)
from codenv.storage.models import UserRow, utcnow
from support.access import PASSWORD, opened, user_in
from support.databases import database_url  # noqa: F401

ADMIN = Actor.local_admin()
NO_INDEX = "http://127.0.0.1:9/simple"


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Codenv]:  # noqa: F811
    with opened(tmp_path / "home", database_url, NO_INDEX) as opened_app:
        yield opened_app


def test_only_administrators_manage_accounts(app: Codenv) -> None:
    creator = user_in(app, ADMIN, "creator", group="creators", may_create_envs=True)
    manager = user_in(app, ADMIN, "manager", group="managers", may_manage_all_envs=True)
    for actor in (creator, manager):
        for call in (
            lambda a=actor: accounts.create_user(app, a, "x", PASSWORD),
            lambda a=actor: accounts.list_users(app, a),
            lambda a=actor: accounts.create_group(app, a, "g", administrator=True),
            lambda a=actor: accounts.set_group_rights(app, a, "creators", administrator=True),
            lambda a=actor: accounts.add_member(app, a, "managers", a.name),
            lambda a=actor: accounts.remove_member(app, a, "creators", "creator"),
            lambda a=actor: accounts.disable_user(app, a, "manager"),
            lambda a=actor: accounts.delete_group(app, a, "creators"),
            lambda a=actor: accounts.list_groups(app, a),
        ):
            with pytest.raises(PermissionDenied, match="only an administrator"):
                call()
    assert accounts.group_names(app, creator) == ["creators", "managers"]
    assert [user.name for user in accounts.list_users(app, ADMIN)] == ["creator", "manager"]


def test_names_are_unique_case_insensitively_and_validated(app: Codenv) -> None:
    accounts.create_user(app, ADMIN, "Alice", PASSWORD, display_name="Alice A.")
    with pytest.raises(AlreadyExists) as taken:
        accounts.create_user(app, ADMIN, "alice", PASSWORD)
    assert taken.value.field == "name"
    for name in ("bad name", "", "-dash", "x" * 65, "é"):
        with pytest.raises(InvalidInput) as invalid:
            accounts.create_user(app, ADMIN, name, PASSWORD)
        assert invalid.value.field == "name"
    with pytest.raises(InvalidInput) as short:
        accounts.create_user(app, ADMIN, "bob", "short")
    assert short.value.field == "password"
    with pytest.raises(NotFound) as no_group:
        accounts.create_user(app, ADMIN, "bob", PASSWORD, groups=["nowhere"])
    assert no_group.value.field == "groups"
    accounts.create_group(app, ADMIN, "Team")
    with pytest.raises(AlreadyExists):
        accounts.create_group(app, ADMIN, "TEAM")
    assert [user.name for user in accounts.list_users(app, ADMIN)] == ["Alice"]
    assert accounts.get_user(app, ADMIN, "ALICE").display_name == "Alice A."


def test_memberships_give_rights(app: Codenv) -> None:
    accounts.create_group(app, ADMIN, "admins", administrator=True)
    accounts.create_group(app, ADMIN, "makers", may_create_envs=True, description="they make")
    user = accounts.create_user(app, ADMIN, "gina", PASSWORD, groups=["makers"])
    assert (user.groups, user.may_create, user.is_admin) == (["makers"], True, False)

    group = accounts.add_member(app, ADMIN, "Admins", "GINA")
    assert group.members == ["gina"]
    accounts.add_member(app, ADMIN, "admins", "gina")  # already a member: nothing changes
    gina = load_actor(app, user.id, source="10.0.0.1")
    assert gina.is_admin and gina.may_create and gina.may_manage_all
    assert gina.groups == frozenset({"admins", "makers"}) and gina.source == "10.0.0.1"

    accounts.create_user(app, ADMIN, "hank", PASSWORD, groups=["admins"])
    assert accounts.remove_member(app, ADMIN, "admins", "gina").members == ["hank"]
    gina = load_actor(app, user.id)
    assert not gina.is_admin and gina.may_create and not gina.may_manage_all
    listed = {group.name: group for group in accounts.list_groups(app, ADMIN)}
    assert listed["makers"].description == "they make" and listed["makers"].may_create_envs
    assert "password" not in str(accounts.get_user(app, ADMIN, "gina").to_dict()).replace(
        "has_password", ""
    )


def test_passwords_are_argon2_hashes(app: Codenv) -> None:
    accounts.create_user(app, ADMIN, "ivy", PASSWORD)
    with app.db.session() as session:
        stored = session.scalar(select(UserRow.password_hash).where(UserRow.name == "ivy"))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_changing_passwords(app: Codenv) -> None:
    jane = user_in(app, ADMIN, "jane")
    user_in(app, ADMIN, "kim")
    with pytest.raises(PermissionDenied) as wrong:
        accounts.set_password(app, jane, "jane", "a new password", current_password="nope-nope")
    assert wrong.value.field == "current_password"
    accounts.set_password(app, jane, "JANE", "a new password", current_password=PASSWORD)
    with pytest.raises(NotFound):
        accounts.set_password(app, jane, "kim", "hijacked!", current_password=PASSWORD)
    with pytest.raises(InvalidInput) as short:
        accounts.set_password(app, jane, "jane", "short", current_password="a new password")
    assert short.value.field == "new_password"

    assert authenticate_password(app, "jane", "a new password", "cli").name == "jane"
    with pytest.raises(AuthenticationFailed):
        authenticate_password(app, "jane", PASSWORD, "cli")
    accounts.set_password(app, ADMIN, "jane", "reset by admin")
    assert authenticate_password(app, "Jane", "reset by admin", "cli").user_id == jane.user_id


def test_failed_logins_never_tell_whether_the_user_exists(app: Codenv) -> None:
    user_in(app, ADMIN, "liam", group="makers", may_create_envs=True)
    user_in(app, ADMIN, "mia")
    accounts.disable_user(app, ADMIN, "mia")
    actor = authenticate_password(app, "LIAM", PASSWORD, "10.1.1.1")
    assert (actor.name, actor.may_create, actor.source) == ("liam", True, "10.1.1.1")
    messages = set()
    for name, password in (("liam", "wrong password"), ("nobody", PASSWORD), ("mia", PASSWORD)):
        with pytest.raises(AuthenticationFailed) as refused:
            authenticate_password(app, name, password, "10.1.1.1")
        assert refused.value.status == 401
        messages.add(refused.value.message)
    assert messages == {LOGIN_FAILED}


def test_failed_logins_are_slowed_down_per_user_and_source(app: Codenv) -> None:
    user_in(app, ADMIN, "noah")
    policy = LoginPolicy(free_attempts=3, base_delay_seconds=10, max_delay_seconds=15)
    start = utcnow()

    def login(password: str, seconds: float, source: str = "10.0.0.9", name: str = "noah") -> Actor:
        moment = start + timedelta(seconds=seconds)
        return authenticate_password(app, name, password, source, policy=policy, now=moment)

    for second in range(3):
        with pytest.raises(AuthenticationFailed):
            login("wrong password", second)
    # Blocked for 10 s after the third failure, even with the right password ...
    with pytest.raises(TooManyAttempts) as blocked:
        login(PASSWORD, 3)
    assert blocked.value.status == 429 and 1 <= blocked.value.retry_after <= 10
    assert "try again in" in blocked.value.message
    # ... but only for that source.
    assert login(PASSWORD, 3, source="10.0.0.10").name == "noah"
    # Each further failure doubles the wait, up to the maximum.
    with pytest.raises(AuthenticationFailed):
        login("wrong password", 13)
    with pytest.raises(TooManyAttempts) as longer:
        login(PASSWORD, 14)
    assert 10 < longer.value.retry_after <= 15
    # A success clears the count.
    assert login(PASSWORD, 30).name == "noah"
    with pytest.raises(AuthenticationFailed):
        login("wrong password", 31)
    assert login(PASSWORD, 32).name == "noah"
    # Unknown names are slowed down alike: nothing tells them apart.
    for second in range(3):
        with pytest.raises(AuthenticationFailed):
            login("whatever!", 40 + second, name="ghost")
    with pytest.raises(TooManyAttempts):
        login("whatever!", 43, name="ghost")


def test_a_disabled_user_is_logged_out_at_once(app: Codenv) -> None:
    olga = user_in(app, ADMIN, "olga")
    assert load_actor(app, olga.user_id or 0).name == "olga"
    accounts.disable_user(app, ADMIN, "olga")
    with pytest.raises(AuthenticationFailed):
        load_actor(app, olga.user_id or 0)
    assert not accounts.get_user(app, ADMIN, "olga").active
    accounts.update_user(app, ADMIN, "olga", active=True)
    assert load_actor(app, olga.user_id or 0).name == "olga"


def test_initial_administrator(app: Codenv) -> None:
    name, generated = accounts.ensure_initial_admin(app, None)
    assert name == "admin" and generated is not None and len(generated) >= 20
    actor = authenticate_password(app, "admin", generated, "cli")
    assert actor.is_admin and actor.groups == frozenset({"administrators"})
    assert accounts.ensure_initial_admin(app, None) == ("", None)
    assert accounts.ensure_initial_admin(app, "another password") == ("", None)


def test_initial_administrator_with_a_given_password(tmp_path: Path) -> None:
    with opened(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite'}", NO_INDEX) as app:
        with pytest.raises(InvalidInput):
            accounts.ensure_initial_admin(app, "short")
        assert accounts.ensure_initial_admin(app, "from the environment") == ("admin", None)
        assert authenticate_password(app, "admin", "from the environment", "cli").is_admin


def test_the_last_administrator_stays(app: Codenv) -> None:
    accounts.ensure_initial_admin(app, PASSWORD)
    for call in (
        lambda: accounts.disable_user(app, ADMIN, "admin"),
        lambda: accounts.remove_member(app, ADMIN, "administrators", "admin"),
        lambda: accounts.set_group_rights(app, ADMIN, "administrators", administrator=False),
        lambda: accounts.delete_group(app, ADMIN, "administrators"),
    ):
        with pytest.raises(Conflict, match="no active administrator"):
            call()
    assert authenticate_password(app, "admin", PASSWORD, "cli").is_admin
    accounts.create_user(app, ADMIN, "second", PASSWORD, groups=["administrators"])
    accounts.disable_user(app, ADMIN, "admin")
    assert not accounts.get_user(app, ADMIN, "admin").active
