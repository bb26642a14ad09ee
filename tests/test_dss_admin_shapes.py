"""The DSS admin translations (groups, users, general settings), without a server: what a
script's GET → edit → PUT round trip changes, and what codenv refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from codenv.api.dss_compat import admin_shapes as shapes
from codenv.api.dss_compat.errors import UNSUPPORTED_CODE, DssError
from codenv.domain.errors import InvalidInput
from codenv.services.access_views import GroupInfo, UserInfo


def group(**rights: bool) -> GroupInfo:
    return GroupInfo(
        id=1,
        name="Data-Team",
        description="analysts",
        administrator=rights.get("administrator", False),
        may_create_envs=rights.get("may_create_envs", False),
        may_manage_all_envs=rights.get("may_manage_all_envs", False),
        members=["alice"],
        created_at="2026-01-02T03:04:05.000+00:00",
    )


def user(groups: list[str] | None = None, active: bool = True) -> UserInfo:
    return UserInfo(
        id=2,
        name="alice",
        display_name="Alice",
        active=active,
        groups=groups if groups is not None else ["data-team"],
        is_admin=False,
        may_create=True,
        may_manage_all=False,
        has_password=True,
        created_at="2026-01-02T03:04:05.000+00:00",
    )


# --- groups --------------------------------------------------------------------------------


def test_group_definition_maps_the_three_rights_and_shows_the_others_false() -> None:
    shown = shapes.group_definition(group(may_create_envs=True))
    assert shown["name"] == "Data-Team" and shown["sourceType"] == "LOCAL"
    assert (shown["admin"], shown["mayCreateCodeEnvs"], shown["mayManageCodeEnvs"]) == (
        False,
        True,
        False,
    )
    assert shown["mayWriteSafeCode"] is False and shown["mayCreateProjects"] is False
    assert "versions" not in shown


def test_unchanged_group_round_trip_changes_nothing() -> None:
    current = group(may_create_envs=True)
    assert shapes.group_changes(current, shapes.group_definition(current)).empty


def test_toggling_a_right_changes_only_that_right() -> None:
    current = group()
    body = shapes.group_definition(current)
    body["mayCreateCodeEnvs"] = True
    body["mayManageCodeEnvs"] = False  # as it is: not a change
    changes = shapes.group_changes(current, body)
    assert changes.rights == {"may_create_envs": True} and changes.description is None


def test_dss_only_rights_and_ldap_mappings_are_accepted_and_ignored() -> None:
    current = group()
    body = shapes.group_definition(current)
    body.update(mayWriteUnsafeCode=True, mayCreateProjects=True, ldapGroupNames="cn=x")
    assert shapes.group_changes(current, body).empty


def test_description_change_and_case_insensitive_name() -> None:
    current = group()
    body = {**shapes.group_definition(current), "name": "data-team", "description": "new"}
    assert shapes.group_changes(current, body).description == "new"


@pytest.mark.parametrize(
    ("patch", "error", "field"),
    [
        ({"name": "other"}, InvalidInput, "name"),
        ({"admin": "yes"}, InvalidInput, "admin"),
        ({"sourceType": "LDAP"}, DssError, "sourceType"),
        ({"description": "x" * 513}, InvalidInput, "description"),
    ],
)
def test_bad_group_documents_are_refused(
    patch: dict[str, Any], error: type[Exception], field: str
) -> None:
    current = group()
    with pytest.raises(error) as raised:
        shapes.group_changes(current, {**shapes.group_definition(current), **patch})
    assert getattr(raised.value, "field", None) == field


def test_a_group_body_must_be_an_object() -> None:
    with pytest.raises(InvalidInput):
        shapes.group_changes(group(), ["not", "an", "object"])


def test_new_group_from_create_group_body() -> None:
    new = shapes.new_group({"name": "ml", "description": None, "sourceType": "LOCAL"})
    assert (new.name, new.description, new.rights) == ("ml", "", {})
    with pytest.raises(DssError) as raised:
        shapes.new_group({"name": "ml", "sourceType": "LDAP"})
    assert raised.value.dss_code == UNSUPPORTED_CODE
    with pytest.raises(InvalidInput):
        shapes.new_group({"description": "no name"})


# --- users ---------------------------------------------------------------------------------


def test_user_settings_carry_what_the_client_reads() -> None:
    shown = shapes.user_settings(user())
    assert shown["login"] == "alice" and shown["enabled"] is True
    assert shown["groups"] == ["data-team"] and shown["secrets"] == []
    assert shown["creationDate"] == 1767323045000
    assert shapes.user_info(user())["displayName"] == "Alice"


def test_unchanged_user_round_trip_changes_nothing() -> None:
    current = user()
    changes = shapes.user_changes(current, copy.deepcopy(shapes.user_settings(current)))
    assert changes == shapes.UserChanges()
    assert not changes.account


def test_user_edits_become_changes() -> None:
    current = user(["data-team", "old"])
    body = shapes.user_settings(current)
    body.update(enabled=False, displayName="A.", groups=["Data-Team", "new"], password="s3cret!!")
    body.update(email="a@example.com", userProfile="DESIGNER")  # ignored
    changes = shapes.user_changes(current, body)
    assert (changes.active, changes.display_name, changes.password) == (False, "A.", "s3cret!!")
    assert (changes.add_groups, changes.remove_groups) == (("new",), ("old",))


def test_user_secrets_and_other_sources_are_refused() -> None:
    body = shapes.user_settings(user())
    body["secrets"] = [{"name": "k", "value": "v", "secret": True}]
    with pytest.raises(DssError, match="no user secrets"):
        shapes.user_changes(user(), body)
    with pytest.raises(DssError, match="local users only"):
        shapes.new_user({"login": "bob", "sourceType": "LDAP"})
    with pytest.raises(InvalidInput, match="rename"):
        shapes.user_changes(user(), {"login": "bob"})


def test_new_user_from_create_user_body() -> None:
    new = shapes.new_user(
        {
            "login": "bob",
            "password": "pw-of-bob!",
            "displayName": "",
            "sourceType": "LOCAL",
            "groups": ["a", "a", "b"],
            "userProfile": "DATA_SCIENTIST",
            "email": None,
        }
    )
    assert (new.login, new.password, new.groups) == ("bob", "pw-of-bob!", ("a", "b"))


# --- general settings ----------------------------------------------------------------------

SECRET = "https://user:hunter2@repo.example/simple"
SHOWN = "https://user:***@repo.example/simple"


def settings() -> dict[str, Any]:
    return shapes.general_settings(["--index-url", SHOWN], [], False)


def changes(body: Any) -> shapes.SettingsChanges:
    return shapes.settings_changes(
        body, install_stored=["--index-url", SECRET], venv_stored=[], allow_requests=False
    )


def test_general_settings_shape() -> None:
    shown = settings()
    assert shown["codeEnvs"]["pipInstallExtraOptions"] == ["--index-url", SHOWN]
    assert shown["codeEnvs"]["condaCreateExtraOptions"] == []
    assert shown["codenv"] == {"allowCodeEnvRequests": False}


def test_masked_round_trip_is_no_change() -> None:
    assert changes(settings()).empty


def test_adding_an_option_keeps_the_masked_credential() -> None:
    body = settings()
    body["codeEnvs"]["pipInstallExtraOptions"].append("--pre")
    body["codeEnvs"]["virtualenvCreateExtraOptions"] = ["--system-site-packages"]
    body["codenv"]["allowCodeEnvRequests"] = True
    got = changes(body)
    assert got.install_options == ["--index-url", SECRET, "--pre"]
    assert got.venv_options == ["--system-site-packages"]
    assert got.allow_requests is True


def test_a_changed_masked_credential_is_refused() -> None:
    body = settings()
    body["codeEnvs"]["pipInstallExtraOptions"] = ["--index-url", SHOWN.replace("repo", "other")]
    with pytest.raises(InvalidInput, match=r"\*\*\*"):
        changes(body)


@pytest.mark.parametrize(
    ("part", "key", "value", "words"),
    [
        ("codeEnvs", "condaCreateExtraOptions", ["-c", "x"], "conda"),
        ("codeEnvs", "cranMirrorURL", "https://cran", "CRAN"),
        ("codeEnvs", "defaultPythonEnv", "ml", "default code env"),
        ("codeEnvs", "somethingNew", True, "no such setting"),
        (None, "impersonation", {"userRules": [1]}, "no such setting"),
    ],
)
def test_what_codenv_lacks_is_refused_when_set(
    part: str | None, key: str, value: Any, words: str
) -> None:
    body = settings()
    (body[part] if part else body)[key] = value
    with pytest.raises(DssError, match=words) as raised:
        changes(body)
    assert raised.value.status == 400 and raised.value.dss_code == UNSUPPORTED_CODE


def test_empty_unknown_parts_and_missing_parts_are_accepted() -> None:
    assert changes({"codeEnvs": {"cranMirrorURL": ""}, "impersonation": None}).empty
    assert changes({}).empty


def test_option_lists_must_be_texts() -> None:
    with pytest.raises(InvalidInput):
        changes({"codeEnvs": {"pipInstallExtraOptions": "--pre"}})
    with pytest.raises(InvalidInput):
        changes({"codeEnvs": {"pipInstallExtraOptions": ["x"] * 201}})
