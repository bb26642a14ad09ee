"""Envs are seeded like a venv (pip, setuptools, wheel) unless the spec or the node says no;
a requested pin of a seed package replaces the seed."""

from __future__ import annotations

from codenv.domain.spec import EnvSpec, SpecChanges, apply_changes, base_packages

CORE = "0.1.0"


def _names(spec: EnvSpec, seed_default: bool = True) -> list[str]:
    return [package.requirement for package in base_packages(spec, CORE, "", seed_default)]


def test_seeds_are_base_packages_by_default() -> None:
    assert _names(EnvSpec(python="3.13")) == [
        "pip",
        "setuptools<82",
        "wheel",
        "codenv-runtime==0.1.0",
    ]


def test_the_spec_or_the_node_may_leave_them_out() -> None:
    assert "pip" not in _names(EnvSpec(python="3.13", install_seed_packages=False))
    assert "pip" not in _names(EnvSpec(python="3.13"), seed_default=False)
    assert "pip" in _names(EnvSpec(python="3.13", install_seed_packages=True), False)


def test_a_requested_pin_replaces_the_seed() -> None:
    spec = EnvSpec(python="3.8", requested="setuptools<58\nnumpy\n")
    assert _names(spec) == ["pip", "wheel", "codenv-runtime==0.1.0"]


def test_save_keeps_or_changes_the_choice() -> None:
    spec = EnvSpec(python="3.13", install_seed_packages=False)
    assert apply_changes(spec, SpecChanges(add=("x",))).install_seed_packages is False
    changed = apply_changes(spec, SpecChanges(install_seed_packages=True))
    assert changed.install_seed_packages is True
    assert EnvSpec.from_dict(changed.to_dict()) == changed
