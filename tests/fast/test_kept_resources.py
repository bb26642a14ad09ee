"""Deleting an env keeps nothing where a new env of the same name could pick it up."""

from __future__ import annotations

import pytest

from codenv.domain.errors import Conflict, PermissionDenied
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.services import builds, envs, kept_resources
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.runtime import env_vars
from fast.test_cancel_rollback import HeldQueue
from support.access import user_in

SCRIPT = (
    "from codenv_runtime.resources import set_env_var\n"
    "set_env_var('DB_PASSWORD', 'owner-secret')\n"
    "open('confidential.csv', 'w').write('salary\\n')\n"
)


def _layout(app: Codenv) -> EnvLayout:
    return EnvLayout.of(app.settings.envs_dir, "demo")


def test_a_new_env_of_the_same_name_starts_empty(app: Codenv, admin: Actor, newest: str) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, resources_init_script=SCRIPT))
    assert (_layout(app).resources_dir / "confidential.csv").exists()

    kept = envs.delete_env(app, admin, "demo", delete_resources=False)
    assert kept is not None and kept.startswith("demo-")

    mallory = user_in(app, admin, "mallory", group="creators", may_create_envs=True)
    envs.create_env(app, mallory, "demo", EnvSpec(python=newest))
    assert not (_layout(app).resources_dir / "confidential.csv").exists()
    assert "DB_PASSWORD" not in env_vars(_layout(app))
    with pytest.raises(PermissionDenied):
        kept_resources.list_kept(app, mallory)
    (listed,) = kept_resources.list_kept(app, admin)
    assert (listed.id, listed.env, listed.env_vars) == (kept, "demo", True)


def test_an_administrator_may_adopt_kept_resources_explicitly(
    app: Codenv, admin: Actor, newest: str
) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, resources_init_script=SCRIPT))
    kept = envs.delete_env(app, admin, "demo", delete_resources=False)
    assert kept is not None
    envs.create_env(app, admin, "demo", EnvSpec(python=newest))

    kept_resources.adopt_kept(app, admin, kept, "demo")
    assert (_layout(app).resources_dir / "confidential.csv").read_text() == "salary\n"
    assert env_vars(_layout(app))["DB_PASSWORD"] == "owner-secret"
    assert kept_resources.list_kept(app, admin) == []


def test_adopting_never_overwrites_an_envs_own_resources(
    app: Codenv, admin: Actor, newest: str
) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, resources_init_script=SCRIPT))
    kept = envs.delete_env(app, admin, "demo", delete_resources=False)
    assert kept is not None
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, resources_init_script=SCRIPT))
    with pytest.raises(Conflict, match="has resources of its own"):
        kept_resources.adopt_kept(app, admin, kept, "demo")


def test_deleting_an_env_cancels_its_queued_builds(app: Codenv, admin: Actor, newest: str) -> None:
    app.queue = HeldQueue()
    build_id = envs.create_env(app, admin, "demo", EnvSpec(python=newest)).build_id
    envs.delete_env(app, admin, "demo", delete_resources=True)
    build = builds.get_build(app, admin, build_id)
    assert build.status == "cancelled"
    assert build.error == "cancelled: code env 'demo' was deleted"
