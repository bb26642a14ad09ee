"""The package-set catalog says true things about where each set installs.

The pure tests check the shape of `package_sets.json`: unique ids, supported Python ranges,
non-empty variants, and requirement lines that parse, carry a lower and an upper bound, and
never ask twice for one package on one Python.

The `public_index` tests resolve every set and variant against PyPI at the lowest and at the
highest Python of its declared range, and on both sides of every marker band edge (prophet
from 3.7, …), with the node's real interpreter, the way a build resolves
(`uv pip compile`, source releases allowed). Then they prove that every pinned distribution has
a wheel for that interpreter (`uv pip compile --only-binary :all: --no-deps` over the pins): an
env built from a catalog set never compiles anything, and the wheels-only resolution exists too.
They resolve in parallel (a thread pool, or the cases spread over pytest-xdist workers) with
one uv cache under pytest's cache dir. Run them alone with `pytest -m public_index`.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from uv import find_uv_bin

from codenv.domain.catalog import PackageSet, load_catalog
from codenv.domain.pythons import format_minor
from codenv.interpreters.discovery import Discovery, discover

OLDEST = (3, 6)
NEWEST = (3, 13)
PUBLIC_INDEX = "https://pypi.org/simple"
UV_TIMEOUT = 600
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_LOWER = {">=", ">", "==", "~=", "==="}
_UPPER = {"<", "<=", "==", "~=", "==="}

CATALOG = load_catalog()


def _minors(package_set: PackageSet) -> list[tuple[int, int]]:
    """Every 3.X of the set's declared range."""
    low, high = package_set.python_min[1], package_set.python_max[1]
    return [(3, minor) for minor in range(low, high + 1)]


def _applies(requirement: Requirement, python: tuple[int, int], full: str | None = None) -> bool:
    """Whether the line's marker holds on that Python (on x86_64 Linux, where envs are built)."""
    if requirement.marker is None:
        return True
    version = format_minor(python)
    return requirement.marker.evaluate(
        {
            "python_version": version,
            "python_full_version": full or f"{version}.0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
        }
    )


def _variants() -> list[tuple[PackageSet, str, tuple[Requirement, ...]]]:
    return [
        (package_set, variant, tuple(Requirement(line) for line in lines))
        for package_set in CATALOG.sets
        for variant, lines in package_set.variants.items()
    ]


# -- pure checks of the data --------------------------------------------------------------


def test_catalog_has_the_visual_sets() -> None:
    ids = {package_set.id for package_set in CATALOG.sets}
    assert {"visual-ml", "visual-timeseries", "visual-causal-ml", "visual-deep-learning"} <= ids


def test_set_ids_are_unique_and_well_formed() -> None:
    ids = [package_set.id for package_set in CATALOG.sets]
    assert len(ids) == len(set(ids)), f"duplicate set ids: {ids}"
    for set_id in ids:
        assert _ID.fullmatch(set_id), f"set id {set_id!r} should be lower-case words and hyphens"


@pytest.mark.parametrize("package_set", CATALOG.sets, ids=lambda s: s.id)
def test_declared_range_is_within_supported_pythons(package_set: PackageSet) -> None:
    assert OLDEST <= package_set.python_min <= package_set.python_max <= NEWEST, (
        f"{package_set.id} declares Python {package_set.python_range}, outside "
        f"{format_minor(OLDEST)}–{format_minor(NEWEST)} or reversed"
    )


@pytest.mark.parametrize("package_set", CATALOG.sets, ids=lambda s: s.id)
def test_set_has_a_title_and_non_empty_variants(package_set: PackageSet) -> None:
    assert package_set.title.strip()
    assert package_set.variants, f"{package_set.id} has no variant"
    for variant, lines in package_set.variants.items():
        assert _ID.fullmatch(variant), f"{package_set.id}: variant name {variant!r}"
        assert lines, f"{package_set.id}/{variant} has no requirement line"
    assert package_set.lines() == package_set.variants[package_set.default_variant]


@pytest.mark.parametrize(
    ("package_set", "variant", "requirements"),
    _variants(),
    ids=[f"{s.id}-{variant}" for s, variant, _ in _variants()],
)
def test_requirement_lines_parse_and_are_bounded(
    package_set: PackageSet, variant: str, requirements: tuple[Requirement, ...]
) -> None:
    where = f"{package_set.id}/{variant}"
    for requirement, line in zip(requirements, package_set.variants[variant], strict=True):
        assert requirement.url is None, f"{where}: {line!r} points at a URL, not the index"
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & _LOWER, f"{where}: {line!r} has no lower bound"
        assert operators & _UPPER, f"{where}: {line!r} has no upper bound"
        minors = _minors(package_set)
        assert any(_applies(requirement, python) for python in minors), (
            f"{where}: the marker of {line!r} matches no Python of {package_set.python_range}"
        )


@pytest.mark.parametrize(
    ("package_set", "variant", "requirements"),
    _variants(),
    ids=[f"{s.id}-{variant}" for s, variant, _ in _variants()],
)
def test_no_package_is_asked_twice_on_one_python(
    package_set: PackageSet, variant: str, requirements: tuple[Requirement, ...]
) -> None:
    """Marker bands of one package (numpy for 3.6 to 3.9, another for 3.10+) must not overlap."""
    for python in _minors(package_set):
        names = [canonicalize_name(r.name) for r in requirements if _applies(r, python)]
        twice = sorted({name for name in names if names.count(name) > 1})
        assert not twice, (
            f"{package_set.id}/{variant} asks for {', '.join(twice)} twice on Python "
            f"{format_minor(python)}"
        )


# -- the declared ranges really resolve (public index) ------------------------------------

PARALLEL_RESOLUTIONS = 8
_CASE_TEST = "test_variant_resolves_to_wheels"
_Case = tuple[str, str, tuple[int, int]]  # set id, variant, python


@cache
def _interpreters() -> Discovery:
    return discover()


def _uv_compile(
    cache_dir: Path, source: Path, python: str, *options: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    environ.update(
        UV_CACHE_DIR=str(cache_dir),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
    )
    command = [
        find_uv_bin(),
        "pip",
        "compile",
        str(source),
        "--python",
        python,
        "--index-url",
        PUBLIC_INDEX,
        "--no-header",
        "--no-annotate",
        "--quiet",
        *options,
    ]
    return subprocess.run(
        command, env=environ, capture_output=True, text=True, timeout=UV_TIMEOUT, check=False
    )


def _failure(result: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(map(str, result.args))} exited {result.returncode}:\n{result.stderr}"


@dataclass(frozen=True)
class _Outcome:
    skip: str | None = None
    failure: str | None = None
    pins: tuple[Requirement, ...] = ()
    full_version: str = ""


def _resolve(case: _Case, cache_dir: Path, workdir: Path) -> _Outcome:
    set_id, variant, python = case
    package_set, minor = CATALOG.get(set_id), format_minor(python)
    interpreter = _interpreters().for_minor(minor)
    if interpreter is None:
        return _Outcome(
            skip=f"no Python {minor} on this node: cannot check that "
            f"{set_id}/{variant} resolves on {minor}"
        )
    workdir.mkdir(parents=True)
    requirements, lock = workdir / "requirements.in", workdir / "requirements.txt"
    requirements.write_text("\n".join(package_set.lines(variant)) + "\n", encoding="utf-8")
    # As a build resolves: source releases allowed, so a bound that lets the resolver pick an
    # sdist (a release without requires-python, say) is caught by the wheel check below.
    result = _uv_compile(cache_dir, requirements, interpreter.path, "--output-file", str(lock))
    if result.returncode != 0:
        return _Outcome(failure=_failure(result))
    # Every pinned version has a wheel for this interpreter (tags and requires-python).
    result = _uv_compile(cache_dir, lock, interpreter.path, "--only-binary", ":all:", "--no-deps")
    if result.returncode != 0:
        return _Outcome(failure=f"not all wheels: {_failure(result)}")
    pins = tuple(
        Requirement(line)
        for line in lock.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", " ", "-"))
    )
    return _Outcome(pins=pins, full_version=interpreter.version)


class _Resolutions:
    """Cases resolved in a thread pool: each test waits only for its own, started early."""

    def __init__(self, cache_dir: Path, workdir: Path) -> None:
        self._cache_dir, self._workdir = cache_dir, workdir
        self._pool = ThreadPoolExecutor(PARALLEL_RESOLUTIONS, thread_name_prefix="uv-compile")
        self._futures: dict[_Case, Future[_Outcome]] = {}
        self._lock = threading.Lock()

    def start(self, case: _Case) -> Future[_Outcome]:
        with self._lock:
            if case not in self._futures:
                set_id, variant, python = case
                workdir = self._workdir / f"{set_id}-{variant}-py{format_minor(python)}"
                self._futures[case] = self._pool.submit(_resolve, case, self._cache_dir, workdir)
            return self._futures[case]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def uv_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for every case and run (pytest's cache dir): metadata is fetched once."""
    if request.config.cache is not None:
        return request.config.cache.mkdir("uv-public-index")
    return tmp_path_factory.mktemp("uv-public-index")


@pytest.fixture(scope="session")
def resolutions(
    request: pytest.FixtureRequest, uv_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Resolutions]:
    pool = _Resolutions(uv_cache, tmp_path_factory.mktemp("catalog-resolutions"))
    _interpreters()  # discover once, before the threads ask for it
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # One process runs every selected case: start them all now. Under xdist each worker
        # only resolves the cases it is given, so they start one by one as the tests run.
        for item in request.session.items:
            if getattr(item, "originalname", None) == _CASE_TEST:
                params = item.callspec.params  # type: ignore[attr-defined]
                pool.start((params["package_set"].id, params["variant"], params["python"]))
    yield pool
    pool.close()


def _checked_minors(package_set: PackageSet, variant: str) -> list[tuple[int, int]]:
    """The declared bounds, and both sides of every marker band edge (prophet from 3.7, …)."""
    requirements = [Requirement(line) for line in package_set.lines(variant)]
    minors = _minors(package_set)
    checked = {minors[0], minors[-1]}
    for before, after in itertools.pairwise(minors):
        if [_applies(r, before) for r in requirements] != [
            _applies(r, after) for r in requirements
        ]:
            checked |= {before, after}
    return sorted(checked)


def _cases() -> list[object]:
    cases: list[object] = []
    for package_set in CATALOG.sets:
        for variant in package_set.variants:
            for python in _checked_minors(package_set, variant):
                name = f"{package_set.id}-{variant}-py{format_minor(python)}"
                cases.append(pytest.param(package_set, variant, python, id=name))
    return cases


@pytest.mark.public_index
@pytest.mark.parametrize(("package_set", "variant", "python"), _cases())
def test_variant_resolves_to_wheels(
    package_set: PackageSet,
    variant: str,
    python: tuple[int, int],
    resolutions: _Resolutions,
) -> None:
    outcome = resolutions.start((package_set.id, variant, python)).result()
    if outcome.skip:
        pytest.skip(outcome.skip)
    if outcome.failure:
        pytest.fail(outcome.failure, pytrace=False)
    minor = format_minor(python)
    assert outcome.pins, f"{package_set.id}/{variant} resolved to nothing on Python {minor}"
    # The lines whose marker holds on this Python are in the lock (prophet on 3.7+, …).
    locked = {canonicalize_name(pin.name) for pin in outcome.pins}
    for line in package_set.lines(variant):
        requirement = Requirement(line)
        if _applies(requirement, python, outcome.full_version):
            assert canonicalize_name(requirement.name) in locked, (
                f"{line!r} is missing from the lock on Python {minor}"
            )


@pytest.mark.public_index
def test_wheel_check_rejects_a_source_only_pin(uv_cache: Path, tmp_path: Path) -> None:
    """The wheel check is not vacuous: prophet 1.0.1 was only ever released as an sdist."""
    pythons = _interpreters()
    newest = pythons.for_minor(pythons.minors()[-1]) if pythons.minors() else None
    if newest is None:
        pytest.skip("no usable Python on this node")
    lock = tmp_path / "requirements.txt"
    lock.write_text("prophet==1.0.1\n", encoding="utf-8")
    result = _uv_compile(uv_cache, lock, newest.path, "--only-binary", ":all:", "--no-deps")
    assert result.returncode != 0
    assert "no usable wheels" in result.stderr
