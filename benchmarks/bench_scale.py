"""One node at real size: 1,000 envs (3 revisions each, builds and audit rows to match) and 200
users in 20 groups, read by 1, 20 and 100 concurrent clients of a real `codenv serve`.

Usage (from the project root):

    .venv/bin/python benchmarks/bench_scale.py [--envs 1000] [--users 200] [--seconds 8]
        [--clients 1,20,100] [--workers N] [--baseline-ref HEAD] [--no-baseline] [--json FILE]

Making the node (quickly): one env is built through the service layer with the fake installer
(`codenv.backends.fake.FakeInstaller`, builds inline): created with 40 requested packages, then
rebuilt twice, so it has 3 revisions, 3 builds and their audit rows, written by codenv itself.
Its rows (env, revisions, builds, audit entries) are then copied directly in one transaction
for the other 999 envs (new names, build ids, owners and group grants), so every env looks the
same to a read. Users and groups are made through the service layer (no password: no argon2).
Only the first env has a directory on disk.

The readers (`--driver python`): threads, each with its own httpx client, as `reader` (a plain
user in one group, who may use the envs granted to it and those usable by all: permissions are
filtered), for `--seconds` per endpoint and client count: the env list (first page:
`?limit=50`), one env, its installed packages, its builds (`?limit=20`) and the console's env
list page (`/`, first page). Each request picks an env the reader may use at random. Prints
p50/p95/p99, requests/s, errors, and the server's memory: the peak RSS (VmHWM) summed over its
processes. With `--driver hey` (the default when Debian's `hey` is installed), `hey` sends the
same reads for one env the reader may use: a Go client leaves the 2 cores to the server, where
20 Python threads took most of one.

"Today" is `--baseline-ref` (default HEAD: the last commit, without this work), extracted with
`git archive` into a temporary directory and run the same way (its own node, made by its own
code; its server has one process: it has no --workers). Both run on this checkout's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "bench-admin-password"
READER_PASSWORD = "bench-reader-password"
GROUPS = 20
UNUSED_INDEX = "http://127.0.0.1:9/simple"
ENDPOINTS = ("list", "show", "installed", "builds", "console")
DEFAULT_WORKERS = "codenv serve's default number of"
TARGETS = {"p95_ms_20_clients": 50.0, "requests_per_s": 300.0, "memory_mb": 300.0}


# --- making the node (runs in a child process, on the code under test) --------------------


def populate(home: Path, envs_count: int, users: int, python: str) -> dict[str, Any]:
    from codenv.backends.fake import FakeInstaller
    from codenv.domain.spec import EnvSpec
    from codenv.services import accounts, builds, envs, permissions
    from codenv.services.actor import Actor
    from codenv.services.app import open_codenv
    from codenv.settings import load_settings

    started = time.perf_counter()
    fake = FakeInstaller()
    settings = load_settings(home, {"CODENV_INDEX_URL": UNUSED_INDEX})
    app = open_codenv(settings, "inline", installer=fake, editables=fake)
    admin = Actor.local_admin()
    try:
        accounts.ensure_initial_admin(app, ADMIN_PASSWORD)
        for group in range(GROUPS):
            accounts.create_group(app, admin, f"team-{group:02d}")
        for user in range(users):
            name, team = f"user-{user:03d}", f"team-{user % GROUPS:02d}"
            accounts.create_user(app, admin, name, None, groups=[team])
        accounts.create_user(app, admin, "reader", READER_PASSWORD, groups=["team-00"])
        requested = "\n".join(f"package-{n:02d}" for n in range(40))
        envs.create_env(app, admin, "env-0000", EnvSpec(python, requested=requested))
        for _ in range(2):
            builds.request_update(app, admin, "env-0000", rebuild=True)
        permissions.set_permissions(app, admin, "env-0000", grants=[("team-00", "use")])
        made = time.perf_counter() - started
        _copy_env(app, "env-0000", envs_count, users)
    finally:
        app.close()
    return {"service_layer_s": made, "total_s": time.perf_counter() - started}


def _copy_env(app: Any, template: str, count: int, users: int) -> None:
    """The template's rows, copied for env-0001.. (each owned by a user, granted to a team;
    one in ten usable by all)."""
    from sqlalchemy import insert, select

    from codenv.storage.models import (
        AuditRow,
        BuildRow,
        CodeEnvRow,
        EnvGrantRow,
        GroupRow,
        RevisionRow,
    )

    envs_t, revs_t = CodeEnvRow.__table__, RevisionRow.__table__
    builds_t, audit_t, grants_t = BuildRow.__table__, AuditRow.__table__, EnvGrantRow.__table__
    with app.db.engine.begin() as connection:
        env = dict(
            connection.execute(select(envs_t).where(envs_t.c.name == template)).mappings().one()
        )
        revisions = [
            dict(r)
            for r in connection.execute(
                select(revs_t).where(revs_t.c.env_id == env["id"])
            ).mappings()
        ]
        built = [
            dict(r)
            for r in connection.execute(
                select(builds_t).where(builds_t.c.env_id == env["id"])
            ).mappings()
        ]
        audit = [
            dict(r)
            for r in connection.execute(
                select(audit_t).where(audit_t.c.target == template)
            ).mappings()
        ]
        teams = dict(connection.execute(select(GroupRow.name, GroupRow.id)).all())
        new_revisions, new_builds, new_audit, new_grants = [], [], [], []
        for number in range(1, count):
            name = f"env-{number:04d}"
            row = {k: v for k, v in env.items() if k != "id"}
            row.update(name=name, name_key=name, owner=f"user-{number % users:03d}")
            row["usable_by_all"] = number % 10 == 0
            env_id = connection.execute(insert(envs_t).values(**row)).inserted_primary_key[0]
            ids = {b["id"]: uuid.uuid4().hex for b in built}
            new_builds += [
                {**b, "id": ids[b["id"]], "env_id": env_id, "env_name": name} for b in built
            ]
            new_revisions += [
                {
                    **{k: v for k, v in r.items() if k != "id"},
                    "env_id": env_id,
                    "build_id": ids.get(r["build_id"], r["build_id"]),
                }
                for r in revisions
            ]
            new_audit += [
                {**{k: v for k, v in a.items() if k != "id"}, "target": name} for a in audit
            ]
            team = teams[f"team-{number % GROUPS:02d}"]
            new_grants.append({"env_id": env_id, "group_id": team, "level": "use"})
        for table, rows in (
            (revs_t, new_revisions),
            (builds_t, new_builds),
            (audit_t, new_audit),
            (grants_t, new_grants),
        ):
            if rows:
                connection.execute(insert(table), rows)


# --- the server and its readers ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment(source: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(source),
        "CODENV_HOME": str(home),
        "CODENV_INDEX_URL": UNUSED_INDEX,
        "CODENV_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


def start_server(
    source: Path, home: Path, workers: int | None, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "codenv", "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=child_environment(source, home), stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"codenv serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/login", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("codenv serve did not answer")


def server_processes(pid: int) -> list[Path]:
    """/proc entries of the server and every process it started (its resource tracker aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if int(entry.name) != pid and parent != pid:
                continue
            if b"resource_tracker" not in (entry / "cmdline").read_bytes():
                found.append(entry)
        except (OSError, ValueError):
            continue
    return found


def server_memory_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of the server and every process it started, in MB."""
    total = 0
    for entry in server_processes(pid):
        try:
            found = re.search(r"VmHWM:\s+(\d+) kB", (entry / "status").read_text())
        except OSError:
            continue
        total += int(found.group(1)) if found else 0
    return total / 1024


def reset_peak_memory(pid: int) -> None:
    """Start the servers' peak RSS again from their RSS now (Linux: `clear_refs` 5), so that
    the peak measured is that of the reads, not of the logins before them: checking a password
    is argon2's 64 MiB in whichever process checks it."""
    for entry in server_processes(pid):
        try:
            (entry / "clear_refs").write_text("5")
        except OSError:
            continue


class Readers:
    """Logged-in clients (a token for the API, a session for the console) and their paths."""

    def __init__(self, url: str, visible: list[str]) -> None:
        import httpx

        self.url, self.visible = url, visible
        session = httpx.Client(base_url=url, timeout=60)
        answer = session.post(
            "/api/v1/session", json={"name": "reader", "password": READER_PASSWORD}
        )
        answer.raise_for_status()
        session.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        token = session.post("/api/v1/tokens", json={"name": "bench"})
        token.raise_for_status()
        self.token, self.cookies = token.json()["secret"], dict(session.cookies)
        session.close()

    def client(self) -> Any:
        import httpx

        return httpx.Client(
            base_url=self.url,
            timeout=120,
            headers={"Authorization": f"Bearer {self.token}"},
            cookies=self.cookies,
        )

    def path(self, endpoint: str, rng: random.Random) -> str:
        env = rng.choice(self.visible)
        return {
            "list": "/api/v1/envs?limit=50",
            "show": f"/api/v1/envs/{env}",
            "installed": f"/api/v1/envs/{env}/installed",
            "builds": f"/api/v1/envs/{env}/builds?limit=20",
            "console": "/",
        }[endpoint]


def drive(readers: Readers, endpoint: str, clients: int, seconds: float) -> dict[str, Any]:
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        mine, wrong = [], []
        with readers.client() as client:
            while time.monotonic() < stop:
                path = readers.path(endpoint, rng)
                started = time.perf_counter()
                try:
                    answer = client.get(path)
                    if answer.status_code != 200:
                        wrong.append(f"{path}: {answer.status_code} {answer.text[:120]}")
                except Exception as error:
                    wrong.append(f"{path}: {error!r}")
                mine.append(time.perf_counter() - started)
        with lock:
            times.extend(mine)
            errors.extend(wrong)

    began = time.monotonic()
    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else [times[0]] * 99
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": len(times),
        "rps": len(times) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def drive_hey(readers: Readers, endpoint: str, clients: int, seconds: float) -> dict[str, Any]:
    """The same reads by `hey` (Debian's package: a load generator in Go), which leaves the
    server the CPU that a Python client's threads take; one env for every request."""
    path = readers.path(endpoint, random.Random(0))
    header = (
        f"Cookie: {'; '.join(f'{k}={v}' for k, v in readers.cookies.items())}"
        if endpoint == "console"
        else f"Authorization: Bearer {readers.token}"
    )
    ran = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(clients), "-H", header, readers.url + path],
        capture_output=True,
        text=True,
        check=True,
    )
    out = ran.stdout
    cuts = {n: float(v) * 1000 for n, v in re.findall(r"(\d+)% in ([\d.]+) secs", out)}
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    requests = sum(codes.values())
    wrong = requests - codes.get(200, 0) + len(re.findall(r"^\s*\[\d+\]\s+Get", out, re.M))
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": requests,
        "rps": float(re.findall(r"Requests/sec:\s+([\d.]+)", out)[0]),
        "p50_ms": cuts["50"],
        "p95_ms": cuts["95"],
        "p99_ms": cuts["99"],
        "errors": wrong,
        "first_error": None if not wrong else out[-500:],
    }


def visible_envs(count: int) -> list[str]:
    """What `reader` (team-00) may use: the envs granted to team-00 and those usable by all."""
    return [f"env-{n:04d}" for n in range(count) if n % GROUPS == 0 or n % 10 == 0]


def measure(
    label: str, source: Path, args: argparse.Namespace, workers: int | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"codenv-bench-scale-{label}-") as temp:
        home = Path(temp) / "home"
        print(
            f"[{label}] making the node ({args.envs} envs, {args.users} users)...",
            file=sys.stderr,
            flush=True,
        )
        made = subprocess.run(
            [
                sys.executable,
                __file__,
                "--populate",
                str(home),
                "--envs",
                str(args.envs),
                "--users",
                str(args.users),
                "--python",
                args.python,
            ],
            env=child_environment(source, home),
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(made.stderr[-3000:])
        timing = json.loads(made.stdout.strip().splitlines()[-1])
        process, url = start_server(source, home, workers, Path(temp) / "serve.log")
        try:
            readers = Readers(url, visible_envs(args.envs))
            logged_in = server_memory_mb(process.pid)
            reset_peak_memory(process.pid)
            results = []
            for clients in args.clients:
                for endpoint in ENDPOINTS:
                    driver = drive_hey if args.driver == "hey" else drive
                    result = driver(readers, endpoint, clients, args.seconds)
                    results.append(result)
                    print(f"[{label}] {_line(result)}", file=sys.stderr, flush=True)
            memory = server_memory_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return {
        "label": label,
        "workers": workers,
        "populate": timing,
        "results": results,
        "memory_mb": memory,
        "memory_with_logins_mb": max(memory, logged_in),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['endpoint']:<9} {r['clients']:>3} clients: p50 {r['p50_ms']:7.1f} ms"
        f"  p95 {r['p95_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
        f"  {r['rps']:7.1f} req/s  errors {r['errors']}"
    )


def baseline_source(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def report(runs: list[dict[str, Any]]) -> None:
    print(
        "\n| endpoint | clients | "
        + " | ".join(f"{run['label']} p50 / p95 / p99 ms, req/s" for run in runs)
        + " |"
    )
    print("|---|---|" + "---|" * len(runs))
    for index, first in enumerate(runs[0]["results"]):
        cells = []
        for run in runs:
            r = run["results"][index]
            cells.append(
                f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f}, {r['rps']:.0f}"
                + (f" ({r['errors']} errors)" if r["errors"] else "")
            )
        print(f"| {first['endpoint']} | {first['clients']} | " + " | ".join(cells) + " |")
    for run in runs:
        at20 = [r for r in run["results"] if r["clients"] == 20]
        worst = max((r["p95_ms"] for r in at20), default=0.0)
        slowest = min((r["rps"] for r in at20), default=0.0)
        made = run["populate"]
        print(
            f"\n{run['label']} ({run['workers'] or DEFAULT_WORKERS} server processes): "
            f"node made in {made['total_s']:.1f} s "
            f"(service layer {made['service_layer_s']:.1f} s); "
            f"worst p95 at 20 clients {worst:.1f} ms (target < {TARGETS['p95_ms_20_clients']:.0f});"
            f" lowest req/s at 20 clients {slowest:.0f}"
            f" (target >= {TARGETS['requests_per_s']:.0f});"
            f" server memory (peak RSS of all processes during the reads) {run['memory_mb']:.0f} MB"
            f" (target < {TARGETS['memory_mb']:.0f}; with the logins before them:"
            f" {run['memory_with_logins_mb']:.0f} MB)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", default="1,20,100")
    parser.add_argument("--workers", type=int, default=None, help="default: codenv serve's own")
    parser.add_argument("--baseline-ref", default="HEAD")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--python", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--driver",
        choices=("hey", "python"),
        default="hey" if shutil.which("hey") else "python",
        help="the load generator: hey (apt install hey; default when found) or Python threads",
    )
    parser.add_argument("--populate", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python is None:
        from codenv.interpreters import discover

        args.python = discover().minors()[-1]
    if args.populate is not None:
        print(json.dumps(populate(args.populate, args.envs, args.users, args.python)))
        return 0
    args.clients = [int(n) for n in args.clients.split(",")]
    from codenv.cli.serve_cmd import default_workers

    runs = [measure("now", ROOT / "src", args, args.workers or default_workers())]
    if not args.no_baseline:
        with tempfile.TemporaryDirectory(prefix="codenv-baseline-") as temp:
            runs.append(
                measure(
                    f"today ({args.baseline_ref})",
                    baseline_source(args.baseline_ref, Path(temp)),
                    args,
                    None,
                )
            )
    report(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 1 if any(r["errors"] for run in runs for r in run["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
