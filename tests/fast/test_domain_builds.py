"""Pure rules of builds: states and transitions, the resolution policy, and the plan hash
whose stability across releases is promised (an unchanged env must not rebuild after an
upgrade of codenv)."""

from __future__ import annotations

import pytest

from codenv.domain.builds import BuildStatus, ResolutionPolicy, check_transition
from codenv.domain.errors import Conflict
from codenv.domain.plan import Plan, editables_needing_pip

GOLDEN = Plan(
    python_version="3.11.7",
    interpreter="/opt/python/3.11.7/bin/python3.11",
    base=("codenv-runtime @ file:///home/codenv/wheels/codenv_runtime-0.1.0-py3-none-any.whl",),
    sets=("numpy>=1.21", "pandas"),
    requested=("requests==2.31.0", "-e /srv/src/tool"),
    archive_digests=(("/srv/a.zip", "ab" * 32),),
    install_options=("--index-url", "https://pypi.org/simple"),
)


def test_plan_hash_is_stable_across_releases() -> None:
    # The hash codenv 0.1.0 computed for this plan. Changing it means that every env on every
    # node rebuilds at its next update: only ever on purpose, with a note in the changelog.
    assert GOLDEN.hash == "8e19e4c594f869ed872a376f05835ca00f6277b09f03e40308bde65ccd2a0633"


def test_fields_left_empty_do_not_change_the_hash() -> None:
    with_empty = Plan.from_dict({**GOLDEN.to_dict(), "venv_options": [], "init_script_digest": ""})
    assert with_empty.hash == GOLDEN.hash
    assert Plan.from_dict(
        {**GOLDEN.to_dict(), "venv_options": ["--system-site-packages"]}
    ).hash != (GOLDEN.hash)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("queued", BuildStatus.RUNNING),
        ("queued", BuildStatus.CANCELLED),
        ("queued", BuildStatus.FAILED),
        ("running", BuildStatus.SUCCEEDED),
        ("running", BuildStatus.FAILED),
        ("running", BuildStatus.CANCELLED),
    ],
)
def test_allowed_transitions(current: str, new: BuildStatus) -> None:
    assert check_transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("queued", BuildStatus.SUCCEEDED),
        ("succeeded", BuildStatus.FAILED),
        ("failed", BuildStatus.RUNNING),
        ("cancelled", BuildStatus.RUNNING),
        ("running", BuildStatus.QUEUED),
    ],
)
def test_refused_transitions(current: str, new: BuildStatus) -> None:
    with pytest.raises(Conflict, match=f"a {current} build cannot become {new.value}"):
        check_transition(current, new)


def test_resolution_policy() -> None:
    assert ResolutionPolicy.choose(has_previous_lock=False, upgrade_all=False).value == "fresh"
    assert ResolutionPolicy.choose(True, False) is ResolutionPolicy.KEEP_LOCKED
    assert ResolutionPolicy.choose(True, True) is ResolutionPolicy.UPGRADE_ALL
    assert "keeping" not in ResolutionPolicy.FRESH.describe()


def test_only_setup_py_editables_on_36_go_to_pip() -> None:
    on_36 = Plan.from_dict({**GOLDEN.to_dict(), "python_version": "3.6.15"})
    assert editables_needing_pip(on_36, lambda path: path == "/srv/src/tool") == ("/srv/src/tool",)
    assert editables_needing_pip(on_36, lambda _path: False) == ()
    assert editables_needing_pip(GOLDEN, lambda _path: True) == ()
