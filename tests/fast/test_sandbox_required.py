"""No sandbox, no build, unless an administrator says so explicitly (and it is recorded)."""

from __future__ import annotations

import pytest

from codenv.domain.errors import Unavailable
from codenv.domain.spec import EnvSpec
from codenv.services import audit, boxes, builds, envs
from codenv.services.actor import Actor
from codenv.services.app import Codenv

REASON = "the sandbox could not start (user namespaces are disabled); enable them"


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boxes, "sandbox_available", lambda: REASON)


@pytest.mark.usefixtures("no_sandbox")
def test_builds_are_refused_where_the_sandbox_cannot_start(
    app: Codenv, admin: Actor, newest: str
) -> None:
    with pytest.raises(Unavailable) as refused:
        envs.create_env(app, admin, "demo", EnvSpec(python=newest))
    message = refused.value.message
    assert REASON in message and "codenv settings set-sandbox off" in message
    assert refused.value.field == "sandbox"
    assert envs.list_envs(app, admin) == []  # nothing was created


@pytest.mark.usefixtures("no_sandbox")
def test_an_administrator_may_run_builds_unsandboxed_and_it_is_recorded(
    app: Codenv, admin: Actor, newest: str
) -> None:
    boxes.set_sandbox_mode(app, admin, "off")
    build_id = envs.create_env(app, admin, "demo", EnvSpec(python=newest)).build_id
    assert builds.get_build(app, admin, build_id).status == "succeeded"
    actions = [entry.action for entry in audit.list_audit(app, admin)]
    assert "settings.sandbox_off" in actions
    boxes.set_sandbox_mode(app, admin, "required")
    with pytest.raises(Unavailable):
        builds.request_update(app, admin, "demo", rebuild=True)
