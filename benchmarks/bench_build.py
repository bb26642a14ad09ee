"""Benchmark codenv builds against raw uv and the classic way (venv + pip), like for like.

Usage (from the project root):

    .venv/bin/python benchmarks/bench_build.py [--quick] [--runs 5] [--python 3.11]
        [--home DIR] [--set visual-ml:cpu] [--index-url URL] [--pip-compile]
        [--json FILE] [--strict] [--keep]

Every figure is a median over interleaved runs of this one run, on this machine, warm caches:

  (a) the same hashed lock installed offline:
      codenv create (its resolution reused, so it installs its lock offline)
      vs uv venv + uv pip sync --offline LOCK
  (b) the user's unpinned requirements, both resolving against the index:
      codenv create with CODENV_RESOLUTION_TTL=0 (and, labelled, with reuse on)
      vs uv venv + uv pip install -r requirements.txt
  (c) the same compile policy: codenv create vs python -m venv + pip install --no-compile of
      the same pins from a local wheel folder (with --pip-compile, also pip compiling .pyc)
  and codenv's start-up, an unchanged update, a rollback, the disk of ten envs of the set.

LOCK is the hashed lock codenv wrote for the set; requirements.txt the plan's requirement lines
(the set's, plus codenv's core package), so every way installs the same packages, which is
checked after each run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_report import report, save, summarise
from bench_support import (
    BenchError,
    Envs,
    Timed,
    du_bytes,
    find_codenv,
    find_uv,
    installed_pins,
    make_envs,
    pin,
    progress,
    project_revision,
    run,
    run_all,
)

DEFAULT_INDEX_URL = "https://pypi.org/simple"
DISK_ENVS = 10
QUICK_RUNS = 3
# Resolution reuse on, with a window longer than any run of the benchmark: the default 600 s
# could lapse between the warm-up and the last round, and (a) would then time a resolution.
REUSE_ON = {"CODENV_RESOLUTION_TTL": "86400"}
# What codenv's build log says when it reused a resolution and installed without the index.
REUSED = "reusing that lock"
OFFLINE = "no index access needed"

Measure = Callable[[int], dict[str, float]]


@dataclass
class Bench:
    args: argparse.Namespace
    root: Path
    codenv: str
    uv: str
    envs: Envs
    tag: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:6]}")
    interpreter: str = ""
    pinned: set[str] = field(default_factory=set)
    runs: dict[str, list[float]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=lambda: {"notes": []})

    @property
    def home(self) -> Path:
        return self.root / "codenv-home"

    @property
    def work(self) -> Path:
        return self.root / "work" / self.tag

    def name(self, suffix: str) -> str:
        return f"{self.tag}-{suffix}"

    def note(self, message: str) -> None:
        if message not in self.figures["notes"]:
            self.figures["notes"].append(message)

    def cli(self, *args: str, extra: dict[str, str] | None = None) -> Timed:
        return run([self.codenv, *args], {**self.envs.codenv, **(extra or {})})

    def create(self, name: str, extra: dict[str, str] | None = None) -> Timed:
        return self.cli(
            "create", name, "--python", self.args.python, "--set", self.args.set, extra=extra
        )

    def show(self, name: str) -> dict[str, Any]:
        return json.loads(self.cli("show", name, "--json").stdout)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- warm-up: the inputs

    def warm_up(self) -> None:
        """Fill the shared cache; take the lock, the requirements and the pins codenv used."""
        self.work.mkdir(parents=True, exist_ok=True)
        warm = self.name("warm")
        progress(f"warm-up: codenv create {warm} (fills the shared uv cache)")
        self.figures["first_create_s"] = self.create(warm).seconds
        info = self.show(warm)
        self.interpreter = info["interpreter"]
        self.figures["interpreter"] = self.interpreter
        recorded = Path(info["path"]) / "current" / ".codenv"
        shutil.copy(recorded / "lock.txt", self.work / "lock.txt")
        plan = json.loads((recorded / "plan.json").read_text("utf-8"))
        lines = [*plan["base"], *plan["sets"], *plan["requested"]]
        (self.work / "requirements.txt").write_text("".join(f"{x}\n" for x in lines), "utf-8")
        installed = json.loads(self.cli("installed", warm, "--json").stdout)["packages"]
        pins = sorted(f"{item['name']}=={item['version']}" for item in installed)
        (self.work / "pins.txt").write_text("".join(f"{x}\n" for x in pins), "utf-8")
        self.pinned = {pin(item["name"], item["version"]) for item in installed}
        self.figures["locked_packages"] = pins
        progress(f"lock: {len(pins)} packages (codenv's lock of {warm})")
        self.fill_wheel_folder()

    def fill_wheel_folder(self) -> None:
        """The classic way's input: every locked wheel in a local folder (not timed)."""
        progress("warm-up: pip wheel of the lock into a local wheel folder")
        tool = self.work / "pip-tool"
        run([self.interpreter, "-m", "venv", str(tool)], self.envs.pip)
        run(
            [
                str(tool / "bin" / "python"), "-m", "pip", "wheel", "--disable-pip-version-check",
                "--no-deps", "--index-url", self.args.index_url,
                "--wheel-dir", str(self.root / "wheels"), "-r", str(self.work / "lock.txt"),
            ],
            self.envs.pip,
        )  # fmt: skip
        version = run([str(tool / "bin" / "python"), "-m", "pip", "--version"], self.envs.pip)
        self.figures["pip_version"] = version.stdout.split()[1]
        shutil.rmtree(tool)

    # ----------------------------------------------------------------- the ways

    def codenv_reuse(self, index: int) -> dict[str, float]:
        name = self.name(f"r{index}")
        seconds = self.create(name, REUSE_ON).seconds
        self.check_codenv(name, reused=True)
        reported = self.show(name)["last_build"]["duration_seconds"]
        return {"codenv_reuse": seconds, "codenv_reuse_build": reported}

    def codenv_resolve(self, index: int) -> dict[str, float]:
        name = self.name(f"f{index}")
        seconds = self.create(name, {"CODENV_RESOLUTION_TTL": "0"}).seconds
        self.check_codenv(name, reused=False)
        return {"codenv_resolve": seconds}

    def check_codenv(self, name: str, reused: bool) -> None:
        installed = json.loads(self.cli("installed", name, "--json").stdout)["packages"]
        self.check_pins(name, {pin(item["name"], item["version"]) for item in installed}, reused)
        log = self.cli("logs", name).stdout
        if (REUSED in log) != reused:
            self.note(f"codenv create {name}: the log does not say the resolution was "
                      f"{'reused' if reused else 'made afresh'} ({REUSED!r})")  # fmt: skip
        if OFFLINE not in log:
            self.note(f"codenv create {name}: the log does not say it installed offline")

    def check_pins(self, where: str, pins: set[str], locked: bool) -> None:
        """Every way must install the lock; a fresh resolution may meet a new release."""
        if pins == self.pinned:
            return
        message = f"{where} differs from the lock: {sorted(pins ^ self.pinned)}"
        if locked:
            raise BenchError(message)
        self.note(message + " (a release published during the run?)")

    def typed(
        self, target: Path, commands: list[list[str]], env: dict[str, str], locked: bool
    ) -> float:
        """A way a user types as two commands (make a venv, install into it): both timed."""
        seconds = run_all([(command, env) for command in commands])
        python = target / "bin" / "python"
        self.check_pins(str(target), installed_pins(self.uv, self.envs.uv, python), locked)
        return seconds

    def raw_uv(self, key: str, index: int, install: list[str], locked: bool) -> dict[str, float]:
        target = self.work / f"{key}-{index}"
        commands = [
            [self.uv, "venv", str(target), "--python", self.interpreter, "--no-project"],
            [self.uv, *install, "--python", str(target / "bin" / "python")],
        ]
        seconds = self.typed(target, commands, self.envs.uv, locked)
        shutil.rmtree(target)
        return {key: seconds}

    def uv_offline(self, index: int) -> dict[str, float]:
        lock = str(self.work / "lock.txt")
        # The index URL names the cache entries uv looks in, as it does in codenv's install.
        install = ["pip", "sync", lock, "--offline", "--index-url", self.args.index_url]
        return self.raw_uv("uv_offline", index, install, locked=True)

    def uv_unpinned(self, index: int) -> dict[str, float]:
        requirements = str(self.work / "requirements.txt")
        install = ["pip", "install", "-r", requirements, "--index-url", self.args.index_url]
        return self.raw_uv("uv_unpinned", index, install, locked=False)

    def pip(self, key: str, index: int, compile_pyc: bool) -> dict[str, float]:
        target = self.work / f"{key}-{index}"
        commands = [
            [self.interpreter, "-m", "venv", str(target)],
            [
                str(target / "bin" / "python"), "-m", "pip", "install",
                "--disable-pip-version-check", "--no-index",
                "--find-links", str(self.root / "wheels"), "-r", str(self.work / "pins.txt"),
                *(() if compile_pyc else ("--no-compile",)),
            ],
        ]  # fmt: skip
        seconds = self.typed(target, commands, self.envs.pip, locked=True)
        self.figures["pip_env_bytes"] = du_bytes([target])
        shutil.rmtree(target)
        return {key: seconds}

    # ----------------------------------------------------------------- interleaved rounds

    def ways(self) -> list[tuple[str, Measure]]:
        ways: list[tuple[str, Measure]] = [
            ("codenv create (resolution reused)", self.codenv_reuse),
            ("uv venv + uv pip sync --offline", self.uv_offline),
            ("codenv create, CODENV_RESOLUTION_TTL=0", self.codenv_resolve),
            ("uv venv + uv pip install -r requirements", self.uv_unpinned),
            ("venv + pip --no-compile", lambda i: self.pip("pip_no_compile", i, False)),
        ]
        if self.args.pip_compile:
            ways.append(("venv + pip, compiling .pyc", lambda i: self.pip("pip_compile", i, True)))
        return ways

    def rounds(self) -> None:
        """Round 0 warms every way (not counted); each later round runs every way once.

        The order rotates from round to round, so no way always follows pip's large writes.
        """
        ways = self.ways()
        for index in range(self.args.runs + 1):
            shift = index % len(ways)
            for label, measure in ways[shift:] + ways[:shift]:
                what = "warm-up" if index == 0 else f"run {index}/{self.args.runs}"
                progress(f"{what}: {label}")
                for key, seconds in measure(index).items():
                    if index > 0:
                        self.runs.setdefault(key, []).append(seconds)

    # ----------------------------------------------------------------- the rest

    def startup_and_update(self) -> None:
        name = self.name("r1")
        times = max(self.args.runs, 3)
        flipped = dict(self.envs.codenv)
        if flipped.pop("PYTHONDONTWRITEBYTECODE", None) is None:
            flipped["PYTHONDONTWRITEBYTECODE"] = "1"
        progress("start-up and unchanged update")
        for _ in range(times):
            self.series("python_pass", run([self.interpreter, "-c", "pass"], self.envs.codenv))
            self.series("codenv_help", self.cli("--help"))
            self.series("update_unchanged", self.unchanged_update(name, self.envs.codenv))
            self.series("update_unchanged_flipped", self.unchanged_update(name, flipped))

    def unchanged_update(self, name: str, env: dict[str, str]) -> Timed:
        result = run([self.codenv, "update", name], env)
        if "already up to date" not in result.stdout:
            raise BenchError(f"codenv update {name} did not say 'already up to date':\n"
                             f"{result.stdout}")  # fmt: skip
        return result

    def series(self, key: str, timed: Timed) -> None:
        self.runs.setdefault(key, []).append(timed.seconds)

    def rollbacks(self) -> None:
        name = self.name("r1")
        progress(f"codenv save {name} --add six --update (revision 2), then rollbacks")
        self.cli("save", name, "--add", "six", "--update")
        if self.show(name)["active_revision"] != 2:
            raise BenchError(f"{name}: revision 2 is not active after save --update")
        current = self.home / "envs" / name / "current"
        for _ in range(self.args.runs):
            self.series("rollback", self.cli("rollback", name, "1"))
            if Path(os.readlink(current)).name != "1":
                raise BenchError(f"{current} does not point at revision 1 after the rollback")
            self.cli("rollback", name, "2")  # back again, untimed

    def disk(self) -> None:
        names = [self.name(f"d{index}") for index in range(DISK_ENVS)]
        for index, name in enumerate(names, 1):
            progress(f"disk: codenv create {name} ({index}/{DISK_ENVS})")
            self.create(name)
        dirs = [self.home / "envs" / name for name in names]
        self.figures["disk"] = {
            "one_env_bytes": du_bytes(dirs[:1]),
            "ten_envs_bytes": du_bytes(dirs),
            "uv_cache_bytes": du_bytes([self.home / "cache" / "uv"]),
            "pip_env_bytes": self.figures.pop("pip_env_bytes"),
        }

    def measure(self) -> None:
        self.warm_up()
        self.rounds()
        self.startup_and_update()
        self.rollbacks()
        self.disk()
        self.figures["runs"] = self.runs
        self.figures.update(summarise(self.runs, self.figures["disk"]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.11", help="Python version of the envs (3.11)")
    parser.add_argument("--runs", type=int, help="timed runs per way (5; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a first look")
    parser.add_argument(
        "--home",
        type=Path,
        help="work directory (codenv home, wheel folder, baseline venvs); kept afterwards. "
        "Default: a temporary directory, removed afterwards unless --keep.",
    )
    parser.add_argument("--set", default="visual-ml:cpu", help="package set (visual-ml:cpu)")
    parser.add_argument(
        "--index-url",
        default=os.environ.get("CODENV_INDEX_URL") or DEFAULT_INDEX_URL,
        help="package index for every way (CODENV_INDEX_URL or PyPI)",
    )
    parser.add_argument(
        "--pip-compile", action="store_true", help="also time pip compiling .pyc (slow)"
    )
    parser.add_argument("--json", type=Path, dest="json_file", help="save the figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument(
        "--keep-dont-write-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE from the environment (default: unset it, as in a "
        "user's shell)",
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    temporary = args.home is None
    root = Path(tempfile.mkdtemp(prefix="codenv-bench-")) if temporary else args.home
    root = root.absolute()
    root.mkdir(parents=True, exist_ok=True)
    envs = make_envs(root / "codenv-home", args.index_url, args.keep_dont_write_bytecode)
    bench = Bench(args=args, root=root, codenv=find_codenv(), uv=find_uv(), envs=envs)
    bench.figures["uv_version"] = run([bench.uv, "--version"], envs.uv).stdout.split()[1]
    bench.figures["codenv_revision"] = project_revision()
    bench.figures["load_average_1min"] = {"start": os.getloadavg()[0]}
    started = time.perf_counter()
    try:
        bench.measure()
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
        if temporary and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    bench.figures["load_average_1min"]["end"] = os.getloadavg()[0]
    checks = report(bench.figures, args)
    kept = f"work dir {root}" if args.keep or not temporary else "work dir removed"
    print(f"  (benchmark took {time.perf_counter() - started:.0f} s; {kept})")
    if args.json_file:
        save(args, bench.figures, checks)
    missed = any(not check["pass"] for check in checks)
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
