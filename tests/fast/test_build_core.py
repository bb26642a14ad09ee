"""run_build on the fake installer: every stage failing, the honest end of a build, and what
a committed build does when an after-commit step fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codenv.backends.base import Run
from codenv.backends.fake import STAGES, FakeInstaller
from codenv.domain.errors import BuildFailed
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.envdirs.layout import EnvLayout
from codenv.services import activation, builds, envs, logs
from codenv.services.actor import Actor
from codenv.services.app import Codenv, open_codenv
from codenv.settings import load_settings
from fast.conftest import open_fake

MALFORMED = "import os\nopen(os.environ['CODENV_ENV_VARS_FILE'], 'w').write('{not json')\n"
SETS_VAR = "from codenv_runtime.resources import set_env_var\nset_env_var('GREETING', '{value}')\n"


def _spec(python: str, **extra: object) -> EnvSpec:
    return EnvSpec(python=python, requested="alpha\n", **extra)  # type: ignore[arg-type]


def _built(app: Codenv, admin: Actor, python: str, **extra: object) -> EnvLayout:
    created = envs.create_env(app, admin, "demo", _spec(python, **extra))
    assert builds.get_build(app, admin, created.build_id).status == "succeeded"
    return EnvLayout.of(app.settings.envs_dir, "demo")


def _update(app: Codenv, admin: Actor, changes: SpecChanges) -> str:
    envs.save_spec(app, admin, "demo", changes)
    result = builds.request_update(app, admin, "demo")
    assert result.build_id is not None
    return result.build_id


def _log(app: Codenv, admin: Actor, build_id: str) -> str:
    return logs.read_log(app, admin, build_id)[0]


def test_a_build_makes_revision_one_active(app: Codenv, admin: Actor, newest: str) -> None:
    layout = _built(app, admin, newest)
    shown = envs.show_env(app, admin, "demo")
    assert (shown.active_revision, shown.status) == (1, "ready")
    assert layout.current_number() == 1
    assert "alpha==1.0" in (layout.revision(1) / ".codenv" / "lock.txt").read_text()
    assert "keeping locked versions" not in _log(app, admin, shown.last_build.id)  # type: ignore[union-attr]


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "install_editables"])
def test_a_failure_at_any_stage_keeps_the_working_revision(
    app: Codenv, admin: Actor, fake: FakeInstaller, newest: str, stage: str
) -> None:
    layout = _built(app, admin, newest)

    def fail(_run: Run) -> None:
        raise BuildFailed(f"{stage} broke on purpose")

    fake.hooks[stage] = fail
    build_id = _update(app, admin, SpecChanges(add=("beta",)))

    build = builds.get_build(app, admin, build_id)
    assert (build.status, build.error) == ("failed", f"{stage} broke on purpose")
    assert envs.show_env(app, admin, "demo").active_revision == 1
    assert layout.current_number() == 1
    assert not layout.revision(2).exists()
    assert "the active revision and its env vars are unchanged" in _log(app, admin, build_id)
    fake.hooks.clear()
    assert builds.request_update(app, admin, "demo").build_id is not None
    assert layout.current_number() == 2


def test_a_malformed_env_vars_file_fails_the_build_and_later_updates_work(
    app: Codenv, admin: Actor, newest: str
) -> None:
    layout = _built(app, admin, newest, resources_init_script=SETS_VAR.format(value="one"))
    build_id = _update(app, admin, SpecChanges(resources_init_script=MALFORMED))

    build = builds.get_build(app, admin, build_id)
    assert build.status == "failed"
    assert build.error is not None and "malformed env vars file" in build.error
    assert json.loads(layout.env_vars_file.read_text())["vars"]["GREETING"]["value"] == "one"
    assert not list(layout.root.glob(".staged-*"))

    build_id = _update(app, admin, SpecChanges(resources_init_script=SETS_VAR.format(value="two")))
    assert builds.get_build(app, admin, build_id).status == "succeeded"
    assert json.loads(layout.env_vars_file.read_text())["vars"]["GREETING"]["value"] == "two"


def test_a_failure_after_the_commit_is_a_warning_and_recovery_finishes_it(
    tmp_path: Path, app: Codenv, admin: Actor, fake: FakeInstaller, newest: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    layout = _built(app, admin, newest)

    def broken_kernel(*_args: object) -> None:
        raise OSError("kernels directory is read-only")

    monkeypatch.setattr(activation, "refresh_kernel", broken_kernel)
    build_id = _update(app, admin, SpecChanges(add=("beta",), install_jupyter_support=True))

    build = builds.get_build(app, admin, build_id)
    assert (build.status, build.revision) == ("succeeded", 2)
    assert layout.current_number() == 2
    log = _log(app, admin, build_id)
    assert "warning: refreshing the Jupyter kernelspec failed" in log
    assert "unchanged" not in log
    assert activation.unsettled_envs(app) != []
    kernelspec = app.settings.kernels_dir / "codenv-demo" / "kernel.json"
    assert not kernelspec.exists()

    monkeypatch.undo()
    app.close()
    reopened = open_fake(tmp_path / "home", fake)
    assert activation.unsettled_envs(reopened) == []
    assert kernelspec.exists()
    reopened.close()


def test_only_the_host_holding_the_revision_settles_it(
    tmp_path: Path, app: Codenv, admin: Actor, fake: FakeInstaller, newest: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    layout = _built(app, admin, newest)
    monkeypatch.setattr(layout.__class__, "switch_current", _refuse_switch)
    _update(app, admin, SpecChanges(add=("beta",)))
    monkeypatch.undo()
    assert activation.unsettled_envs(app) != [] and layout.current_number() == 1
    # Another host on the same database (a sync node, a worker) has no revision 2: it leaves
    # the env to the host that built it, whose `current` would otherwise stay behind.
    settings = load_settings(
        tmp_path / "node-b",
        {
            "CODENV_INDEX_URL": "http://127.0.0.1:9/simple",
            "CODENV_DATABASE_URL": app.settings.database_url,
        },
    )
    other = open_codenv(settings, "inline", installer=fake, editables=fake)
    assert activation.unsettled_envs(other) != []
    other.close()
    app.close()
    reopened = open_fake(tmp_path / "home", fake)
    assert activation.unsettled_envs(reopened) == [] and layout.current_number() == 2
    reopened.close()


def _refuse_switch(*_args: object) -> None:
    raise OSError("the disk refused the switch")


def test_a_switch_that_failed_is_redone_at_start_up(
    tmp_path: Path, app: Codenv, admin: Actor, fake: FakeInstaller, newest: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    layout = _built(app, admin, newest)

    def no_switch(self: EnvLayout, number: int) -> None:
        raise OSError("disk hiccup")

    monkeypatch.setattr(EnvLayout, "switch_current", no_switch)
    build_id = _update(app, admin, SpecChanges(add=("beta",)))
    assert builds.get_build(app, admin, build_id).status == "succeeded"
    assert layout.current_number() == 1  # the database says 2: the disk catches up later

    monkeypatch.undo()
    app.close()
    open_fake(tmp_path / "home", fake).close()
    assert layout.current_number() == 2
