"""Load on the REST API: N concurrent readers while two builds run (or, with --no-builds, idle).

Usage (from the project root):

    .venv/bin/python benchmarks/bench_api_load.py [--clients 100] [--seconds 30]
        [--build-seconds 25] [--no-builds] [--python 3.13] [--json FILE]

The scenario is the one `tests/test_api_load.py` asserts on (50 clients, 10 s): the real server
(uvicorn on loopback) on a fresh home in a temporary directory, a package index on loopback,
two envs updated through the API with a local archive whose wheel build sleeps
`--build-seconds`, and the readers (threads, each with its own httpx client and an
administrator's token, in a child process) reading the env list, each env, its installed
packages and the two builds for `--seconds`. Prints the request count, requests per second,
the error count, and p50/p95/p99/max latency, overall and per endpoint. No network is used
beyond loopback. Exit code 1 when any request failed or a build did not succeed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from codenv.interpreters import discover  # noqa: E402
from support.pkgindex import PackageIndex  # noqa: E402
from support.server import running_server  # noqa: E402
from test_api_load import LoadReport, run_scenario  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--build-seconds", type=float, default=None, help="default: 0.8 × seconds")
    parser.add_argument("--no-builds", action="store_true", help="the readers alone (baseline)")
    parser.add_argument("--python", default=None, help="default: the newest found")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    python = args.python or discover().minors()[-1]
    build_seconds = args.build_seconds or 0.8 * args.seconds

    with tempfile.TemporaryDirectory(prefix="codenv-bench-api-") as temp:
        work = Path(temp)
        (work / "index").mkdir()
        with PackageIndex(work / "index") as index:
            index.add_wheel("alpha", "1.0")
            with running_server(work / "home", index.url) as server:
                print(
                    f"{args.clients} clients, {args.seconds} s, "
                    + ("no builds" if args.no_builds else f"2 builds of ~{build_seconds} s"),
                    file=sys.stderr,
                )
                scenario = run_scenario(
                    server,
                    work / "archives",
                    python,
                    clients=args.clients,
                    seconds=args.seconds,
                    build_seconds=build_seconds,
                    with_builds=not args.no_builds,
                )

    report = scenario.report
    print(report.line() + (", no builds" if args.no_builds else ", while 2 builds ran"))
    per_path = {path: LoadReport.percentiles(times) for path, times in report.by_path.items()}
    for path, figures in sorted(per_path.items()):
        shown = ", ".join(f"{key} {value * 1000:.1f} ms" for key, value in figures.items())
        print(f"  {path}: {len(report.by_path[path])} requests, {shown}")
    for build in scenario.builds:
        took = build["duration_seconds"]
        print(f"  build {build['id']} ({build['env']}): {build['status']}, {took} s")
    for error in report.errors[:10]:
        print(f"  error: {error}")
    if args.json:
        figures: dict[str, Any] = {
            **report.summary(),
            "builds": not args.no_builds,
            "per_path": per_path,
            "build_results": [
                {key: build[key] for key in ("id", "env", "status", "duration_seconds")}
                for build in scenario.builds
            ],
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    failed = report.errors or any(b["status"] != "succeeded" for b in scenario.builds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
