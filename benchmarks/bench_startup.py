"""Benchmark codenv's start-up: short commands as whole processes, beside `python -c pass`.

Usage (from the project root):

    .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--python 3.11] [--json FILE]
        [--strict]

It prepares a home in a temporary directory with one tiny env (one wheel from a package index
on loopback, no core or seed packages), then times, round after round, `python -c pass`,
`python -c "import sqlalchemy.orm"` (the floor of every command that reads the database) and
`codenv --help`, `codenv list`, `codenv show tiny` and `codenv update tiny` (the plan is
unchanged: it must answer "already up to date"). Each figure is the median wall time of the
whole process, and its ratio to `python -c pass` (the median of the per-round ratios).
No network is used beyond loopback. Only the standard library: time.perf_counter around
subprocess.run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_support import BenchError, find_codenv, progress, project_revision, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.pkgindex import PackageIndex  # noqa: E402

ENV = "tiny"
TARGET_SECONDS = 0.2  # issue 9: each of these commands, as a whole process, on this machine
# Not codenv: Python alone, and Python importing the ORM that list, show and update need.
BASELINES = {
    "python -c pass": ("-c", "pass"),
    "import sqlalchemy.orm": ("-c", "import sqlalchemy.orm"),
}
COMMANDS = {
    "codenv --help": ("--help",),
    "codenv list": ("list",),
    f"codenv show {ENV}": ("show", ENV),
    f"codenv update {ENV}": ("update", ENV),
}


def environment(home: Path, index_url: str) -> dict[str, str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CODENV_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    # As in a user's shell: no PYTHONDONTWRITEBYTECODE (some machines set it globally), so
    # the warm-up round leaves the .pyc files every later run reads.
    return {**base, "CODENV_HOME": str(home), "CODENV_INDEX_URL": index_url, "NO_COLOR": "1"}


def prepare(codenv: str, env: dict[str, str], python: str, work: Path) -> None:
    requirements = work / "requirements.txt"
    requirements.write_text("alpha\n", "utf-8")
    progress(f"creating the env {ENV!r} (Python {python}, one wheel from the loopback index)")
    run(
        [
            *(codenv, "create", ENV, "--python", python),
            *("--no-core-packages", "--no-seed-packages", "-r", str(requirements)),
        ],
        env,
    )


def measure(codenv: str, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each command; a round runs each once, so drift hits all alike."""
    commands = {label: [sys.executable, *args] for label, args in BASELINES.items()}
    commands.update({label: [codenv, *args] for label, args in COMMANDS.items()})
    times: dict[str, list[float]] = {label: [] for label in commands}
    for round_number in range(runs + 1):  # round 0 warms up (bytecode, page cache)
        for label, args in commands.items():
            timed = run(args, env, sync=False)
            if label.startswith("codenv update") and "already up to date" not in timed.stdout:
                raise BenchError(f"the unchanged update did not say so:\n{timed.stdout}")
            if round_number:
                times[label].append(timed.seconds)
    return times


def summarise(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    floor = times["python -c pass"]
    return {
        label: {
            "median_s": statistics.median(seconds),
            "min_s": min(seconds),
            "max_s": max(seconds),
            "ratio_to_python": statistics.median(
                t / f for t, f in zip(seconds, floor, strict=True)
            ),
        }
        for label, seconds in times.items()
    }


def report(figures: dict[str, dict[str, float]], runs: int) -> bool:
    print(f"codenv start-up, whole processes, median of {runs} runs (min–max), wall time")
    print(f"{'command':<22} {'median':>8} {'min–max':>15} {'× python -c pass':>17}  target")
    met = True
    for label, figure in figures.items():
        verdict = "floor" if label == "import sqlalchemy.orm" else ""
        if label not in BASELINES:
            passed = figure["median_s"] <= TARGET_SECONDS
            met = met and passed
            verdict = f"≤ {TARGET_SECONDS} s {'PASS' if passed else 'MISS'}"
        spread = f"{figure['min_s']:.3f}–{figure['max_s']:.3f}"
        print(
            f"{label:<22} {figure['median_s']:>7.3f}s {spread:>15} "
            f"{figure['ratio_to_python']:>16.1f}×  {verdict}"
        )
    return met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument(
        "--python",
        default=f"{sys.version_info.major}.{sys.version_info.minor}",
        help="the env's Python version (default: the one running this script)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    codenv = find_codenv()
    load: dict[str, Any] = {"start": os.getloadavg()[0]}
    print(f"codenv: {project_revision()}; {os.cpu_count()} CPUs; load {load['start']:.2f}")
    with tempfile.TemporaryDirectory(prefix="codenv-bench-startup-") as temp:
        work = Path(temp)
        (work / "index").mkdir()
        with PackageIndex(work / "index") as index:
            index.add_wheel("alpha", "1.0")
            env = environment(work / "home", index.url)
            try:
                prepare(codenv, env, args.python, work)
                times = measure(codenv, env, args.runs)
            except BenchError as error:
                print(f"benchmark failed: {error}", file=sys.stderr)
                return 2
    load["end"] = os.getloadavg()[0]
    figures = summarise(times)
    met = report(figures, args.runs)
    print(f"load average (1 min): {load['start']:.2f} at the start, {load['end']:.2f} at the end")
    if max(load.values()) > (os.cpu_count() or 1):
        print("the machine was busy: short commands suffer most; measure again when it is quiet")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"figures": figures, "runs": times, "load": load}, indent=2)
        )
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
