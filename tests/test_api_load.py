"""50 concurrent clients reading through the API while two builds run.

The server is the real one (uvicorn on loopback, in this process); two envs are updated through
the API with a local archive whose wheel build sleeps, so both builds run for seconds. Meanwhile
50 clients, each a thread with its own httpx client and the administrator's token, read the
env list, each env, its installed packages and the builds, as fast as they can for a fixed
time. The clients run in a child process (this file run as a script), so their own Python work
does not compete with the server's for one interpreter lock: what is measured is the server.

Asserted: no error response and no failed request at all, both builds seen running by the
readers and both succeeding, and a p95 latency under a generous bound. The figures are printed
on one line (`pytest -s` shows it); `benchmarks/bench_api_load.py` runs the same scenario with
more clients for longer.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.pkgindex import PackageIndex
from support.samples import slow_archive
from support.server import RunningServer, running_server, wait_for_build

CLIENTS = 50
SECONDS = 10.0
BUILD_SECONDS = 6.0  # each build's wheel build sleeps this long: both run during the reads
P95_BOUND = 2.0  # seconds; generous for 2 cores shared by server, clients and two builds
ENVS = ("load-a", "load-b")


@dataclass
class LoadReport:
    """What the readers saw: one latency per answered request, the errors, build statuses."""

    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    build_statuses: dict[str, list[str]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    @staticmethod
    def percentiles(latencies: list[float]) -> dict[str, float]:
        if len(latencies) < 2:
            only = latencies[0] if latencies else 0.0
            return {"p50": only, "p95": only, "p99": only, "max": only}
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(latencies)}

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "requests_per_second": round(self.requests / self.seconds, 1),
            "errors": len(self.errors),
            **{key: round(value, 4) for key, value in self.percentiles(self.latencies).items()},
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"api load: {s['clients']} clients for {s['seconds']} s: "
            f"{s['requests']} requests ({s['requests_per_second']}/s), {s['errors']} errors; "
            f"latency p50 {s['p50'] * 1000:.1f} ms, p95 {s['p95'] * 1000:.1f} ms, "
            f"p99 {s['p99'] * 1000:.1f} ms, max {s['max'] * 1000:.1f} ms"
        )

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> LoadReport:
        return cls(**json.loads(text))


def read_paths(envs: list[str], builds: list[str]) -> list[str]:
    paths = ["/api/v1/envs"]
    for env, build in zip(envs, builds, strict=True):
        paths += [f"/api/v1/envs/{env}", f"/api/v1/envs/{env}/installed", f"/api/v1/builds/{build}"]
    return paths


def read_load(
    url: str, token: str, envs: list[str], builds: list[str], clients: int, seconds: float
) -> LoadReport:
    """`clients` threads, each with its own client, reading in turn for `seconds`."""
    paths = read_paths(envs, builds)
    lock = threading.Lock()
    latencies: list[float] = []
    by_path: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    statuses: dict[str, set[str]] = defaultdict(set)
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def reader(number: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            start.wait()
            turn = number
            while time.monotonic() < deadline[0]:
                path = paths[turn % len(paths)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = client.get(path)
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(f"GET {path}: {type(error).__name__}: {error}")
                    continue
                took = time.perf_counter() - began
                with lock:
                    if response.status_code != 200:
                        errors.append(f"GET {path}: {response.status_code} {response.text[:200]}")
                        continue
                    latencies.append(took)
                    by_path[path].append(took)
                    if path.startswith("/api/v1/builds/"):
                        statuses[path.rsplit("/", 1)[1]].add(response.json()["status"])

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    return LoadReport(
        clients=clients,
        seconds=time.monotonic() - began,
        latencies=latencies,
        by_path=dict(by_path),
        errors=errors,
        build_statuses={build: sorted(seen) for build, seen in statuses.items()},
    )


def read_load_in_child(
    url: str, token: str, envs: list[str], builds: list[str], clients: int, seconds: float
) -> LoadReport:
    """`read_load` in a child process (this file as a script), so the clients do not share
    the server's interpreter lock."""
    arguments = {
        "url": url,
        "token": token,
        "envs": envs,
        "builds": builds,
        "clients": clients,
        "seconds": seconds,
    }
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if child.returncode != 0:
        raise AssertionError(f"the load process failed ({child.returncode}):\n{child.stderr}")
    return LoadReport.from_json(child.stdout)


@dataclass
class Scenario:
    report: LoadReport
    builds: list[dict[str, Any]]


def run_scenario(
    server: RunningServer,
    workdir: Path,
    python: str,
    *,
    clients: int = CLIENTS,
    seconds: float = SECONDS,
    build_seconds: float = BUILD_SECONDS,
    with_builds: bool = True,
) -> Scenario:
    """Two envs (built first), then an update of each with a slow local archive, started
    through the API; the readers run meanwhile; the builds' final states. Without
    `with_builds` (a baseline), the readers run with no build going on."""
    token = server.admin_token()
    with server.client(token) as admin:
        spec = {"python": python, "install_core_packages": False, "requested": "alpha"}
        created = [admin.post("/api/v1/envs", json={"name": env, **spec}) for env in ENVS]
        for response in created:
            assert response.status_code == 202, response.text
            assert wait_for_build(admin, response.json()["build_id"])["status"] == "succeeded"
        builds = [str(response.json()["build_id"]) for response in created]
        workdir.mkdir(parents=True, exist_ok=True)
        roots = admin.put("/api/v1/settings/local-source-roots", json={"roots": [str(workdir)]})
        assert roots.status_code == 200, roots.text
        for number, env in enumerate(ENVS if with_builds else ()):
            archive = slow_archive(workdir, f"slow{number}", "1.0", build_seconds)
            saved = admin.patch(
                f"/api/v1/envs/{env}/spec",
                json={"requested": f"alpha\n{archive}", "update": True},
            )
            assert saved.status_code == 200, saved.text
            builds[number] = saved.json()["update"]["build_id"]
        report = read_load_in_child(server.url, token, list(ENVS), builds, clients, seconds)
        finished = [wait_for_build(admin, build) for build in builds]
    return Scenario(report, finished)


@pytest.fixture
def server(tmp_path: Path, sample_index: PackageIndex) -> Iterator[RunningServer]:
    with running_server(tmp_path / "home", sample_index.url) as running:
        yield running


def test_fifty_readers_while_two_builds_run(
    server: RunningServer, tmp_path: Path, newest: str
) -> None:
    scenario = run_scenario(server, tmp_path / "archives", newest)
    report = scenario.report
    print(f"\n{report.line()}, while 2 builds ran")
    per_path = {path: report.percentiles(times) for path, times in report.by_path.items()}
    print(json.dumps({path: round(p["p95"] * 1000, 1) for path, p in per_path.items()}))

    assert report.errors == [], f"{len(report.errors)} failed requests: {report.errors[:5]}"
    assert report.requests > CLIENTS * 10, report.line()  # every client kept being answered
    build_ids = [str(build["id"]) for build in scenario.builds]
    assert set(report.by_path) == set(read_paths(list(ENVS), build_ids))  # all were read
    for build in scenario.builds:
        assert build["status"] == "succeeded", build
        assert "running" in report.build_statuses[str(build["id"])], report.build_statuses
    assert report.summary()["p95"] < P95_BOUND, report.line()


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    print(read_load(**given).to_json())
