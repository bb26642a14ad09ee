"""Builds per minute: the embedded default (one server running builds in its own threads)
against builds on Celery workers, 1 and 2 of them under host names of their own.

Usage (from the project root, as root: each worker runs in a UTS namespace of its own):

    .venv/bin/python benchmarks/bench_workers.py [--builds 32] [--rounds 2] [--concurrency 2]
        [--broker redis://127.0.0.1:6379/0] [--python 3.13] [--json FILE]

A package index on loopback serves small wheels made on the fly (`r0p0`…, each requiring
`alpha`). Five phases, all started first, each with a home of its own and `codenv serve
--workers 1` (one process, `CODENV_MAX_PARALLEL_BUILDS=2`): threads on SQLite (the embedded
default: the baseline), threads on PostgreSQL (the database's share), and the server sending
builds to the broker (a queue of its own, a fresh PostgreSQL database) for 1 and 2 `codenv
worker --concurrency C` and for 1 worker of 2C (the second worker's slots without it); each
worker runs in a UTS namespace under a host name of its own and shares its server's home
(one machine). Each phase builds an untimed warm-up env of every package (uv's cache is
then warm) and one env alone (its latency). Then each round creates, on each phase in turn
(the order reversed every other round), N envs each requesting a package of its own,
through the API as fast as it answers; a phase's figures are the medians of its rounds.
They come from the builds' own timestamps: builds/min is N over the time from the first
creation to the last end. CPU per build is the user+system time of codenv's processes
(server, workers and the uv they ran: /proc/PID/stat) over a batch, divided by N;
PostgreSQL's and Redis's are in the machine's busy cores (/proc/stat, with other sessions'
work). Only public tools: the REST API, `codenv serve`, `codenv worker`, time and /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bench_support import BenchError, progress, project_revision  # noqa: E402

from codenv.interpreters import discover  # noqa: E402
from support.databases import fresh_database_url  # noqa: E402
from support.pkgindex import PackageIndex  # noqa: E402
from support.server import serving_process, wait_for_build  # noqa: E402
from support.workers import (  # noqa: E402
    Worker,
    broker_queue,
    host_name,
    require_uts_namespaces,
    start_worker,
)

SERVER_BUILD_THREADS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Phase:
    label: str
    database: str  # "sqlite" (the home's own file) or "postgresql"
    workers: int  # 0: the server's own build threads
    concurrency: int  # build threads of the server, or of each worker


def phases(concurrency: int) -> tuple[Phase, ...]:
    """The last phase has the slots of two workers in one: what the second worker adds
    beyond its slots."""
    return (
        Phase("threads, SQLite (baseline)", "sqlite", 0, SERVER_BUILD_THREADS),
        Phase("threads, PostgreSQL", "postgresql", 0, SERVER_BUILD_THREADS),
        Phase(f"1 worker x {concurrency}", "postgresql", 1, concurrency),
        Phase(f"2 workers x {concurrency}", "postgresql", 2, concurrency),
        Phase(f"1 worker x {2 * concurrency}", "postgresql", 1, 2 * concurrency),
    )


def busy_cores() -> tuple[int, int]:
    """The machine's busy and total clock ticks so far, summed over its cores (/proc/stat)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User + system time of `pids` themselves, and of the children they waited for (uv)."""
    own = children = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own += int(fields[11]) + int(fields[12])  # utime stime
        children += int(fields[13]) + int(fields[14])  # cutime cstime
    return own / CLOCK_TICKS, children / CLOCK_TICKS


@dataclass
class Deployed:
    phase: Phase
    client: httpx.Client  # an administrator's, to the phase's server
    pids: list[int]  # the server's and the workers' processes


@contextmanager
def deployment(
    phase: Phase, root: Path, index: PackageIndex, args: argparse.Namespace
) -> Iterator[Deployed]:
    """The phase's server (and workers), up until the block ends."""
    progress(f"starting {phase.label}")
    root.mkdir()
    environ = {
        "CODENV_SEED_PACKAGES": "0",
        "CODENV_MAX_PARALLEL_BUILDS": str(SERVER_BUILD_THREADS),
    }
    with ExitStack() as stack:
        if phase.database == "postgresql":
            environ["CODENV_DATABASE_URL"] = stack.enter_context(
                fresh_database_url("postgresql", root)
            )
        if phase.workers:
            environ["CODENV_BROKER_URL"] = args.broker
            environ["CODENV_BUILD_QUEUE"] = stack.enter_context(broker_queue(args.broker))
        home = root / "home"
        server = stack.enter_context(serving_process(home, index.url, 1, environ))
        assert server.pid is not None
        full = {**os.environ, "CODENV_HOME": str(home), "CODENV_INDEX_URL": index.url, **environ}
        workers: list[Worker] = []
        for number in range(phase.workers):
            host = host_name(f"bench-host-{number}")
            workers.append(start_worker(host, full, concurrency=phase.concurrency))
            stack.callback(workers[-1].stop)
        for worker in workers:
            worker.wait_ready()
        client = stack.enter_context(server.client(server.admin_token()))
        yield Deployed(phase, client, [server.pid, *(worker.process.pid for worker in workers)])


def create(client: httpx.Client, python: str, name: str, requested: str) -> str:
    spec = {"python": python, "install_core_packages": False, "requested": requested}
    response = client.post("/api/v1/envs", json={"name": name, **spec})
    if response.status_code != 202:
        raise BenchError(f"creating {name}: {response.status_code} {response.text}")
    return str(response.json()["build_id"])


def finished(client: httpx.Client, build_id: str) -> dict[str, Any]:
    build = wait_for_build(client, build_id, timeout=600)
    if build["status"] != "succeeded":
        raise BenchError(f"build {build_id} of {build['env']}: {build['status']}, {build['error']}")
    return build


def at(build: dict[str, Any], key: str) -> float:
    return datetime.fromisoformat(build[key]).timestamp()


def between(build: dict[str, Any], start: str, end: str) -> float:
    return at(build, end) - at(build, start)


def batch(deployed: Deployed, packages: list[str], python: str) -> dict[str, Any]:
    """Envs requesting `packages`, one each, created at once; the figures of their builds."""
    client, pids = deployed.client, deployed.pids
    cpu_before, machine_before = cpu_seconds(pids), busy_cores()
    ids = [create(client, python, f"env-{name}", name) for name in packages]
    builds = [finished(client, build_id) for build_id in ids]
    cpu_after, machine = cpu_seconds(pids), busy_cores()
    busy = (machine[0] - machine_before[0]) / (machine[1] - machine_before[1])
    created = [at(b, "created_at") for b in builds]
    span = max(at(b, "finished_at") for b in builds) - min(created)
    hosts = Counter(build["host"] for build in builds)
    return {
        "builds_per_minute": 60 * len(builds) / span,
        "seconds": span,
        "submitted_s": max(created) - min(created),
        "build_median_s": statistics.median(
            between(b, "started_at", "finished_at") for b in builds
        ),
        "wait_median_s": statistics.median(between(b, "created_at", "started_at") for b in builds),
        "cpu_per_build_s": (sum(cpu_after) - sum(cpu_before)) / len(builds),
        "own_cpu_per_build_s": (cpu_after[0] - cpu_before[0]) / len(builds),
        "machine_busy_cores": busy * (os.cpu_count() or 1),
        "builds_per_host": sorted(hosts.values(), reverse=True),
    }


def packages(args: argparse.Namespace) -> list[list[str]]:
    """The packages each round's envs request, one each: `r0p0`, `r0p1`, …"""
    return [[f"r{r}p{n}" for n in range(args.builds)] for r in range(args.rounds)]


def measure(deployments: list[Deployed], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Warm-up and one build alone on each, then `args.rounds` rounds of one batch on each,
    in an order rotated from round to round; each round requests packages of its own (no
    resolution is reused from an earlier round)."""
    rounds = packages(args)
    results: list[dict[str, Any]] = []
    for deployed in deployments:
        progress(f"{deployed.phase.label}: warm-up")
        everything = "\n".join(name for names in rounds for name in names)
        finished(deployed.client, create(deployed.client, args.python, "warm", everything))
        alone = finished(deployed.client, create(deployed.client, args.python, "alone", "alpha"))
        results.append(
            {
                "phase": deployed.phase.label,
                "alone_s": between(alone, "created_at", "finished_at"),
                "alone_build_s": between(alone, "started_at", "finished_at"),
                "rounds": [],
            }
        )
    for number in range(args.rounds):
        order = range(len(deployments))
        for index in reversed(order) if number % 2 else order:
            progress(f"round {number + 1}: {deployments[index].phase.label}")
            found = batch(deployments[index], rounds[number], args.python)
            results[index]["rounds"].append(found)
    for found in results:  # every figure of a batch but the hosts: the median of the rounds
        figures = [key for key in found["rounds"][0] if key != "builds_per_host"]
        found.update({key: statistics.median(r[key] for r in found["rounds"]) for key in figures})
    return results


def report(
    results: list[dict[str, Any]], args: argparse.Namespace, load: tuple[float, float]
) -> None:
    base = results[0]["builds_per_minute"]
    print(
        f"codenv {project_revision()}; Python {args.python}; {os.cpu_count()} CPUs;"
        f" {args.builds} builds per batch, {args.rounds} rounds (medians); server: 1 process,"
        f" {SERVER_BUILD_THREADS} build threads; broker {args.broker}"
    )
    print(f"load average (1 min): {load[0]:.2f} at the start, {load[1]:.2f} at the end")
    for found in results:
        each = ", ".join(f"{r['builds_per_minute']:.0f}" for r in found["rounds"])
        hosts = " ".join(str(r["builds_per_host"]) for r in found["rounds"])
        print(
            f"  {found['phase']:27} {found['builds_per_minute']:6.1f} builds/min"
            f" ({found['builds_per_minute'] / base:4.2f}x; rounds {each}); batch"
            f" {found['seconds']:.1f} s, submitted in {found['submitted_s']:.1f} s; per host"
            f" {hosts}\n  {'':27} build {found['build_median_s']:.2f} s, wait"
            f" {found['wait_median_s']:.2f} s (medians); alone {found['alone_s']:.2f} s"
            f" ({found['alone_build_s']:.2f} s building)\n  {'':27} codenv"
            f" {found['cpu_per_build_s']:.2f} CPU-s/build ({found['own_cpu_per_build_s']:.2f} in"
            f" its Python, the rest in uv); machine busy {found['machine_busy_cores']:.2f} cores"
        )
    print(model(results))


def model(results: list[dict[str, Any]]) -> str:
    cores = os.cpu_count() or 1
    cpu = statistics.median(found["cpu_per_build_s"] for found in results)
    python = statistics.median(found["own_cpu_per_build_s"] for found in results)
    alone = statistics.median(found["alone_build_s"] for found in results)
    return (
        "model: a build takes d s alone, c CPU-seconds, p of them in codenv's Python (one\n"
        "thread at a time per process: the GIL). A host of C cores running W worker processes\n"
        "of k build threads in all finishes at most 60 x min(k/d, C/c, W/p) builds/min, and\n"
        "H such hosts the sum of theirs, while the shared database and broker keep up (a build\n"
        "costs them a few statements, its log lines and one message). Workers on one host add\n"
        "slots and GILs, not cores: past 60C/c a second one only overlaps waits.\n"
        f"here: C = {cores}, d ~ {alone:.2f} s, c ~ {cpu:.2f} s, p ~ {python:.2f} s (medians"
        " over the phases):\n"
        f"  each slot at most 60/d = {60 / alone:.0f} builds/min, each process 60/p ="
        f" {60 / python:.0f}, the cores 60C/c = {60 * cores / cpu:.0f},\n"
        "  less what PostgreSQL, the broker, the client and other sessions take. The workers\n"
        f"  share this machine's {cores} cores: no speed-up beyond the overlap of waits is\n"
        "  expected from the second one."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=32, help="builds per batch (distinct envs)")
    parser.add_argument("--rounds", type=int, default=2, help="batches per phase, interleaved")
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's build threads")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--python", default=None, help="default: the newest found")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.python = args.python or discover().minors()[-1]
    require_uts_namespaces()
    start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="codenv-bench-workers-") as tmp, ExitStack() as up:
        (Path(tmp) / "index").mkdir()
        index = up.enter_context(PackageIndex(Path(tmp) / "index"))
        index.add_wheel("alpha", "1.0")
        for name in (name for names in packages(args) for name in names):
            index.add_wheel(name, "1.0", requires=["alpha>=1.0"])
        deployments = [
            up.enter_context(deployment(phase, Path(tmp) / f"phase{number}", index, args))
            for number, phase in enumerate(phases(args.concurrency))
        ]
        results = measure(deployments, args)
    report(results, args, (start, os.getloadavg()[0]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, AssertionError, pytest.skip.Exception) as error:
        # tests/support reports a missing service (PostgreSQL, root for namespaces) by skipping
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
