"""`codenv worker`: this process runs builds sent to the broker, under the name
`celery@<host>` that the builds it runs record, and reaps the builds of workers that died."""

from __future__ import annotations

import functools
import socket

from codenv.services.app import Codenv


def worker_name() -> str:
    """Celery's own name for a worker on this host, which its tools (inspect, flower) show."""
    return f"celery@{socket.gethostname()}"


def serve_builds(app: Codenv, *, concurrency: int | None, queue: str | None) -> int:
    """Run builds from `queue` (default: the settings' build queue), `concurrency` at once
    (default: the settings' max parallel builds), until stopped; the exit code."""
    from codenv.jobs.celery_app import run_worker
    from codenv.services.build_jobs import run_build
    from codenv.services.cluster import start_worker_heartbeat
    from codenv.services.leases import set_worker_name, start_reaper

    name = worker_name()
    set_worker_name(name)
    threads = app.settings.max_parallel_builds if concurrency is None else concurrency
    queue = queue or app.settings.build_queue
    reaper = start_reaper(app)
    # What `codenv status` shows of this worker, alive while its heartbeat is fresh.
    heartbeat = start_worker_heartbeat(app, name, socket.gethostname(), [queue], threads)
    try:
        return run_worker(
            app.settings,
            functools.partial(run_build, app),
            nodename=name,
            concurrency=threads,
            queue=queue,
        )
    finally:
        heartbeat.stop()
        reaper.stop()
