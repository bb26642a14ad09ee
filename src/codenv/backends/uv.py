"""The default installer: uv, with one shared cache on the envs' filesystem (hard links)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from uv import find_uv_bin

from codenv.backends.base import InstalledPackage, LogSink, Run, clean_environ, run_logged
from codenv.backends.index_probe import refused_index
from codenv.backends.uv_metadata import (
    RESOLVER_WARNINGS,
    Repairs,
    find_dist_info,
    read_as_pip,
    read_metadata,
)
from codenv.backends.uv_options import translate
from codenv.domain.checks import split_check_report
from codenv.domain.errors import BuildFailed
from codenv.domain.install_options import index_urls
from codenv.domain.legacy_metadata import MetadataRepair, repair_metadata
from codenv.domain.plan import Plan

_NO_WHEEL = "uv builds it from source, and refuses the metadata of what it builds"
# What uv says when --no-build meets a requirement that only a build can install.
_NEEDS_BUILD = (
    "building from source is disabled",
    "building source distributions is disabled",
    "--no-build",
)


class UvInstaller:
    """uv, splitting an install by trust. Installing wheels runs no package code: that runs
    outside the box, hard-linking from the one shared cache (fast, little disk). What must
    be built from source (sdists, local sources, editables) runs package code: that install
    runs in the build's box, whose view of the shared cache is a throw-away overlay, so
    nothing a build backend writes there reaches another env (those files are copied into
    the revision instead of hard-linked)."""

    name = "uv"

    def __init__(self, cache_dir: Path) -> None:
        self.uv = find_uv_bin()
        self.cache_dir = cache_dir
        self.box_read_only: tuple[Path, ...] = (Path(self.uv),)

    @property
    def environ(self) -> dict[str, str]:
        return clean_environ(
            {
                "UV_CACHE_DIR": str(self.cache_dir),
                # Never fetch an interpreter: envs use the node's own, by absolute path.
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_CONFIG": "1",
                "UV_LINK_MODE": "hardlink",
                "UV_NO_PROGRESS": "1",
            }
        )

    def _run(
        self,
        what: str,
        args: list[str],
        run: Run,
        *,
        offline: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Run uv with the build's index options; a failure that a refused index password
        explains says so (uv itself reports it as "not found")."""
        options = translate(run.options)
        env = {**self.environ, **options.environ, **(extra_env or {})}
        command = [self.uv, *args, *options.args, *(["--offline"] if offline else [])]
        try:
            run_logged(what, command, run, env)
        except BuildFailed as error:
            refused = None if offline else refused_index(index_urls(run.options))
            if refused is None:
                raise
            raise BuildFailed(
                f"{what} failed: {refused}\n{error.message}", returncode=error.returncode
            ) from error

    def resolve(self, run: Run, plan: Plan, requirements: Path, lock: Path, upgrade: bool) -> None:
        for note in translate(run.options).notes:
            run.log.write(f"note: {note}")
        args = [
            "pip",
            "compile",
            str(requirements),
            "--output-file",
            str(lock),
            "--python",
            plan.interpreter,
            "--generate-hashes",
            "--no-header",
            "--quiet",
        ]
        if upgrade:
            args.append("--upgrade")
        self._compile("resolving", args, run, plan.interpreter, lock.parent)

    def _compile(self, what: str, args: list[str], run: Run, python: str, scratch: Path) -> None:
        """`uv pip compile`, again with repaired metadata as long as uv names metadata it
        cannot read that pip reads (uv_metadata.py)."""
        repairs = Repairs(scratch / "repaired-metadata.toml")
        while True:
            seen: list[str] = []
            failure = None
            try:
                teed = replace(run, log=_Tee(run.log, seen))
                self._run(what, [*args, *repairs.args], teed, extra_env=RESOLVER_WARNINGS)
            except BuildFailed as error:
                failure = error
            if not self._repair_round(run, python, repairs, seen, failure):
                return

    def _repair_round(
        self,
        run: Run,
        python: str,
        repairs: Repairs,
        output: list[str],
        failure: BuildFailed | None,
    ) -> bool:
        """Repair what uv could not read in `output`; True when uv should resolve again.
        Raises `failure`, with why no repair helps, when it stands."""
        found = repairs.new([*output, failure.message if failure else ""])
        again = False
        for name, version in found:
            run.log.write(
                f"uv cannot read the metadata of {name} {version}: reading it as pip does"
            )
            repair = self._read_as_pip(run, python, name, version, repairs.config.parent)
            repairs.add((name, version), repair)
            if isinstance(repair, MetadataRepair) and repair.repaired:
                again = True
                for change in repair.changes:
                    run.log.write(f"repaired metadata: {change}")
                continue
            why = list(repair.failures) if isinstance(repair, MetadataRepair) else [repair]
            for line in why or [
                f"{name} {version}: pip reads its metadata as uv does: nothing to repair"
            ]:
                run.log.write(line)
                repairs.notes.append(line)
        if again:
            return True
        if failure is not None:
            message = "\n".join([failure.message, *repairs.notes])
            raise BuildFailed(message, returncode=failure.returncode)
        return False

    def _read_as_pip(
        self, run: Run, python: str, name: str, version: str, scratch: Path
    ) -> MetadataRepair | str:
        """The metadata of `name` `version`'s wheel, repaired, or why it cannot be read.

        uv itself fetches the wheel it would install (the build's indexes and options) into
        a scratch target: no package code runs, so outside the box, into the shared cache,
        which the install then reuses. A source distribution is no help: uv refuses the
        metadata of what it builds."""
        target = scratch / f"metadata-{name}"
        args = ["pip", "install", "--no-deps", "--no-build", "--target", str(target)]
        args += ["--python", python, f"{name}=={version}"]
        held: list[str] = []
        trusted = Run(_Held(held), run.timeout, run.cancelled, run.options)
        try:
            self._run("reading metadata", args, trusted)
            return repair_metadata(name, version, read_metadata(find_dist_info(target, name)))
        except BuildFailed as error:
            if _needs_build(error):
                return f"{name} {version} has no wheel for this interpreter: {_NO_WHEEL}"
            _replay(held, run)
            return f"reading the metadata of {name} {version} failed: {error.message}"
        except OSError as error:
            return f"reading the metadata of {name} {version} failed: {error}"
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def create_venv(self, run: Run, plan: Plan, target: Path) -> None:
        # No package code runs here: outside the box, like installing wheels.
        args = ["venv", str(target), "--python", plan.interpreter, "--no-project"]
        trusted = Run(run.log, run.timeout, run.cancelled, run.options)
        run_logged("creating the venv", [self.uv, *args, *plan.venv_options], trusted, self.environ)

    def install(self, run: Run, lock: Path, python: Path) -> None:
        """Install the lock: wheels outside the box first; what needs a build, in it."""
        if run.box is None:  # an unsandboxed node: its administrator's explicit choice
            self._install_cached_first(run, lock, python, ())
            return
        held: list[str] = []
        trusted = Run(_Held(held), run.timeout, run.cancelled, run.options)
        try:
            self._install_cached_first(trusted, lock, python, ("--no-build",))
        except BuildFailed as error:
            if not _needs_build(error):
                _replay(held, run)
                raise
        else:
            _replay(held, run)
            return
        run.log.write("some packages are built from source: installing in the sandbox")
        args = ["pip", "sync", str(lock), "--python", str(python), "--link-mode", "copy"]
        self._run("installing", args, run)

    def _install_cached_first(
        self, run: Run, lock: Path, python: Path, extra: tuple[str, ...]
    ) -> None:
        """The lock pins every version and hash: when the shared cache holds them all,
        installing needs no index at all, which saves uv's revalidation of every index
        page. The index options still name the cache entries uv looks in, offline or not.

        Offline, uv may also fail on an index page cached before a release the lock pins
        (resolving, in its box, saw the new page but kept nothing): any failure but "needs a
        build" is retried online."""
        args = ["pip", "sync", str(lock), "--python", str(python), *extra]
        held: list[str] = []
        offline = Run(_Held(held), run.timeout, run.cancelled, run.options, run.box)
        try:
            self._run("installing", args, offline, offline=True)
        except BuildFailed as error:
            if _needs_build(error):
                raise
        else:
            run.log.write("installed from the shared cache (no index access needed)")
            return
        run.log.write("some packages are not in the shared cache yet: installing from the index")
        self._run("installing", args, run)

    def install_at(
        self, run: Run, interpreter: str, venv_options: Sequence[str], lock: Path, env_path: Path
    ) -> None:
        """A venv made and installed at `env_path` as the run's box shows it: an env at its
        path in a container image (shebangs and pyvenv.cfg name that path). Everything runs in
        the box; the shared cache is read through its overlay, so files are copied. Bytecode
        is compiled with SOURCE_DATE_EPOCH set: checked-hash pycs, the same bytes at every
        build (reproducible images), valid whatever the files' times."""
        create = [self.uv, "venv", str(env_path), "--python", interpreter, "--no-project"]
        run_logged("creating the image's venv", [*create, *venv_options], run, self.environ)
        python = str(env_path / "bin" / "python")
        args = ["pip", "sync", str(lock), "--python", python, "--link-mode", "copy"]
        args.append("--compile-bytecode")
        epoch = {"SOURCE_DATE_EPOCH": "0"}
        held: list[str] = []
        try:
            self._run("installing", args, replace(run, log=_Held(held)), offline=True,
                      extra_env=epoch)  # fmt: skip
        except BuildFailed:
            run.log.write("some packages are not in the shared cache: installing from the index")
            self._run("installing", args, run, extra_env=epoch)
        else:
            _replay(held, run)

    def install_editables(self, run: Run, paths: list[str] | tuple[str, ...], python: Path) -> None:
        args = ["pip", "install", "--python", str(python)]
        for path in paths:
            args += ["-e", path]
        self._run("installing editable packages", args, run)

    def check(self, run: Run, python: Path) -> tuple[str, ...]:
        """`uv pip check`, judged by pip's rule: only missing or conflicting dependencies
        fail the build; tag metadata that disagrees with a wheel's name is a warning, and
        so is METADATA that only uv cannot read (its repair, as resolving made it)."""
        args = [self.uv, "pip", "check", "--python", str(python)]
        held: list[str] = []
        trusted = Run(_Held(held), run.timeout, run.cancelled)
        try:
            run_logged("checking", args, trusted, self.environ)
        except BuildFailed:
            report = read_as_pip(split_check_report(held), python.parent.parent)
            _replay(held, run)
            if report.problems or not report.warnings:
                raise
            return report.warnings
        _replay(held, run)
        return ()

    def write_pylock(self, run: Run, interpreter: str, lock: Path, out: Path) -> None:
        """The exact lock `lock` as PEP 751 `pylock.toml` (uv writes the standard's format):
        its pins resolve to themselves, so nothing changes but the format."""
        args = ["pip", "compile", str(lock), "--output-file", str(out), "--python", interpreter]
        args += ["--format", "pylock.toml", "--no-header", "--quiet"]
        self._compile("writing pylock.toml", args, run, interpreter, out.parent)

    def installed(self, run: Run, python: Path) -> list[InstalledPackage]:
        result = subprocess.run(
            [self.uv, "pip", "list", "--format", "json", "--python", str(python)],
            capture_output=True,
            text=True,
            env=self.environ,
            timeout=min(run.timeout, 120),
            check=False,
        )
        if result.returncode != 0:
            raise BuildFailed(
                f"listing installed packages failed: {result.stderr.strip()}",
                returncode=result.returncode,
            )
        return [
            InstalledPackage(item["name"], item["version"], item.get("editable_project_location"))
            for item in json.loads(result.stdout)
        ]


def _replay(lines: list[str], run: Run) -> None:
    for line in lines:
        run.log.write(line)


def _needs_build(error: BuildFailed) -> bool:
    text = error.message.lower()
    return any(marker in text for marker in _NEEDS_BUILD)


class _Tee:
    """A log that also keeps a copy of every line (what uv said, read once it has ended)."""

    def __init__(self, log: LogSink, lines: list[str]) -> None:
        self.log, self.lines = log, lines

    def write(self, text: str) -> None:
        self.log.write(text)
        self.lines.append(text)


class _Held:
    """A log that keeps lines back, for output shown only if it turns out to matter."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text)
