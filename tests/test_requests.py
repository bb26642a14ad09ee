"""Code env requests: submitted (validated as create validates), approved or rejected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from codenv.domain.errors import (
    AlreadyExists,
    CodenvError,
    Conflict,
    InvalidInput,
    InvalidSpec,
    NotFound,
    PermissionDenied,
)
from codenv.domain.spec import EnvSpec, SetRef
from codenv.services import audit, builds, envs, permissions, requests, revisions
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.node_settings import requests_allowed, set_requests_allowed
from support.access import opened, user_in
from support.databases import database_url  # noqa: F401
from support.pkgindex import PackageIndex

ADMIN = Actor.local_admin()
SCRIPT = "resources_init_script"


@pytest.fixture
def app(
    tmp_path: Path,
    database_url: str,  # noqa: F811
    sample_index: PackageIndex,
) -> Iterator[Codenv]:
    with opened(tmp_path / "home", database_url, sample_index.url) as opened_app:
        set_requests_allowed(opened_app, ADMIN, True)
        yield opened_app


def test_requests_turned_off_are_refused(app: Codenv, newest: str) -> None:
    user = user_in(app, ADMIN, "ann")
    with pytest.raises(PermissionDenied):
        set_requests_allowed(app, user, False)
    set_requests_allowed(app, ADMIN, False)
    assert not requests_allowed(app)
    with pytest.raises(PermissionDenied) as refused:
        requests.submit_request(app, user, "wanted", EnvSpec(python=newest))
    assert refused.value.message == (
        "requests for code envs are turned off on this node; ask an administrator"
    )
    assert refused.value.status == 403
    assert requests.my_requests(app, user) == []


def _bad_requests(newest: str) -> list[tuple[str, EnvSpec, type[CodenvError], str]]:
    spec = EnvSpec(python=newest)
    return [
        ("bad name", spec, InvalidInput, "name"),
        ("taken", spec, AlreadyExists, "name"),
        ("PENDING", spec, AlreadyExists, "name"),
        ("fine", EnvSpec(python="3.99"), InvalidSpec, "python"),
        ("fine", replace(spec, requested="alpha\nfoo bar\n"), InvalidSpec, "requested"),
        ("fine", replace(spec, package_sets=(SetRef("no-such-set"),)), NotFound, "sets"),
        ("fine", replace(spec, resources_init_script="x = 1\n"), InvalidSpec, SCRIPT),
    ]  # fmt: skip


def test_a_request_is_validated_when_submitted(app: Codenv, newest: str) -> None:
    ben = user_in(app, ADMIN, "ben")
    envs.create_env(app, ADMIN, "taken", EnvSpec(python=newest, install_core_packages=False))
    requests.submit_request(app, ben, "pending", EnvSpec(python=newest))
    for name, spec, error, field in _bad_requests(newest):
        with pytest.raises(error) as refused:
            requests.submit_request(app, ben, name, spec, "please")
        assert refused.value.field == field, (name, spec, refused.value)
    assert [request.name for request in requests.my_requests(app, ben)] == ["pending"]


def test_approved_request_is_built_and_owned_by_the_requester(app: Codenv, newest: str) -> None:
    cleo = user_in(app, ADMIN, "cleo")
    boss = user_in(app, ADMIN, "boss", group="admins", administrator=True)
    spec = EnvSpec(python=newest, install_core_packages=False, requested="beta\n")
    submitted = requests.submit_request(app, cleo, "Analysis", spec, "for the churn study")
    assert (submitted.status, submitted.requester, submitted.message) == (
        "pending",
        "cleo",
        "for the churn study",
    )
    with pytest.raises(PermissionDenied):
        requests.list_requests(app, cleo)
    with pytest.raises(PermissionDenied):
        requests.approve_request(app, cleo, submitted.id)
    with pytest.raises(NotFound):
        envs.show_env(app, cleo, "analysis")

    inbox = requests.list_requests(app, boss)
    assert [(r.id, r.status) for r in inbox] == [(submitted.id, "pending")]
    approved, created = requests.approve_request(app, boss, submitted.id)
    assert approved.status == "approved" and approved.decided_by == "boss"
    assert approved.build_id == created.build_id and created.env == "Analysis"

    info = envs.show_env(app, cleo, "analysis")
    assert info.owner == "cleo" and info.status == "ready"
    assert builds.get_build(app, cleo, created.build_id).status == "succeeded"
    _, installed = revisions.installed_packages(app, cleo, "analysis")
    assert "beta" in {package["name"] for package in installed}
    # The requester owns it: may share it, not delete it.
    assert permissions.set_permissions(app, cleo, "analysis", usable_by_all=True).usable_by_all
    with pytest.raises(PermissionDenied):
        envs.delete_env(app, cleo, "analysis", delete_resources=True)

    with pytest.raises(Conflict):
        requests.approve_request(app, boss, submitted.id)
    assert requests.my_requests(app, cleo)[0].status == "approved"


def test_rejected_request_shows_the_reason(app: Codenv, newest: str) -> None:
    dina = user_in(app, ADMIN, "dina")
    other = user_in(app, ADMIN, "other")
    first = requests.submit_request(app, dina, "first", EnvSpec(python=newest))
    second = requests.submit_request(app, dina, "second", EnvSpec(python=newest))
    assert requests.pending_count(app, ADMIN) == 2  # the console's badge for administrators
    with pytest.raises(PermissionDenied):
        requests.pending_count(app, dina)
    with pytest.raises(InvalidInput) as no_reason:
        requests.reject_request(app, ADMIN, first.id, "  ")
    assert no_reason.value.field == "reason"

    rejected = requests.reject_request(app, ADMIN, first.id, "use the shared env 'ml' instead")
    assert rejected.status == "rejected" and rejected.decided_by == ADMIN.name
    assert requests.pending_count(app, ADMIN) == 1
    mine = {request.name: request for request in requests.my_requests(app, dina)}
    assert mine["first"].reason == "use the shared env 'ml' instead"
    assert mine["second"].status == "pending"
    assert requests.get_request(app, dina, first.id).status == "rejected"
    with pytest.raises(NotFound):
        requests.get_request(app, other, first.id)
    with pytest.raises(Conflict):
        requests.approve_request(app, ADMIN, first.id)
    # Pending first in the inbox.
    assert [r.id for r in requests.list_requests(app, ADMIN)] == [second.id, first.id]
    assert [r.id for r in requests.list_requests(app, ADMIN, status="rejected")] == [first.id]
    # A rejected name is free again.
    assert requests.submit_request(app, dina, "FIRST", EnvSpec(python=newest)).status == "pending"


def test_a_failed_approval_leaves_the_request_pending(app: Codenv, newest: str) -> None:
    eli = user_in(app, ADMIN, "eli")
    spec = EnvSpec(python=newest, install_core_packages=False)
    request = requests.submit_request(app, eli, "contested", spec)
    envs.create_env(app, ADMIN, "Contested", spec)
    with pytest.raises(AlreadyExists):
        requests.approve_request(app, ADMIN, request.id)
    assert requests.get_request(app, eli, request.id).status == "pending"
    assert requests.reject_request(app, ADMIN, request.id, "exists now").status == "rejected"


def test_an_administrator_edits_a_pending_request(app: Codenv, newest: str) -> None:
    asker = user_in(app, ADMIN, "ann")
    sent = requests.submit_request(app, asker, "wanted", EnvSpec(python=newest), "for reports")
    with pytest.raises(PermissionDenied):
        requests.update_request(app, asker, sent.id, EnvSpec(python=newest, requested="six"))
    edited = requests.update_request(
        app, ADMIN, sent.id, EnvSpec(python=newest, requested="six\n", description="Reports")
    )
    assert edited.spec["requested"] == "six\n" and edited.message == "for reports"
    assert requests.get_request(app, asker, sent.id).spec["description"] == "Reports"
    assert audit.list_audit(app, ADMIN, 1)[0].action == "request.update"
    with pytest.raises(InvalidSpec) as bad:
        requests.update_request(app, ADMIN, sent.id, EnvSpec(python="2.7"))
    assert bad.value.field == "python"
    script = EnvSpec(python=newest, resources_init_script="echo hi")
    with pytest.raises(InvalidSpec):
        requests.update_request(app, ADMIN, sent.id, script)
    requests.reject_request(app, ADMIN, sent.id, "not now")
    with pytest.raises(Conflict):
        requests.update_request(app, ADMIN, sent.id, EnvSpec(python=newest))
