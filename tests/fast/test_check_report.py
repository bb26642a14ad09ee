"""pip's rule for a broken env, applied to uv's check report."""

from __future__ import annotations

from codenv.backends.fake import FakeInstaller
from codenv.domain.checks import split_check_report
from codenv.domain.spec import EnvSpec
from codenv.services import builds, envs, installed
from codenv.services.actor import Actor
from codenv.services.app import Codenv

TAGS = "The package `xgboost` was built for a different platform"
MISSING = "The package `pandas` requires `numpy>=1.17.3`, but it's not installed"


def test_only_dependency_problems_break_an_env() -> None:
    report = split_check_report(
        ["Using Python 3.9.18 environment at: /x", "Checked 23 packages in 2ms",
         "Found 2 incompatibilities", TAGS, MISSING]
    )  # fmt: skip
    assert (report.problems, report.warnings) == ((MISSING,), (TAGS,))
    assert split_check_report([TAGS]).problems == ()


def test_warnings_are_kept_with_the_installed_packages(
    app: Codenv, admin: Actor, fake: FakeInstaller, newest: str
) -> None:
    fake.check_warnings = (TAGS,)
    build_id = envs.create_env(app, admin, "demo", EnvSpec(python=newest)).build_id
    assert builds.get_build(app, admin, build_id).status == "succeeded"
    assert installed.show_installed(app, admin, "demo").warnings == [TAGS]
