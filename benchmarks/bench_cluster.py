"""Execution nodes: the time from a revision's commit to every node holding it, with 1 and 2
nodes following the database (`codenv sync`).

Usage (from the project root):

    .venv/bin/python benchmarks/bench_cluster.py [--rounds 5] [--interval 1] [--python 3.13]
        [--database-url postgresql+psycopg://…] [--json FILE]

The scenario, on this machine: a package index on loopback (small wheels made on the fly), a
PostgreSQL database (a new one on 127.0.0.1:5432 as `postgres`, dropped at the end, unless
--database-url names an empty one), a design home, and node homes each running
`codenv sync --interval N` (a follower, as under a service manager). Each round the design
node adds one new package to the env and builds (`codenv save bench --add pkgK --update`);
the figure is, per node, `node_revisions.updated_at` (the node recorded that it holds the
revision: installed from its own cache and the index, `current` switched) minus the build's
`finished_at` (the commit of the revision). First with one node, then with a second one
started (and caught up) beside it. Only public tools: the CLI, SQL reads of the tables
`codenv status` reads, and time.perf_counter around whole processes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bench_support import BenchError, find_codenv, progress, project_revision, run  # noqa: E402

from codenv.interpreters import discover  # noqa: E402
from support.pkgindex import PackageIndex  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ENV = "bench"
CATCH_UP_SECONDS = 300

HOLDERS = """
SELECT nr.node, nr.revision, nr.updated_at FROM node_revisions nr
JOIN code_envs e ON e.id = nr.env_id WHERE e.name = %s
"""
COMMITTED = """
SELECT b.finished_at FROM builds b JOIN code_envs e ON e.id = b.env_id
WHERE e.name = %s AND b.revision = %s AND b.status = 'succeeded' AND b.kind = 'update'
"""


@contextmanager
def _database(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    name = f"codenv_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


class Cluster:
    """The design home and the followers, on one database and one loopback index."""

    def __init__(self, root: Path, database: str, index: PackageIndex, interval: int) -> None:
        self.root, self.database, self.index, self.interval = root, database, index, interval
        self.codenv = find_codenv()
        self.followers: dict[str, subprocess.Popen[bytes]] = {}
        self.dsn = database.replace("postgresql+psycopg://", "postgresql://", 1)

    def environ(self, home: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CODENV_")}
        env.update(
            CODENV_HOME=str(self.root / home),
            CODENV_INDEX_URL=self.index.url,
            CODENV_DATABASE_URL=self.database,
            CODENV_SEED_PACKAGES="0",
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def design(self, *args: str) -> float:
        return run([self.codenv, *args], self.environ("design")).seconds

    def follow(self, node: str) -> None:
        args = [self.codenv, "sync", "--interval", str(self.interval)]
        environ = self.environ(node, CODENV_NODE_NAME=node)
        log = (self.root / f"{node}.log").open("wb")
        self.followers[node] = subprocess.Popen(args, env=environ, stdout=log, stderr=log)

    def stop(self) -> None:
        for process in self.followers.values():
            process.send_signal(signal.SIGTERM)
        for process in self.followers.values():
            process.wait(timeout=60)

    def holders(self) -> dict[str, tuple[int | None, Any]]:
        with psycopg.connect(self.dsn) as connection:
            rows = connection.execute(HOLDERS, (ENV,)).fetchall()
        return {node: (revision, at) for node, revision, at in rows}

    def committed(self, revision: int) -> Any:
        with psycopg.connect(self.dsn) as connection:
            found = connection.execute(COMMITTED, (ENV, revision)).fetchone()
        if found is None:
            raise BenchError(f"revision {revision} of {ENV} was not committed")
        return found[0]

    def wait_for(self, revision: int, timeout: float = CATCH_UP_SECONDS) -> dict[str, Any]:
        """When each follower recorded that it holds `revision`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.holders()
            if all(held.get(node, (None, None))[0] == revision for node in self.followers):
                return {node: held[node][1] for node in self.followers}
            for node, process in self.followers.items():
                if process.poll() is not None:
                    raise BenchError(f"the follower {node} exited: see {self.root}/{node}.log")
            time.sleep(0.05)
        raise BenchError(f"not every node holds revision {revision} after {timeout:.0f} s")


def _round(cluster: Cluster, revision: int) -> dict[str, Any]:
    package = f"pkg{revision}"
    cluster.index.add_wheel(package, "1.0")
    build = cluster.design("save", ENV, "--add", package, "--update")
    held = cluster.wait_for(revision)
    committed = cluster.committed(revision)
    lags = {node: (at - committed).total_seconds() for node, at in held.items()}
    return {"revision": revision, "build_seconds": build, "lag_seconds": lags}


def _phase(cluster: Cluster, rounds: int, first: int) -> list[dict[str, Any]]:
    found = []
    for number in range(rounds):
        progress(f"{len(cluster.followers)} node(s): round {number + 1}/{rounds}")
        found.append(_round(cluster, first + number))
    return found


def _summary(rounds: list[dict[str, Any]]) -> dict[str, float]:
    every = [max(item["lag_seconds"].values()) for item in rounds]
    each = [lag for item in rounds for lag in item["lag_seconds"].values()]
    return {
        "every node, median s": statistics.median(every),
        "every node, max s": max(every),
        "one node, median s": statistics.median(each),
        "design build, median s": statistics.median(item["build_seconds"] for item in rounds),
    }


def scenario(root: Path, database: str, args: argparse.Namespace) -> dict[str, Any]:
    (root / "index").mkdir()
    with PackageIndex(root / "index") as index:
        index.add_wheel("pkg1", "1.0")
        cluster = Cluster(root, database, index, args.interval)
        cluster.design("create", ENV, "--python", args.python, "-r", _requirements(root))
        try:
            cluster.follow("node-1")
            cluster.wait_for(1)
            one = _phase(cluster, args.rounds, 2)
            cluster.follow("node-2")
            cluster.wait_for(1 + args.rounds)  # the new node catches up first (not timed)
            two = _phase(cluster, args.rounds, 2 + args.rounds)
        finally:
            cluster.stop()
    return {"1 node": one, "2 nodes": two}


def _requirements(root: Path) -> str:
    path = root / "requirements.txt"
    path.write_text("pkg1\n")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=int, default=1, help="the followers' poll, seconds")
    parser.add_argument("--python", default=None, help="default: the newest found")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.python = args.python or discover().minors()[-1]
    with (
        tempfile.TemporaryDirectory(prefix="codenv-bench-cluster-") as tmp,
        _database(args.database_url) as database,
    ):
        found = scenario(Path(tmp), database, args)
    print(
        f"codenv {project_revision()}; Python {args.python}; PostgreSQL; {args.rounds} rounds;"
        f" followers poll every {args.interval} s"
    )
    print("commit of a revision -> node holds it (node_revisions.updated_at - finished_at):")
    for label, rounds in found.items():
        figures = _summary(rounds)
        print(f"  {label:8} " + "   ".join(f"{key} {value:6.2f}" for key, value in figures.items()))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
