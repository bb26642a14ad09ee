"""Benchmark bundles: export with wheels, offline import cold and warm, against a warm create.

Usage (from the project root):

    .venv/bin/python benchmarks/bench_bundles.py [--runs 3] [--python 3.11]
        [--set visual-ml:cpu] [--index-url URL] [--json FILE]

One run, this machine, medians over interleaved rounds:

  baseline    codenv create of the set's env on a warm cache (its resolution reused)
  export      codenv export ENV --with-wheels (pip's download cache warm after the warm-up)
  import cold codenv import BUNDLE --offline into a new home (empty uv cache), in a network
              namespace with no network when `unshare -n` works here
  import warm the same bundle imported again into that home under another name (uv's cache
              now holds every wheel)

Each figure is printed with its ratio to the baseline. Only public tools: time.perf_counter
around whole processes. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import BenchError, find_codenv, make_envs, progress, project_revision, run

DEFAULT_INDEX_URL = "https://pypi.org/simple"
REUSE_ON = {"CODENV_RESOLUTION_TTL": "86400"}


def _netns() -> list[str]:
    probe = ["unshare", "-n", "true"]
    usable = shutil.which("unshare") and subprocess.run(probe, check=False).returncode == 0
    return ["unshare", "-n"] if usable else []


def _round(
    codenv: str, env: dict[str, str], root: Path, number: int, args: Any
) -> dict[str, float]:
    design = {**env, **REUSE_ON}
    name = f"b{number}"
    create = run([codenv, "create", name, "--python", args.python, "--set", args.set], design)
    bundle = root / f"{name}.codenv.tar"
    export = run([codenv, "export", name, "--with-wheels", "-o", str(bundle)], design)
    target = {**env, "CODENV_HOME": str(root / f"import-{number}")}
    offline = [*_netns(), codenv, "import", str(bundle), "--offline"]
    cold = run(offline, target)
    warm = run([*offline, "--as", f"{name}-again"], target)
    shutil.rmtree(root / f"import-{number}", ignore_errors=True)
    return {
        "create (warm)": create.seconds,
        "export --with-wheels": export.seconds,
        "import --offline, cold cache": cold.seconds,
        "import --offline, warm cache": warm.seconds,
        "bundle MB": bundle.stat().st_size / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--set", default="visual-ml:cpu")
    parser.add_argument("--index-url", default=DEFAULT_INDEX_URL)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    codenv = find_codenv()
    with tempfile.TemporaryDirectory(prefix="codenv-bench-bundles-") as tmp:
        root = Path(tmp)
        env = make_envs(root / "design", args.index_url, keep_dont_write_bytecode=False).codenv
        progress("warm-up: first create and export (fills uv's and pip's caches)")
        _round(codenv, env, root, 0, args)
        rounds = []
        for number in range(1, args.runs + 1):
            progress(f"round {number}/{args.runs}")
            rounds.append(_round(codenv, env, root, number, args))
    figures = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    base = figures["create (warm)"]
    print(f"codenv {project_revision()}; set {args.set}, Python {args.python}, {args.runs} runs")
    print(f"network namespace for the offline imports: {'yes' if _netns() else 'no'}")
    for key, value in figures.items():
        if key == "bundle MB":
            print(f"  {key:32} {value:8.1f}")
        else:
            print(f"  {key:32} {value:8.2f} s   {value / base:5.2f}x the warm create")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "rounds": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
