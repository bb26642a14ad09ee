"""The env's build slot held outside a build (a rollback, a revision's removal, the sweep of
leftovers): taken under a lease that a thread renews while it is held, released at the end.
A build holds its slot under its own lease (services/leases.py: BuildWatch renews both)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sqlalchemy.exc import SQLAlchemyError

from codenv.domain.builds import BuildStatus
from codenv.jobs.liveness import holder_token
from codenv.services.app import Codenv
from codenv.storage import leases as lease_queries
from codenv.storage import queries
from codenv.storage.models import BuildRow, utcnow

logger = logging.getLogger(__name__)
RENEWALS_PER_LEASE = 3
# A build whose end is recorded still holds its env's slot for its last steps (settling the
# env, queueing its images, the release itself): at most this long, in practice milliseconds.
ENDING_SECONDS = 10.0


def wait_for_ending_build(app: Codenv, env_id: int) -> bool:
    """Whether the env's slot is free, once a build whose end is already recorded released it:
    a client that waited for a build to end and acts at once (delete, roll back) waits for its
    last steps instead of being told that the env is being built. False at once when anything
    else holds the slot."""
    deadline = time.monotonic() + ENDING_SECONDS
    while True:
        with app.db.session() as session:
            slot = queries.build_slot(session, env_id)
            if slot is None:
                return True
            build = session.get(BuildRow, slot.build_id)
            ending = build is not None and BuildStatus(build.status).finished
        if not ending or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def lease_until(app: Codenv) -> datetime:
    return utcnow() + timedelta(seconds=app.settings.lease_seconds)


def renewal_seconds(app: Codenv) -> float:
    return app.settings.lease_seconds / RENEWALS_PER_LEASE


class Renewing:
    """A lease held for the length of a `with` block: a daemon thread runs `_renew` until the
    block ends (`_stop` is set), then `_release` ends the lease."""

    def __init__(self, app: Codenv, name: str) -> None:
        self._app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name=name)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._release()

    def _renew(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class SlotHold(Renewing):
    """`with SlotHold.take(app, env_id, token) as hold:` (None when another holds the slot)."""

    def __init__(self, app: Codenv, token: str) -> None:
        super().__init__(app, f"slot-{token}")
        self.token = token

    @classmethod
    def take(cls, app: Codenv, env_id: int, token: str) -> SlotHold | None:
        def taken() -> bool:
            return queries.take_build_slot(app.db, env_id, token, holder_token(), lease_until(app))

        if taken() or (wait_for_ending_build(app, env_id) and taken()):
            return cls(app, token)
        return None

    def _release(self) -> None:
        with self._app.db.session() as session:
            queries.release_build_slot(session, self.token)

    def _renew(self) -> None:
        while not self._stop.wait(renewal_seconds(self._app)):
            try:
                with self._app.db.session() as session:
                    lease_queries.renew_slot_lease(session, self.token, lease_until(self._app))
            except SQLAlchemyError:
                # The next renewal may succeed; past the lease, the reaper frees the slot.
                logger.warning("the lease of build slot %s was not renewed", self.token)
