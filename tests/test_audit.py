"""The audit log: every change recorded (who, what, on what, from where), never a secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codenv.domain.errors import PermissionDenied
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.services import (
    accounts,
    builds,
    envs,
    interpreters,
    permissions,
    requests,
    resources,
    revisions,
    tokens,
)
from codenv.services.actor import Actor, AuthenticationFailed
from codenv.services.app import Codenv
from codenv.services.audit import list_audit, masked, record
from codenv.services.authentication import authenticate_password
from codenv.services.node_settings import set_requests_allowed
from support.access import PASSWORD, opened, user_in
from support.databases import database_url  # noqa: F401
from support.pkgindex import PackageIndex

ADMIN = Actor.local_admin()
URL_SECRET = "hunter2-url-secret"
SCRIPT_SECRET = "sk-script-secret-123"


def test_masked_details_hide_secret_keys_at_any_depth() -> None:
    details = {
        "password": "pw",
        "nested": {"api_key": "k", "Token": "t", "url": "https://u:p@h/"},
        "items": [{"secret": 1}, "https://x:y@z/"],
        "count": 3,
        "flag": None,
    }
    assert masked(details) == {
        "password": "***",
        "nested": {"api_key": "***", "Token": "***", "url": "https://u:***@h/"},
        "items": [{"secret": "***"}, "https://x:***@z/"],
        "count": 3,
        "flag": None,
    }


@pytest.fixture
def app(
    tmp_path: Path,
    database_url: str,  # noqa: F811
    sample_index: PackageIndex,
) -> Iterator[Codenv]:
    with opened(tmp_path / "home", database_url, sample_index.url) as opened_app:
        yield opened_app


def _story(app: Codenv, newest: str, tmp_path: Path) -> str:
    """Changes of every kind; returns the token secret that must never be logged."""
    boss = user_in(app, ADMIN, "boss", group="admins", administrator=True)
    user_in(app, ADMIN, "ann", group="team")
    ann = authenticate_password(app, "ann", PASSWORD, "198.51.100.7")
    with pytest.raises(AuthenticationFailed):
        authenticate_password(app, "ann", "not my password", "198.51.100.8")
    secret = tokens.create_token(app, ann, name="ci").secret
    tokens.revoke_token(app, boss, tokens.list_tokens(app, ann)[0].id)
    accounts.set_password(app, ann, "ann", "a brand new password", current_password=PASSWORD)
    accounts.set_group_rights(app, boss, "team", may_create_envs=True)

    spec = EnvSpec(python=newest, install_core_packages=False)
    envs.create_env(app, boss, "demo", EnvSpec(python=newest))
    envs.save_spec(app, boss, "demo", SpecChanges(add=(f"gamma @ https://u:{URL_SECRET}@h/g.tgz",)))
    envs.save_spec(app, boss, "demo", SpecChanges(remove=("gamma",), description="clean"))
    resources.set_init_script(
        app, boss, "demo", script=f"import os\nos.environ['KEY'] = '{SCRIPT_SECRET}'\n"
    )
    builds.request_update(app, boss, "demo")
    revisions.rollback(app, boss, "demo", 1)
    permissions.set_permissions(app, boss, "demo", grants=[("team", "use")], usable_by_all=True)
    upload = tmp_path / "model.bin"
    upload.write_bytes(b"weights")
    resources.put_files(app, boss, "demo", upload, "model.bin", unzip=False)
    resources.remove_file(app, boss, "demo", "model.bin")

    set_requests_allowed(app, boss, True)
    wanted = requests.submit_request(app, ann, "wanted", spec, "please")
    requests.approve_request(app, boss, wanted.id)
    refused = requests.submit_request(app, ann, "refused", spec)
    requests.reject_request(app, boss, refused.id, "no")
    envs.delete_env(app, boss, "wanted", delete_resources=True)
    return secret


def test_every_change_is_recorded_without_secrets(app: Codenv, newest: str, tmp_path: Path) -> None:
    secret = _story(app, newest, tmp_path)
    entries = list_audit(app, ADMIN, limit=1000)
    actions = [entry.action for entry in reversed(entries)]
    assert actions == [
        "group.create", "user.create", "group.create", "user.create",
        "login.succeeded", "login.failed",
        "token.create", "token.revoke", "user.password", "group.rights",
        "env.create", "env.save", "env.save", "env.save", "env.update", "env.rollback",
        "env.permissions", "env.resources.put", "env.resources.remove",
        "settings.update", "request.submit", "env.create", "request.approve",
        "request.submit", "request.reject", "env.delete",
    ]  # fmt: skip
    everything = json.dumps([entry.to_dict() for entry in entries])
    for hidden in (secret, PASSWORD, "a brand new password", "not my password"):
        assert hidden not in everything
    assert URL_SECRET not in everything and "https://u:***@h/g.tgz" in everything
    assert SCRIPT_SECRET not in everything

    by_action = {entry.action: entry for entry in reversed(entries)}  # the newest of each
    login = by_action["login.succeeded"]
    assert (login.actor, login.target, login.source) == ("ann", "ann", "198.51.100.7")
    failed = by_action["login.failed"]
    assert (failed.target, failed.source) == ("ann", "198.51.100.8")
    assert by_action["env.create"].details["owner"] == "ann"  # the approved request's
    assert by_action["env.permissions"].details == {
        "usable_by_all": True,
        "grants": [["team", "use"]],
    }
    assert by_action["token.create"].details["prefix"] == secret[:12]
    assert by_action["env.update"].actor == "boss" and by_action["env.update"].source == "test"
    assert by_action["env.rollback"].details == {"revision": 1}
    assert by_action["settings.update"].details == {"allowRequests": True}


def test_the_log_is_for_administrators_and_pages(app: Codenv) -> None:
    reader = user_in(app, ADMIN, "reader", group="managers", may_manage_all_envs=True)
    with pytest.raises(PermissionDenied):
        list_audit(app, reader)
    for number in range(5):
        record(app, ADMIN, f"test.{number}", f"t{number}", {"n": number})
    newest_first = [entry.action for entry in list_audit(app, ADMIN, limit=2, offset=1)]
    assert newest_first == ["test.3", "test.2"]
    assert len(list_audit(app, ADMIN, action="test.*")) == 5
    assert [e.target for e in list_audit(app, ADMIN, action="test.1")] == ["t1"]
    assert [e.details for e in list_audit(app, ADMIN, target="t4")] == [{"n": 4}]
    assert list_audit(app, ADMIN, action="test.0")[0].source == "cli"


def test_interpreters_and_settings_changes_are_recorded(app: Codenv) -> None:
    path = interpreters.discovery(app).found[-1].path
    interpreters.add_python(app, ADMIN, path)
    interpreters.remove_python(app, ADMIN, path)
    set_requests_allowed(app, ADMIN, False)
    entries = list_audit(app, ADMIN, limit=3)
    assert [(e.action, e.target) for e in entries] == [
        ("settings.update", "codeEnvsSettings"),
        ("interpreter.remove", path),
        ("interpreter.add", path),
    ]
