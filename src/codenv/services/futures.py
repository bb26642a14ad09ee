"""Futures of the DSS API: the `jobId`s its clients poll (`GET /futures/{id}`) until
`hasResult`.

A future either follows a build (its id is the build's: create, update, Jupyter support) or
records an operation that finished at once (delete, "already up to date"), its result stored,
because the client fetches even a finished future again. Both live in `dss_futures`, read by
whichever server process answers, and are purged a day after they were made.

A build's outcome is a *result*, failed builds included (`messages.error`), as DSS reports
them; a cancelled build is `aborted` with no result. An id that is unknown, expired or another
user's (administrators see all) is NotFound, so a client's endless poll stops with an error.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from codenv.domain.errors import Conflict, NotFound
from codenv.domain.names import name_key
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.builds import cancel_build
from codenv.services.views import BuildInfo, as_utc
from codenv.storage.models import BuildRow, DssFutureRow, utcnow

TTL = timedelta(hours=24)
POLL_FIRST, POLL_MAX = 0.2, 1.0  # seconds between two looks at a build, growing by half
_RUNNING = ("queued", "running")
_TITLES = {
    "create": "Creating code env",
    "update": "Updating code env",
    "jupyter": "Updating Jupyter support of code env",
    "delete": "Deleting code env",
    "images": "Updating images of code env",
}
LOG_PREFIX, LOG_SUFFIX = "build-", ".log"


def log_file_name(build_id: str) -> str:
    """A build's log as DSS names logs (`list_logs`, `logFileName`): `build-<id>.log`."""
    return f"{LOG_PREFIX}{build_id}{LOG_SUFFIX}"


def build_id_of_log(log_name: str) -> str:
    """The build whose log `log_name` is; NotFound for a name no build log has."""
    if log_name.startswith(LOG_PREFIX) and log_name.endswith(LOG_SUFFIX):
        build_id = log_name[len(LOG_PREFIX) : -len(LOG_SUFFIX)]
        if build_id and len(build_id) <= 32 and build_id.isalnum():
            return build_id
    raise NotFound(f"no log named {log_name[:80]!r}", field="log")


def _epoch_ms(moment: datetime | None) -> int | None:
    aware = as_utc(moment)
    return int(aware.timestamp() * 1000) if aware else None


def _message(severity: str, title: str, message: str, **extra: Any) -> dict[str, Any]:
    fatal = severity == "ERROR"
    return {
        "severity": severity,
        "isFatal": fatal,
        "code": extra.get("code"),
        "title": title,
        "message": message,
        "details": extra.get("details", ""),
    }


def info_messages(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """DSS's `DSSInfoMessages` around `messages` (each made like `_message`)."""
    order = ["SUCCESS", "INFO", "WARNING", "ERROR"]
    severities = [item["severity"] for item in messages]
    worst = max(severities, key=order.index) if severities else None
    return {
        "anyMessage": bool(messages),
        "success": "SUCCESS" in severities,
        "warning": "WARNING" in severities,
        "error": "ERROR" in severities,
        "fatal": any(item["isFatal"] for item in messages),
        "maxSeverity": worst,
        "messages": messages,
    }


def operation_result(build: BuildInfo, *, creation: bool = False) -> dict[str, Any]:
    """§4.4: the result of a finished build; a failed one carries its error as a message."""
    log = log_file_name(build.id)
    if build.status == "succeeded":
        title = "Code env created" if creation else "Code env updated"
        text = f"revision {build.revision} active" if build.revision else "done"
        item = _message("SUCCESS", title, text)
    else:
        code = "ERR_CODEENV_CREATION_FAILED" if creation else "ERR_CODEENV_UPDATE_FAILED"
        title = "Code env creation failed" if creation else "Code env update failed"
        text = build.error or f"build {build.status}"
        item = _message("ERROR", title, text, code=code, details=f"see log {log}")
    return {
        "envName": build.env,
        "logFileName": log,
        "messages": info_messages([item]),
        "codenv": {
            "buildId": build.id,
            "revision": build.revision,
            "upToDate": False,
            "status": build.status,
        },
    }


def _purge(session: Session) -> None:
    session.execute(delete(DssFutureRow).where(DssFutureRow.created_at < utcnow() - TTL))


def _add(app: Codenv, actor: Actor, row: DssFutureRow) -> str:
    with app.db.session() as session:
        _purge(session)
        if session.get(DssFutureRow, row.id) is None:
            row.owner = actor.name
            session.add(row)
    return row.id


def future_for_build(app: Codenv, actor: Actor, build_id: str, *, kind: str, target: str) -> str:
    """A future (its jobId, the build's id) that follows the build `build_id`."""
    return _add(app, actor, DssFutureRow(id=build_id, kind=kind, target=target, build_id=build_id))


def finished_future(
    app: Codenv, actor: Actor, *, kind: str, target: str, result: dict[str, Any]
) -> str:
    """A future for an operation that finished at once, `result` its §4.4 result."""
    row = DssFutureRow(id=uuid.uuid4().hex, kind=kind, target=target, result=result)
    return _add(app, actor, row)


def _visible(session: Session, actor: Actor, future_id: str) -> DssFutureRow:
    row = session.get(DssFutureRow, future_id) if len(future_id) <= 32 else None
    expired = row is not None and (as_utc(row.created_at) or utcnow()) < utcnow() - TTL
    if (
        row is None
        or expired
        or not (actor.is_admin or name_key(row.owner) == name_key(actor.name))
    ):
        raise NotFound(
            f"no future {future_id[:80]!r} (unknown, expired, or not yours)", field="jobId"
        )
    return row


def _base(row: DssFutureRow) -> dict[str, Any]:
    return {
        "jobId": row.id,
        "jobDisplayName": f"{_TITLES.get(row.kind, row.kind)} {row.target}",
        "owner": row.owner,
        "startTime": _epoch_ms(row.created_at),
        "unknown": False,
        "aborted": False,
    }


def _build_state(row: DssFutureRow, build: BuildRow) -> dict[str, Any]:
    info = BuildInfo.of(build)
    state = _base(row)
    start, end = as_utc(build.created_at), as_utc(build.finished_at)
    elapsed = int(((end or utcnow()) - start).total_seconds() * 1000) if start else 0
    state["runningTime"] = elapsed
    if not info.finished:
        step = {
            "name": info.step,
            "unit": "NONE",
            "target": -1,
            "cur": 0,
            "important": True,
            "msSinceStart": elapsed,
        }
        return state | {"hasResult": False, "alive": True, "progress": {"states": [step]}}
    state |= {"hasResult": True, "alive": False, "progress": {"states": []}}
    if info.status == "cancelled":
        return state | {"aborted": True, "result": None}
    return state | {"result": operation_result(info, creation=row.kind == "create")}


def future_state(
    app: Codenv, actor: Actor, future_id: str, *, peek: bool = False
) -> dict[str, Any]:
    """§3.2: the state of a future; `peek` leaves the result out."""
    with app.db.session() as session:
        row = _visible(session, actor, future_id)
        if row.build_id is None:
            state = _base(row) | {
                "hasResult": True,
                "alive": False,
                "runningTime": 0,
                "progress": {"states": []},
                "result": row.result,
            }
        else:
            build = session.get(BuildRow, row.build_id)
            if build is None:
                raise NotFound(f"the build of future {future_id!r} is gone", field="jobId")
            state = _build_state(row, build)
    if peek:
        state.pop("result", None)
    return state


def abort_future(app: Codenv, actor: Actor, future_id: str) -> None:
    """Cancel the build a future follows; Conflict when there is nothing left to cancel."""
    with app.db.session() as session:
        row = _visible(session, actor, future_id)
        build_id = row.build_id
    if build_id is None:
        raise Conflict(f"future {future_id!r} has finished: nothing to abort", field="jobId")
    cancel_build(app, actor, build_id)


def list_futures(app: Codenv, actor: Actor, *, all_users: bool = False) -> list[dict[str, Any]]:
    """The caller's unfinished futures (everyone's for an administrator with `all_users`)."""
    with app.db.session() as session:
        _purge(session)
        query = (
            select(DssFutureRow, BuildRow)
            .join(BuildRow, BuildRow.id == DssFutureRow.build_id)
            .where(BuildRow.status.in_(_RUNNING))
            .order_by(DssFutureRow.created_at)
        )
        found = session.execute(query).all()
        everyone = all_users and actor.is_admin
        mine = name_key(actor.name)
        return [
            _build_state(row, build)
            for row, build in found
            if everyone or name_key(row.owner) == mine
        ]


async def wait_for_future(
    app: Codenv, actor: Actor, future_id: str, timeout: float | None = None
) -> dict[str, Any]:
    """The future's state once it has a result (or when `timeout` seconds have passed),
    polling without holding a server thread between two looks."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        state = await anyio.to_thread.run_sync(lambda: future_state(app, actor, future_id))
        if state["hasResult"] or (deadline is not None and time.monotonic() >= deadline):
            return state
        pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
        await anyio.sleep(pause)
        delay = min(delay * 1.5, POLL_MAX)
