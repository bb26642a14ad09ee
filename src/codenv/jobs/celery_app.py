"""Celery, configured once for both ends of the build queue: the processes that send builds (a
server, the CLI in local mode) and the `codenv worker` processes that run them.

A message is one build id in JSON, nothing else: the database is the truth about a build, and
a worker claims it there (with a lease) before anything happens. So a message delivered twice,
or late, or after its build ended, does nothing.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning

from codenv.domain.errors import InvalidInput
from codenv.jobs.queue import Runner
from codenv.settings import Settings

TASK_NAME = "codenv.run_build"
# Redis hands an unacknowledged message to another worker once its visibility timeout passes,
# and a build's message is acknowledged when the build ends (acks_late): the timeout outlasts
# the longest build, with room for the wait for the env's build slot.
VISIBILITY_MARGIN_SECONDS = 15 * 60
MAX_CONCURRENCY = 64
# What brokers accept as a queue name, and what the operators of one can read in its tools.
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
# A build id (uuid4 hex); anything else in a message is not one of ours.
BUILD_ID = re.compile(r"[0-9a-f]{32}")
logger = logging.getLogger(__name__)


def check_queue_name(name: str) -> str:
    if not QUEUE_NAME.fullmatch(name):
        raise InvalidInput(
            f"a build queue name has 1 to 200 letters, digits, '.', '_', ':' or '-', got {name!r}",
            field="queue",
        )
    return name


def make_celery(settings: Settings) -> Celery:
    """The Celery application of `settings.broker_url` (which must be set)."""
    if not settings.broker_url:
        raise InvalidInput(
            "no broker is configured: set CODENV_BROKER_URL (redis://… or amqp://…)",
            field="broker_url",
        )
    celery = Celery("codenv", broker=settings.broker_url, set_as_current=False)
    celery.conf.update(_config(settings))
    return celery


def _config(settings: Settings) -> dict[str, Any]:
    return {
        # JSON only: a pickled message would run code in the worker.
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_ignore_result": True,
        "task_default_queue": check_queue_name(settings.build_queue),
        # A message is acknowledged when its build ends, and one at a time per free thread: a
        # worker that dies leaves its messages to the others, not lost, not hoarded.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            "visibility_timeout": settings.build_timeout_seconds + VISIBILITY_MARGIN_SECONDS
        },
        # A worker waits for its broker as long as it is away; a sender gives up after a few
        # tries in a second or two (its build fails: services/builds.py).
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # A worker that loses the broker keeps its running builds: their leases (in the
        # database) say who runs them, and the message redelivered meanwhile does nothing.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # After a reconnection Celery lowers the prefetch count, then raises it again from the
        # thread that acknowledged a task: with a pool of threads that thread and the event loop
        # read the same AMQP socket at once, and the worker hangs for good mid-frame (seen 1 run
        # in 6 on RabbitMQ). Running builds are few (at most --concurrency): nothing to limit.
        "worker_enable_prefetch_count_reduction": False,
    }


def run_worker(
    settings: Settings, runner: Runner, *, nodename: str, concurrency: int, queue: str
) -> int:
    """Run builds from `queue` with `runner` until the worker is stopped; its exit code."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(
            f"--concurrency must be from 1 to {MAX_CONCURRENCY}, got {concurrency}",
            field="concurrency",
        )
    celery = make_celery(settings)

    def run_build(build_id: object) -> None:
        if isinstance(build_id, str) and BUILD_ID.fullmatch(build_id):
            runner(build_id)
        else:
            logger.warning("ignored a %s message whose argument is no build id", TASK_NAME)

    celery.task(name=TASK_NAME)(run_build)
    # Celery warns at each reconnection that it will cancel such tasks by default one day:
    # codenv chose (above) that they run on, whatever the default.
    warnings.filterwarnings(
        "ignore",
        message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss",
        category=CPendingDeprecationWarning,
    )
    worker = celery.Worker(
        hostname=nodename,
        pool="threads",
        concurrency=concurrency,
        queues=[check_queue_name(queue)],
        # Workers need not know each other: builds are shared through the broker and leases.
        without_gossip=True,
        without_mingle=True,
        loglevel="INFO",
    )
    worker.start()
    return int(worker.exitcode or 0)
