"""What the sandbox costs a build: a warm `codenv create` of the Visual ML (CPU) env with the
sandbox required and with it turned off, interleaved in one run, as medians and a ratio.

    python benchmarks/bench_sandbox.py [--runs N] [--python 3.11]

Needs the public index (the set comes from PyPI). Both variants share one home and its warm
uv cache; each run creates a new env and deletes it. Resolution reuse is off
(CODENV_RESOLUTION_TTL=0) in the main comparison, so that every create resolves in its box:
the step the sandbox wraps most. A second pair with reuse on shows a typical warm create.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SET = "visual-ml:cpu"


def _codenv(home: Path, *args: str, ttl: str = "0") -> float:
    env = {**os.environ, "CODENV_HOME": str(home), "CODENV_RESOLUTION_TTL": ttl}
    start = time.perf_counter()
    command = [sys.executable, "-m", "codenv", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"codenv {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return seconds


def _set_sandbox(home: Path, mode: str) -> None:
    config = home / "config" / "server.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(config.read_text()) if config.exists() else {}
    current.setdefault("codeEnvsSettings", {})["sandbox"] = mode
    config.write_text(json.dumps(current))


def _create(home: Path, python: str, name: str, mode: str, ttl: str) -> float:
    _set_sandbox(home, mode)
    seconds = _codenv(home, "create", name, "--python", python, "--set", SET, ttl=ttl)
    _codenv(home, "delete", name, "--yes", "--delete-resources")
    return seconds


def _pair(home: Path, python: str, runs: int, ttl: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"required": [], "off": []}
    for run in range(runs):
        for mode in ("required", "off") if run % 2 == 0 else ("off", "required"):
            times[mode].append(_create(home, python, f"b{run}{mode[0]}", mode, ttl))
    return times


def _report(label: str, times: dict[str, list[float]]) -> None:
    boxed, bare = statistics.median(times["required"]), statistics.median(times["off"])
    ratios = [a / b for a, b in zip(times["required"], times["off"], strict=True)]
    print(
        f"{label:<44} sandboxed {boxed:6.2f} s   unsandboxed {bare:6.2f} s   "
        f"ratio {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default="3.11")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codenv-bench-sandbox-") as directory:
        home = Path(directory) / "home"
        print(f"warming the cache with {SET} on Python {args.python} ...", file=sys.stderr)
        _create(home, args.python, "warm", "off", "0")
        print(f"codenv create --set {SET}, warm cache, {args.runs} interleaved runs each")
        _report(
            "resolving every time (CODENV_RESOLUTION_TTL=0)",
            _pair(home, args.python, args.runs, "0"),
        )
        _report("reusing a fresh resolution (default)", _pair(home, args.python, args.runs, "600"))


if __name__ == "__main__":
    main()
