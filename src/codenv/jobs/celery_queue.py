"""Builds sent to a broker (Celery on Redis or RabbitMQ), for `codenv worker` processes to run."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from codenv.domain.errors import Unavailable
from codenv.domain.secrets import mask_secrets
from codenv.settings import Settings

if TYPE_CHECKING:
    from celery import Celery


class CeleryQueue:
    """The queue of a server (or a local CLI) when a broker is configured: it sends each build's
    id, and whoever waits for a build follows it in the database, where workers record it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    # Celery loads with the first build sent: most commands send none.
    @cached_property
    def _celery(self) -> Celery:
        from codenv.jobs.celery_app import make_celery

        return make_celery(self._settings)

    def submit(self, build_id: str) -> None:
        from kombu.exceptions import OperationalError

        from codenv.jobs.celery_app import TASK_NAME

        try:
            self._celery.send_task(TASK_NAME, args=[build_id], queue=self._settings.build_queue)
        except (OperationalError, OSError) as error:
            raise Unavailable(
                f"the build queue's broker cannot be reached: {mask_secrets(str(error))}"
            ) from error

    def wait(self, build_id: str) -> None:
        return None

    def close(self) -> None:
        if "_celery" in self.__dict__:
            self._celery.close()
