"""Benchmark codenv builds against the classic way (venv + pip) and raw uv, in one run.

Usage (from the project root):

    .venv/bin/python benchmarks/bench_build.py [--python 3.11] [--runs 3] [--home DIR]
        [--set visual-ml:cpu] [--index-url URL] [--json FILE] [--strict] [--keep]

Every figure is measured in this run, on this machine, with warm caches:

  A  codenv create NAME --python X --set SET      (whole CLI process, wall time)
  B  python -m venv + pip install --no-index --find-links WHEELS -r LOCK   (classic baseline)
  C  uv venv + uv pip install -r LOCK             (raw uv, same shared cache, same index)
     codenv update NAME with an unchanged plan    (must say "already up to date")
     codenv rollback NAME 1 after a revision 2 exists
     du -sb of ten envs of the same set together, against du -sb of one

LOCK is the exact `name==version` list codenv installed (codenv-runtime excluded), so the
three ways install the same packages. It uses the public package index (PyPI by default,
or CODENV_INDEX_URL / --index-url). See benchmarks/README.md.

Only the standard library is used: time.perf_counter around subprocess.run, and `du`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_INDEX_URL = "https://pypi.org/simple"
DISK_ENVS = 10

# Targets: (key, label, comparison, threshold)
TARGETS = (
    ("speedup_vs_pip", "codenv create vs venv+pip (B/A)", ">=", 20.0),
    ("ratio_vs_uv", "codenv create vs raw uv (A/C)", "<=", 1.5),
    ("update_unchanged_s", "codenv update, unchanged (s)", "<", 0.3),
    ("rollback_s", "codenv rollback (s)", "<", 0.5),
    ("disk_ratio", "du of 10 envs / du of 1 env", "<=", 1.15),
)


class BenchError(RuntimeError):
    pass


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


@dataclass
class Timed:
    seconds: float
    stdout: str
    stderr: str


def run(
    args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None, check: bool = True
) -> Timed:
    """Run one command; wall time measured around the whole process.

    Dirty pages left by the previous step (pip writes hundreds of MB) are flushed first, so
    their writeback is not billed to the next command.
    """
    os.sync()
    start = time.perf_counter()
    result = subprocess.run(
        list(args),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    seconds = time.perf_counter() - start
    if check and result.returncode != 0:
        raise BenchError(
            f"command failed (exit {result.returncode}): {' '.join(map(str, args))}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return Timed(seconds, result.stdout, result.stderr)


def du_bytes(paths: Sequence[Path]) -> int:
    """Apparent size of `paths` together; GNU du counts a hard-linked file once."""
    result = subprocess.run(
        ["du", "-sbc", *map(str, paths)], capture_output=True, text=True, check=True
    )
    last = result.stdout.strip().splitlines()[-1]
    return int(last.split()[0])


# --------------------------------------------------------------------------- environments


@dataclass
class Envs:
    """The process environments of the three ways, built once."""

    codenv: dict[str, str]
    pip: dict[str, str]
    uv: dict[str, str]


def make_envs(home: Path, index_url: str, keep_dont_write_bytecode: bool) -> Envs:
    base = dict(os.environ)
    base.pop("VIRTUAL_ENV", None)
    if not keep_dont_write_bytecode:
        # Not part of a user's usual shell; this machine sets it globally.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
    codenv = {**base, "CODENV_HOME": str(home), "CODENV_INDEX_URL": index_url, "NO_COLOR": "1"}
    # pip: no config file, no PIP_* variables (this machine has a global pip config).
    pip = {key: value for key, value in base.items() if not key.startswith("PIP_")}
    pip["PIP_CONFIG_FILE"] = os.devnull
    # uv: the same shared cache codenv uses, never download an interpreter, no config files.
    uv = {key: value for key, value in base.items() if not key.startswith("UV_")}
    uv.update(
        {
            "UV_CACHE_DIR": str(home / "cache" / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "UV_NO_PROGRESS": "1",
        }
    )
    return Envs(codenv, pip, uv)


def find_codenv() -> str:
    beside = Path(sys.executable).parent / "codenv"
    if beside.exists():
        return str(beside)
    found = shutil.which("codenv")
    if not found:
        raise BenchError("codenv not found: run this with the project's .venv/bin/python")
    return found


def project_revision() -> str:
    """Where the measured codenv comes from, and its commit ("-dirty": uncommitted changes)."""
    spec = importlib.util.find_spec("codenv")
    if spec is None or spec.origin is None:
        return "unknown"
    package = Path(spec.origin).parent
    try:
        result = subprocess.run(
            ["git", "-C", str(package), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        result = None
    commit = result.stdout.strip() if result is not None and result.returncode == 0 else ""
    return f"{package} ({'git ' + commit if commit else 'not a git checkout'})"


def find_uv() -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import uv; print(uv.find_uv_bin())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Bench:
    args: argparse.Namespace
    root: Path
    codenv: str
    uv: str
    envs: Envs
    tag: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:6]}")
    interpreter: str = ""
    lock: Path = Path()
    wheels: Path = Path()
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "codenv-home"

    @property
    def work(self) -> Path:
        return self.root / "work" / self.tag

    def name(self, suffix: str) -> str:
        return f"{self.tag}-{suffix}"

    def cli(self, *args: str, check: bool = True, extra: dict[str, str] | None = None) -> Timed:
        return run([self.codenv, *args], {**self.envs.codenv, **(extra or {})}, check=check)

    def create(self, name: str, extra: dict[str, str] | None = None) -> Timed:
        return self.cli(
            "create", name, "--python", self.args.python, "--set", self.args.set, extra=extra
        )

    def show(self, name: str) -> dict[str, Any]:
        return json.loads(self.cli("show", name, "--json").stdout)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- 1. warm the caches

    def warm_up(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        warm = self.name("warm")
        progress(f"warm-up: codenv create {warm} (fills the shared uv cache)")
        first = self.create(warm)
        self.figures["first_create_s"] = first.seconds
        info = self.show(warm)
        self.interpreter = info["interpreter"]
        self.figures["interpreter"] = self.interpreter
        installed = json.loads(self.cli("installed", warm, "--json").stdout)
        pins = sorted(
            f"{package['name']}=={package['version']}"
            for package in installed["packages"]
            if package["name"] != "codenv-runtime"
        )
        self.lock = self.work / "lock.txt"
        self.lock.write_text("".join(f"{pin}\n" for pin in pins), "utf-8")
        self.figures["locked_packages"] = pins
        progress(f"lock: {len(pins)} packages (from codenv installed {warm})")

        progress("warm-up: pip wheel of the lock into a local wheel folder")
        self.wheels = self.root / "wheels"
        tool = self.work / "pip-tool"
        run([self.interpreter, "-m", "venv", str(tool)], self.envs.pip)
        run(
            [
                str(tool / "bin" / "python"), "-m", "pip", "wheel", "--disable-pip-version-check",
                "--no-deps", "--index-url", self.args.index_url,
                "--wheel-dir", str(self.wheels), "-r", str(self.lock),
            ],
            self.envs.pip,
        )  # fmt: skip
        self.figures["pip_version"] = run(
            [str(tool / "bin" / "python"), "-m", "pip", "--version"], self.envs.pip
        ).stdout.split()[1]
        shutil.rmtree(tool)

        progress("warm-up: one raw uv venv + uv pip install")
        self.uv_install(self.work / "uv-warm")
        shutil.rmtree(self.work / "uv-warm")
        progress("warm-up: one venv + pip install from the wheel folder")
        self.pip_install(self.work / "pip-warm")
        shutil.rmtree(self.work / "pip-warm")

    # ----------------------------------------------------------------- 2-4. builds

    def pip_install(self, target: Path, compile_pyc: bool = True) -> tuple[float, float]:
        venv = run([self.interpreter, "-m", "venv", str(target)], self.envs.pip)
        install = run(
            [
                str(target / "bin" / "python"), "-m", "pip", "install",
                "--disable-pip-version-check", "--no-index",
                "--find-links", str(self.wheels), "-r", str(self.lock),
                *(() if compile_pyc else ("--no-compile",)),
            ],
            self.envs.pip,
        )  # fmt: skip
        return venv.seconds, install.seconds

    def uv_install(self, target: Path) -> tuple[float, float]:
        venv = run(
            [self.uv, "venv", str(target), "--python", self.interpreter, "--no-project"],
            self.envs.uv,
        )
        install = run(
            [
                self.uv, "pip", "install", "-r", str(self.lock),
                "--python", str(target / "bin" / "python"), "--index-url", self.args.index_url,
            ],
            self.envs.uv,
        )  # fmt: skip
        return venv.seconds, install.seconds

    def same_packages(self, python: Path) -> bool:
        frozen = run([self.uv, "pip", "freeze", "--python", str(python)], self.envs.uv).stdout
        wanted = {line.lower() for line in self.lock.read_text("utf-8").split()}
        got = {line.lower() for line in frozen.split()}
        got -= {line for line in got if line.startswith(("pip==", "setuptools==", "wheel=="))}
        return wanted == got

    def builds(self) -> None:
        a: list[float] = []
        a_build: list[float] = []
        a_fresh: list[float] = []
        b: list[tuple[float, float]] = []
        c: list[tuple[float, float]] = []
        b_nopyc: list[float] = []
        for index in range(1, self.args.runs + 1):
            name = self.name(f"a{index}")
            progress(f"run {index}/{self.args.runs}: (A) codenv create {name}")
            a.append(self.create(name).seconds)
            a_build.append(self.show(name)["last_build"]["duration_seconds"])
            # (A') the same, resolving against the index every time (no resolution reuse).
            name = self.name(f"f{index}")
            progress(f"run {index}/{self.args.runs}: (A') codenv create {name}, fresh resolve")
            a_fresh.append(self.create(name, {"CODENV_RESOLUTION_TTL": "0"}).seconds)

            target = self.work / f"pip-{index}"
            progress(f"run {index}/{self.args.runs}: (B) python -m venv + pip install")
            b.append(self.pip_install(target))
            if not self.same_packages(target / "bin" / "python"):
                raise BenchError(f"the pip env {target} does not hold exactly the lock")
            if index == 1:
                self.figures["pip_env_bytes"] = du_bytes([target])
            shutil.rmtree(target)

            # For reference only: the same without .pyc compilation (uv does not compile).
            target = self.work / f"pip-nopyc-{index}"
            progress(f"run {index}/{self.args.runs}: (B') the same with pip --no-compile")
            b_nopyc.append(sum(self.pip_install(target, compile_pyc=False)))
            shutil.rmtree(target)

            target = self.work / f"uv-{index}"
            progress(f"run {index}/{self.args.runs}: (C) uv venv + uv pip install")
            c.append(self.uv_install(target))
            if not self.same_packages(target / "bin" / "python"):
                raise BenchError(f"the uv env {target} does not hold exactly the lock")
            shutil.rmtree(target)

        self.figures["runs"] = {
            "A_codenv_create_s": a,
            "A_build_reported_s": a_build,
            "A_fresh_resolve_s": a_fresh,
            "B_venv_s": [venv for venv, _ in b],
            "B_pip_install_s": [install for _, install in b],
            "B_total_s": [venv + install for venv, install in b],
            "B_no_compile_total_s": b_nopyc,
            "C_uv_venv_s": [venv for venv, _ in c],
            "C_uv_install_s": [install for _, install in c],
            "C_total_s": [venv + install for venv, install in c],
        }

    # ----------------------------------------------------------------- 5. unchanged update

    def updates(self) -> None:
        name = self.name("a1")
        times = []
        for _ in range(max(self.args.runs, 3)):
            result = self.cli("update", name)
            if "already up to date" not in result.stdout:
                raise BenchError(
                    f"codenv update {name} did not say 'already up to date':\n{result.stdout}"
                )
            times.append(result.seconds)
        self.figures["runs"]["update_unchanged_s"] = times
        # The same with PYTHONDONTWRITEBYTECODE flipped, to show what it changes.
        flipped = dict(self.envs.codenv)
        if "PYTHONDONTWRITEBYTECODE" in flipped:
            del flipped["PYTHONDONTWRITEBYTECODE"]
            label = "unset"
        else:
            flipped["PYTHONDONTWRITEBYTECODE"] = "1"
            label = "1"
        other = [
            run([self.codenv, "update", name], flipped).seconds
            for _ in range(max(self.args.runs, 3))
        ]
        self.figures["runs"][f"update_unchanged_PYTHONDONTWRITEBYTECODE_{label}_s"] = other
        # The CLI's floor: start-up and imports, no work.
        self.figures["runs"]["codenv_help_s"] = [
            self.cli("--help").seconds for _ in range(max(self.args.runs, 3))
        ]

    # ----------------------------------------------------------------- 6. rollback

    def rollbacks(self) -> None:
        name = self.name("a1")
        progress(f"codenv save {name} --add six --update (revision 2)")
        self.cli("save", name, "--add", "six", "--update")
        if self.show(name)["active_revision"] != 2:
            raise BenchError(f"{name}: revision 2 is not active after save --update")
        current = self.home / "envs" / name / "current"
        times = []
        for _ in range(self.args.runs):
            times.append(self.cli("rollback", name, "1").seconds)
            if os.readlink(current).rstrip("/").split("/")[-1] != "1":
                raise BenchError(f"{current} does not point at revision 1 after the rollback")
            self.cli("rollback", name, "2")  # back again, untimed
        self.figures["runs"]["rollback_s"] = times

    # ----------------------------------------------------------------- 7. disk

    def disk(self) -> None:
        names = [self.name(f"d{index}") for index in range(DISK_ENVS)]
        creates = []
        for index, name in enumerate(names, 1):
            progress(f"disk: codenv create {name} ({index}/{DISK_ENVS})")
            creates.append(self.create(name).seconds)
        dirs = [self.home / "envs" / name for name in names]
        one = du_bytes(dirs[:1])
        together = du_bytes(dirs)
        self.figures["runs"]["disk_envs_create_s"] = creates
        self.figures["disk"] = {
            "one_env_bytes": one,
            "ten_envs_bytes": together,
            "uv_cache_bytes": du_bytes([self.home / "cache" / "uv"]),
        }

    # ----------------------------------------------------------------- summary

    def summarise(self) -> None:
        runs = self.figures["runs"]
        med = {key: statistics.median(values) for key, values in runs.items()}
        self.figures["medians"] = med
        disk = self.figures["disk"]
        self.figures["results"] = {
            "speedup_vs_pip": med["B_total_s"] / med["A_codenv_create_s"],
            "ratio_vs_uv": med["A_codenv_create_s"] / med["C_total_s"],
            "update_unchanged_s": med["update_unchanged_s"],
            "rollback_s": med["rollback_s"],
            "disk_ratio": disk["ten_envs_bytes"] / disk["one_env_bytes"],
        }


def verdicts(results: Mapping[str, float]) -> list[dict[str, Any]]:
    out = []
    for key, label, op, threshold in TARGETS:
        value = results[key]
        ok = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        out.append(
            {"key": key, "label": label, "value": value, "target": f"{op} {threshold:g}",
             "pass": ok}
        )  # fmt: skip
    return out


def _mb(count: int) -> str:
    return f"{count / 1e6:,.0f} MB"


def report(bench: Bench) -> list[dict[str, Any]]:
    f = bench.figures
    med = f["medians"]
    runs = f["runs"]
    res = f["results"]
    disk = f["disk"]

    def line(label: str, key: str) -> str:
        values = " ".join(f"{value:6.2f}" for value in runs[key])
        return f"  {label:<46} {med[key]:8.3f}   [{values}]"

    dwb = "kept (=1)" if bench.args.keep_dont_write_bytecode else "unset"
    print()
    print(
        f"codenv build benchmark - set {bench.args.set}, Python {bench.args.python} "
        f"({f['interpreter']}), {bench.args.runs} runs, warm caches"
    )
    print(
        f"  index {bench.args.index_url}; {len(f['locked_packages'])} locked packages; "
        f"pip {f['pip_version']}; uv {f['uv_version']}; {os.cpu_count()} CPUs; "
        f"PYTHONDONTWRITEBYTECODE {dwb}"
    )
    print(f"  codenv {f['codenv_revision']}")
    print(f"  work dir {bench.root}")
    load = f["load_average_1min"]
    print(f"  load average (1 min) at start {load['start']:.1f}, at end {load['end']:.1f}", end="")
    if max(load.values()) > (os.cpu_count() or 1):
        print("  - WARNING: the machine was busy; figures are noisier and slower than idle")
    else:
        print()
    print()
    print(f"  {'figure':<46} {'median s':>8}   [runs]")
    print(line("(A) codenv create (CLI wall time)", "A_codenv_create_s"))
    print(line("    of which the build, as codenv reports it", "A_build_reported_s"))
    print(line("(A') codenv create, resolving every time", "A_fresh_resolve_s"))
    print(line("(B) python -m venv + pip install (total)", "B_total_s"))
    print(line("    python -m venv", "B_venv_s"))
    print(line("    pip install --no-index --find-links", "B_pip_install_s"))
    print(line("(B') the same with pip --no-compile (no .pyc)", "B_no_compile_total_s"))
    print(line("(C) uv venv + uv pip install (total)", "C_total_s"))
    print(line("    uv venv", "C_uv_venv_s"))
    print(line("    uv pip install -r lock", "C_uv_install_s"))
    print(line("codenv update, unchanged plan", "update_unchanged_s"))
    for key in runs:
        if key.startswith("update_unchanged_PYTHONDONTWRITEBYTECODE_"):
            value = key.removeprefix("update_unchanged_").removesuffix("_s")
            print(line(f"    same, with {value}", key))
    print(line("codenv --help (CLI start-up floor, no work)", "codenv_help_s"))
    print(line("codenv rollback NAME 1", "rollback_s"))
    print(line(f"codenv create x{DISK_ENVS} for the disk figure", "disk_envs_create_s"))
    print(f"  {'first create (warm-up, cache possibly cold)':<46} {f['first_create_s']:8.3f}")
    print()
    print(
        f"  disk: one env {_mb(disk['one_env_bytes'])}; {DISK_ENVS} envs together "
        f"{_mb(disk['ten_envs_bytes'])} (copies would be "
        f"{_mb(DISK_ENVS * disk['one_env_bytes'])}); shared uv cache "
        f"{_mb(disk['uv_cache_bytes'])}; one pip env (with .pyc) {_mb(f['pip_env_bytes'])}"
    )
    print()
    print(
        f"  codenv create is {res['speedup_vs_pip']:.1f}x faster than python -m venv + pip "
        f"(B/A), and takes {res['ratio_vs_uv']:.2f}x the time of raw uv (A/C)"
    )
    print(
        f"  (against pip --no-compile, which leaves .pyc to the first import: "
        f"{med['B_no_compile_total_s'] / med['A_codenv_create_s']:.1f}x)"
    )
    print(
        f"  resolving against the index on every create (A', CODENV_RESOLUTION_TTL=0): "
        f"{med['B_total_s'] / med['A_fresh_resolve_s']:.1f}x faster than pip, "
        f"{med['A_fresh_resolve_s'] / med['C_total_s']:.2f}x raw uv"
    )
    print()
    checks = verdicts(res)
    print(f"  {'target':<36} {'measured':>10}  {'wanted':>8}  verdict")
    for check in checks:
        unit = "x" if check["key"] in ("speedup_vs_pip", "ratio_vs_uv", "disk_ratio") else " s"
        print(
            f"  {check['label']:<36} {check['value']:>9.3f}{unit:<2} {check['target']:>8}  "
            f"{'PASS' if check['pass'] else 'MISS'}"
        )
    misses = [check for check in checks if not check["pass"]]
    print()
    print(
        f"  {len(checks) - len(misses)}/{len(checks)} targets met"
        + (f"; MISSED: {', '.join(check['key'] for check in misses)}" if misses else "")
    )
    return checks


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.11", help="Python version of the envs (3.11)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (3)")
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
        help="package index for all three ways (CODENV_INDEX_URL or PyPI)",
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
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    temporary = args.home is None
    root = Path(tempfile.mkdtemp(prefix="codenv-bench-")) if temporary else args.home
    root = root.absolute()
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        args=args,
        root=root,
        codenv=find_codenv(),
        uv=find_uv(),
        envs=make_envs(root / "codenv-home", args.index_url, args.keep_dont_write_bytecode),
    )
    bench.figures["uv_version"] = run([bench.uv, "--version"], bench.envs.uv).stdout.split()[1]
    bench.figures["codenv_revision"] = project_revision()
    started = time.perf_counter()
    bench.figures["load_average_1min"] = {"start": os.getloadavg()[0]}
    try:
        bench.warm_up()
        bench.builds()
        progress("codenv update, unchanged plan")
        bench.updates()
        bench.rollbacks()
        bench.disk()
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(bench.root / "work" / bench.tag, ignore_errors=True)
        if temporary and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    bench.figures["load_average_1min"]["end"] = os.getloadavg()[0]
    bench.summarise()
    checks = report(bench)
    print(f"  (benchmark took {time.perf_counter() - started:.0f} s)")
    if args.json_file:
        payload = {
            "set": args.set,
            "python": args.python,
            "runs": args.runs,
            "index_url": args.index_url,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "pythondontwritebytecode": "kept" if args.keep_dont_write_bytecode else "unset",
            "figures": bench.figures,
            "targets": checks,
        }
        args.json_file.parent.mkdir(parents=True, exist_ok=True)
        args.json_file.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        print(f"  figures saved to {args.json_file}")
    missed = any(not check["pass"] for check in checks)
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
