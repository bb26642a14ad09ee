"""Interpreter discovery against the real Pythons of this machine (nothing hard-coded)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codenv.domain.errors import InvalidInput, UnsupportedInterpreter
from codenv.domain.pythons import Interpreter
from codenv.interpreters import Discovery, check_addable, discover, probing


@pytest.fixture(scope="module")
def machine() -> Discovery:
    return discover()


def _distinct_minors(machine: Discovery, count: int) -> list[Interpreter]:
    """`count` real interpreters with different minors, newest first."""
    by_minor = {interpreter.minor: interpreter for interpreter in machine.found}
    picked = sorted(by_minor.values(), key=lambda i: i.version_info, reverse=True)[:count]
    if len(picked) < count:
        pytest.skip(f"needs {count} Python minors on this machine")
    return picked


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _symlink(link: Path, target: str) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records every subprocess.run the code under test makes (and still runs it)."""
    calls: list[list[str]] = []
    real_run: Callable[..., Any] = subprocess.run

    def counting_run(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        calls.append(list(args))
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    return calls


# --- the real machine ---------------------------------------------------------------------


def test_finds_several_supported_versions_old_and_new(machine: Discovery) -> None:
    assert len(machine.minors()) >= 3, machine
    old = [i for i in machine.found if (3, 6) <= i.version_info[:2] <= (3, 8)]
    assert old, "expected a 3.6-3.8 interpreter"
    assert all(i.deprecated for i in old)
    assert any(i.version_info[:2] >= (3, 12) and not i.deprecated for i in machine.found)
    assert all(i.implementation == "cpython" for i in machine.found)


def test_reported_version_is_what_the_interpreter_prints(machine: Discovery) -> None:
    for interpreter in machine.found:
        assert os.path.isabs(interpreter.path)
        printed = subprocess.run(
            [interpreter.path, "--version"], capture_output=True, text=True, check=True
        )
        assert printed.stdout.strip() == f"Python {interpreter.version}", interpreter


def test_minors_are_sorted_numerically_and_each_has_a_choice(machine: Discovery) -> None:
    minors = machine.minors()
    assert list(minors) == sorted(minors, key=lambda m: tuple(int(p) for p in m.split(".")))
    for minor in minors:
        chosen = machine.for_minor(minor)
        assert chosen is not None and chosen.minor == minor


def _pyenv_versions() -> Path:
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    return Path(root) / "versions"


def test_python_2_is_listed_as_refused_with_the_reason(machine: Discovery) -> None:
    if not list(_pyenv_versions().glob("2.*/bin/python2.*")):
        pytest.skip("no Python 2 under the pyenv root")
    refused = [r for r in machine.refused if "2.7" in r.reason]
    assert refused, machine.refused
    assert "3.6" in refused[0].reason
    assert refused[0].path.startswith(str(_pyenv_versions()))
    assert not any(i.version_info[0] == 2 for i in machine.found)


def test_headers_flag_matches_the_pyenv_install(machine: Discovery) -> None:
    pyenv = [i for i in machine.found if i.source == "pyenv"]
    if not pyenv:
        pytest.skip("no pyenv interpreters")
    for interpreter in pyenv:
        prefix = Path(interpreter.path).parent.parent
        assert interpreter.has_headers == any(prefix.glob("include/python3*/Python.h"))


# --- candidate sources --------------------------------------------------------------------


def test_fake_pyenv_root_is_found_and_shims_are_skipped(machine: Discovery, tmp_path: Path) -> None:
    newer, older = _distinct_minors(machine, 2)
    root = tmp_path / "pyenv"
    links = [
        _symlink(root / "versions" / i.version / "bin" / f"python{i.minor}", i.path)
        for i in (newer, older)
    ]
    marker = tmp_path / "shim-ran"
    _executable(root / "shims" / "python3", f"#!/bin/sh\ntouch {marker}\necho garbage\n")
    environ = {"PYENV_ROOT": str(root), "PATH": str(root / "shims"), "HOME": str(tmp_path)}

    found = discover(environ=environ)

    assert {(i.path, i.source, i.version) for i in found.found} == {
        (str(links[0]), "pyenv", newer.version),
        (str(links[1]), "pyenv", older.version),
    }
    assert found.refused == ()
    assert not marker.exists()


def test_path_entries_are_found_and_duplicates_keep_the_first_source(
    machine: Discovery, tmp_path: Path
) -> None:
    newer, older = _distinct_minors(machine, 2)
    pyenv_link = _symlink(tmp_path / "pyenv/versions/x/bin" / f"python{newer.minor}", newer.path)
    bin_dir = tmp_path / "bin"
    _symlink(bin_dir / f"python{newer.minor}", newer.path)  # same file as the pyenv one
    path_link = _symlink(bin_dir / f"python{older.minor}", older.path)
    _symlink(bin_dir / "python3", older.path)  # the versioned name is the one kept
    environ = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": f"relative/dir:{bin_dir}"}

    found = discover(environ=environ)

    assert [(i.path, i.source) for i in found.found] == [
        (str(path_link), "path"),
        (str(pyenv_link), "pyenv"),
    ]


def test_default_pyenv_root_is_under_home(machine: Discovery, tmp_path: Path) -> None:
    (real,) = _distinct_minors(machine, 1)
    link = _symlink(tmp_path / ".pyenv/versions/v/bin" / f"python{real.minor}", real.path)
    found = discover(environ={"HOME": str(tmp_path), "PATH": ""})
    assert [(i.path, i.source) for i in found.found] == [(str(link), "pyenv")]


def test_configured_wins_over_pyenv_and_missing_ones_are_refused(
    machine: Discovery, tmp_path: Path
) -> None:
    (real,) = _distinct_minors(machine, 1)
    configured = _symlink(tmp_path / "mine" / "python", real.path)
    _symlink(tmp_path / "pyenv/versions/v/bin" / f"python{real.minor}", real.path)
    missing = str(tmp_path / "gone" / "python3")
    environ = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": ""}

    found = discover(configured=[str(configured), missing], environ=environ)

    assert [(i.path, i.source) for i in found.found] == [(str(configured), "configured")]
    assert [(r.path, r.source) for r in found.refused] == [(missing, "configured")]
    assert "does not exist" in found.refused[0].reason


# --- check_addable ------------------------------------------------------------------------


def test_addable_real_interpreter_keeps_the_given_path(machine: Discovery, tmp_path: Path) -> None:
    (real,) = _distinct_minors(machine, 1)
    link = _symlink(tmp_path / "python", real.path)
    added = check_addable(str(link))
    assert (added.path, added.source, added.version) == (str(link), "configured", real.version)


def test_not_a_python_is_refused_naming_the_path(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "python3", "#!/bin/sh\necho 'hello, I am garbage'\n")
    with pytest.raises(UnsupportedInterpreter) as caught:
        check_addable(str(fake))
    assert str(fake) in caught.value.message
    assert "not a Python interpreter" in caught.value.message
    assert "garbage" in caught.value.message
    assert caught.value.field == "path"


def test_failing_executable_is_refused_with_its_error(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "python3", "#!/bin/sh\necho 'boom: no such thing' >&2\nexit 3\n")
    with pytest.raises(UnsupportedInterpreter, match=r"exit status 3: boom: no such thing"):
        check_addable(str(fake))


def _plain_file(path: Path) -> Path:
    path.write_text("not a program")
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "nope" / "python3", "does not exist"),
        (lambda tmp: _symlink(tmp / "dangling", str(tmp / "nowhere")), "broken symbolic link"),
        (lambda tmp: tmp, "directory"),
        (lambda tmp: _plain_file(tmp / "plain"), "not executable"),
    ],
)
def test_unusable_paths_are_refused_with_a_clear_reason(
    tmp_path: Path, make: Callable[[Path], Path], expected: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(UnsupportedInterpreter) as caught:
        check_addable(str(path))
    assert caught.value.message.startswith(f"cannot use {path}: ")
    assert expected in caught.value.message


def test_relative_path_is_invalid_input_on_field_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_addable("bin/python3")
    assert caught.value.field == "path"
    assert "absolute" in caught.value.message


def test_hanging_executable_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probing, "PROBE_TIMEOUT", 0.3)
    hanging = _executable(tmp_path / "python3", "#!/bin/sh\nexec sleep 30\n")
    with pytest.raises(UnsupportedInterpreter, match=r"did not answer within 0\.3 s"):
        check_addable(str(hanging))


# --- for_minor ----------------------------------------------------------------------------


def _interp(version: str, source: str) -> Interpreter:
    return Interpreter(f"/{source}/{version}", version, "cpython", source, has_headers=True)


def test_for_minor_prefers_newest_patch_then_source_order() -> None:
    found = Discovery(
        found=(
            _interp("3.11.2", "configured"),
            _interp("3.11.7", "path"),
            _interp("3.11.7", "pyenv"),
            _interp("3.13.0rc1", "configured"),
            _interp("3.13.0", "path"),
            _interp("3.9.18", "path"),
            _interp("3.9.18", "configured"),
        ),
        refused=(),
    )
    assert found.for_minor("3.11") == _interp("3.11.7", "pyenv")
    assert found.for_minor("3.13") == _interp("3.13.0", "path")
    assert found.for_minor("3.9") == _interp("3.9.18", "configured")
    assert found.for_minor("3.12") is None
    assert found.minors() == ("3.9", "3.11", "3.13")


# --- probe cache --------------------------------------------------------------------------


@pytest.fixture
def wrapper(machine: Discovery, tmp_path: Path) -> Path:
    """A script standing in for an interpreter, so its mtime can change without harm."""
    (real,) = _distinct_minors(machine, 1)
    return _executable(tmp_path / "wrapped" / "python3", f'#!/bin/sh\nexec "{real.path}" "$@"\n')


def _discover_wrapper(wrapper: Path, cache: Path) -> Discovery:
    environ = {"PYENV_ROOT": str(wrapper.parent / "no-pyenv"), "PATH": ""}
    return discover(configured=[str(wrapper)], environ=environ, cache_file=cache)


def test_cache_skips_the_probe_until_the_file_changes(
    wrapper: Path, tmp_path: Path, probe_calls: list[list[str]]
) -> None:
    cache = tmp_path / "state" / "interpreters.json"
    first = _discover_wrapper(wrapper, cache)
    assert len(probe_calls) == 1 and len(first.found) == 1

    assert _discover_wrapper(wrapper, cache) == first
    assert len(probe_calls) == 1, "an unchanged interpreter must not be run again"

    later = wrapper.stat().st_mtime_ns + 5_000_000_000
    os.utime(wrapper, ns=(later, later))
    assert _discover_wrapper(wrapper, cache) == first
    assert len(probe_calls) == 2
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp files left


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"format": 1, "entries": {"%s": {"mtime_ns": "x", "result": 3}}}'],
)
def test_corrupt_cache_is_ignored_and_rewritten(
    wrapper: Path, tmp_path: Path, probe_calls: list[list[str]], content: str
) -> None:
    cache = tmp_path / "interpreters.json"
    cache.write_text(content.replace("%s", str(wrapper)))

    found = _discover_wrapper(wrapper, cache)

    assert [i.path for i in found.found] == [str(wrapper)]
    assert len(probe_calls) == 1
    assert str(wrapper) in json.loads(cache.read_text())["entries"]
    _discover_wrapper(wrapper, cache)
    assert len(probe_calls) == 1


def test_refused_versions_are_cached_too(
    machine: Discovery, tmp_path: Path, probe_calls: list[list[str]]
) -> None:
    too_old = [r for r in machine.refused if "codenv supports" in r.reason]
    if not too_old:
        pytest.skip("no interpreter refused for its version on this machine")
    old = too_old[0]
    cache = tmp_path / "interpreters.json"
    environ = {"PYENV_ROOT": str(tmp_path), "PATH": ""}
    first = discover(configured=[old.path], environ=environ, cache_file=cache)
    second = discover(configured=[old.path], environ=environ, cache_file=cache)
    assert first == second and second.refused[0].reason == old.reason
    assert len(probe_calls) == 1
