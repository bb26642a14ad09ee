"""`codenv sync`: the agent of a shared-nothing execution node.

An execution node has a home of its own (its envs, its uv cache, on a local disk: uv's cache
and hard links misbehave on network filesystems) and the shared database. Each pass makes the
node agree with the database: for every env with an active revision, that revision's exact
lock is installed here (services/sync_install.py) unless already held, `current` is switched
in one rename, revisions the database no longer keeps are removed, and what the node holds is
recorded in `node_revisions` (`codenv status` reads it). A failed install records its error
for that env on this node and leaves its `current` as it was: the env keeps working.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from codenv.domain.errors import BuildCancelled, CodenvError, Conflict, InvalidInput, NotFound
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import EnvSpec
from codenv.envdirs import kernels
from codenv.envdirs.layout import EnvLayout
from codenv.interpreters import Discovery
from codenv.services.app import Codenv
from codenv.services.interpreters import discovery
from codenv.services.runtime import refresh_kernel
from codenv.services.sync_install import Say, Wanted, holds, install, node_lock, sync_dir
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow, RevisionRow, utcnow
from codenv.storage.models_nodes import NodeRevisionRow, NodeRow

logger = logging.getLogger(__name__)
OK, FAILED = "ok", "failed"
INSTALLED, SWITCHED, HELD = "installed", "switched", "held"
MAX_ERROR_CHARS = 4000
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")


def node_name(given: str | None) -> str:
    """The node's name: `given` (CODENV_NODE_NAME) or this host's name."""
    name = (given or socket.gethostname()).strip()
    if not NODE_NAME.fullmatch(name):
        raise InvalidInput(
            f"a node name has 1 to 128 letters, digits, '.', '_', '@', ':' or '-', got {name!r}",
            field="node",
        )
    return name


@dataclass(frozen=True)
class EnvTarget:
    """One env as this pass sees it: its active revision, the revisions the database keeps,
    its highest revision number, and what this node recorded last (None: nothing yet)."""

    env_id: int
    name: str
    active: int
    kept: frozenset[int]
    highest: int
    recorded: tuple[int | None, int, str] | None  # (holds, wanted, state)


@dataclass
class EnvOutcome:
    env: str
    revision: int  # the active revision this pass brought the node to (or tried to)
    holds: int | None  # the node's `current` after the pass
    action: str  # installed, switched, held, failed
    error: str | None = None
    seconds: float = 0.0
    removed: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "revision": self.revision,
            "holds": self.holds,
            "action": self.action,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "removed": self.removed,
        }


@dataclass
class SyncReport:
    node: str
    envs: list[EnvOutcome] = field(default_factory=list)
    removed_envs: list[str] = field(default_factory=list)
    stopped: bool = False  # SIGTERM came mid-pass: the envs after it were not looked at

    @property
    def failed(self) -> list[EnvOutcome]:
        return [outcome for outcome in self.envs if outcome.action == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "envs": [outcome.to_dict() for outcome in self.envs],
            "removed_envs": self.removed_envs,
            "failed": len(self.failed),
            "stopped": self.stopped,
        }


@contextlib.contextmanager
def _agent_lock(app: Codenv) -> Iterator[None]:
    """One agent per home: a second one would install into the same directories."""
    descriptor = os.open(app.settings.home / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise Conflict(
                f"another `codenv sync` is running on {app.settings.home}", field="home"
            ) from error
        yield
    finally:
        os.close(descriptor)


def _register(app: Codenv, node: str, found: Discovery, poll_seconds: int | None) -> None:
    with app.db.session() as session:
        row = session.get(NodeRow, node)
        if row is None:
            row = NodeRow(name=node)
            session.add(row)
        row.host, row.pythons = socket.gethostname(), list(found.minors())
        row.poll_seconds, row.last_seen_at = poll_seconds, utcnow()


def _targets(app: Codenv, node: str) -> list[EnvTarget]:
    with app.db.session() as session:
        envs = session.execute(
            select(CodeEnvRow.id, CodeEnvRow.name, CodeEnvRow.active_revision)
            .where(CodeEnvRow.active_revision.is_not(None))
            .order_by(CodeEnvRow.name_key)
        ).all()
        kept: dict[int, set[int]] = {}
        highest: dict[int, int] = {}
        query = select(RevisionRow.env_id, RevisionRow.number, RevisionRow.pruned)
        for env_id, number, pruned in session.execute(query):
            highest[env_id] = max(number, highest.get(env_id, 0))
            if not pruned:
                kept.setdefault(env_id, set()).add(number)
        recorded = {
            row.env_id: (row.revision, row.wanted, row.state)
            for row in session.scalars(select(NodeRevisionRow).where(NodeRevisionRow.node == node))
        }
    return [
        EnvTarget(
            env_id,
            name,
            active,
            frozenset(kept.get(env_id, ())),
            highest.get(env_id, active),
            recorded.get(env_id),
        )
        for env_id, name, active in envs
        if active is not None
    ]


def _wanted(app: Codenv, target: EnvTarget) -> Wanted:
    with app.db.session() as session:
        row = queries.revision(session, target.env_id, target.active)
        if row is None:  # rolled back or removed since the pass began: the next pass sees it
            raise NotFound(f"revision {target.active} of {target.name} is gone", field="revision")
        return Wanted(target.name, row.number, row.build_id, row.plan, row.spec, row.lock)


def _bring(
    app: Codenv, found: Discovery, target: EnvTarget, stop: threading.Event, say: Say
) -> str:
    """Make the env's `current` here its active revision; what it took."""
    wanted = _wanted(app, target)
    layout = EnvLayout.of(app.settings.envs_dir, target.name)
    lock = node_lock(app, found, wanted)
    action = HELD
    if not holds(layout, wanted, lock):
        install(app, found, wanted, lock, stop, say)
        action = INSTALLED
    if layout.current_number() != wanted.number:
        layout.switch_current(wanted.number)
        action = SWITCHED if action == HELD else action
        try:
            refresh_kernel(app, target.name, EnvSpec.from_dict(wanted.spec))
        except OSError as error:  # the env works: its kernelspec is written at the next switch
            say(f"warning: {target.name}: the Jupyter kernelspec was not written ({error})")
    return action


def _agrees(app: Codenv, target: EnvTarget) -> bool:
    """Nothing to do: recorded as held here, and `current` says so."""
    layout = EnvLayout.of(app.settings.envs_dir, target.name)
    held = target.recorded == (target.active, target.active, OK)
    return held and layout.current_number() == target.active


def _sync_env(
    app: Codenv, node: str, found: Discovery, target: EnvTarget, stop: threading.Event, say: Say
) -> EnvOutcome | None:
    """One env brought to its active revision and recorded; None when `stop` interrupted it."""
    layout = EnvLayout.of(app.settings.envs_dir, target.name)
    started = time.monotonic()
    outcome = EnvOutcome(target.name, target.active, target.active, HELD)
    if not _agrees(app, target):
        try:
            outcome.action = _bring(app, found, target, stop, say)
        except BuildCancelled:
            return None
        except CodenvError as error:
            outcome.action, outcome.error = FAILED, error.message
        except (OSError, ValueError, KeyError) as error:
            logger.exception("installing %s failed", target.name)
            outcome.action, outcome.error = FAILED, f"internal error: {error!r}"
        outcome.holds = layout.current_number()
        outcome.seconds = time.monotonic() - started
        _record(app, node, target.env_id, outcome)
        if outcome.error is not None:
            say(f"{target.name}: revision {target.active} failed: {outcome.error}")
    outcome.removed = _drop_unkept(layout, target)
    return outcome


def _record(app: Codenv, node: str, env_id: int, outcome: EnvOutcome) -> None:
    error = mask_secrets(outcome.error)[-MAX_ERROR_CHARS:] if outcome.error else None
    state = FAILED if outcome.action == FAILED else OK
    with app.db.session() as session:
        row = session.get(NodeRevisionRow, (node, env_id))
        if row is None:
            row = NodeRevisionRow(node=node, env_id=env_id)
            session.add(row)
        row.revision, row.wanted, row.state = outcome.holds, outcome.revision, state
        row.error, row.updated_at = error, utcnow()


def _local_numbers(layout: EnvLayout) -> set[int]:
    if not layout.revisions_dir.is_dir():
        return set()
    return {int(path.name) for path in layout.revisions_dir.iterdir() if path.name.isdigit()}


def _drop_unkept(layout: EnvLayout, target: EnvTarget) -> list[int]:
    """Remove the revisions here the database no longer keeps (pruned, removed), but the one
    `current` points at (after a failed install, an older one, still working) and any above
    the env's highest revision (on a home that also builds: a build making it)."""
    current = layout.current_number()
    local = _local_numbers(layout) - target.kept - {current or 0}
    gone = sorted(number for number in local if number <= target.highest)
    for number in gone:
        layout.remove_revision(number)
    return gone


def _drop_deleted_envs(app: Codenv, local: list[str]) -> list[str]:
    """Envs here whose env the database no longer has: their revisions, `current` and
    kernelspec go. `local` was listed before the names were read, so an env created meanwhile
    has its row already. Files an administrator put in its resources dir stay."""
    with app.db.session() as session:
        names = set(session.scalars(select(CodeEnvRow.name)))
    gone = [name for name in local if name not in names]
    for name in gone:
        layout = EnvLayout.of(app.settings.envs_dir, name)
        shutil.rmtree(layout.revisions_dir, ignore_errors=True)
        layout.current.unlink(missing_ok=True)
        kernels.remove_kernelspec(app.settings.kernels_dir, name)
        for directory in (layout.resources_dir, layout.root):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
    return gone


def _pass(
    app: Codenv, node: str, poll_seconds: int | None, stop: threading.Event, say: Say
) -> SyncReport:
    found = discovery(app)
    _register(app, node, found, poll_seconds)
    shutil.rmtree(sync_dir(app) / "work", ignore_errors=True)  # of an agent that was killed
    envs_dir = app.settings.envs_dir
    local = sorted(path.name for path in envs_dir.iterdir() if path.is_dir())
    report = SyncReport(node)
    for target in _targets(app, node):
        outcome = None if stop.is_set() else _sync_env(app, node, found, target, stop, say)
        if outcome is None:
            report.stopped = True
            return report
        report.envs.append(outcome)
    report.removed_envs = _drop_deleted_envs(app, local)
    return report


def sync_once(app: Codenv, node: str, say: Say, stop: threading.Event | None = None) -> SyncReport:
    """One pass (`codenv sync --once`)."""
    with _agent_lock(app):
        return _pass(app, node, None, stop or threading.Event(), say)


def follow(app: Codenv, node: str, poll_seconds: int, stop: threading.Event, say: Say) -> None:
    """A pass every `poll_seconds` until `stop` is set (SIGTERM). A pass that fails (the
    database away) changes nothing here: the envs keep their `current`, the next pass retries."""
    with _agent_lock(app):
        while not stop.is_set():
            try:
                report = _pass(app, node, poll_seconds, stop, say)
            except (CodenvError, SQLAlchemyError) as error:
                say(f"the pass failed ({mask_secrets(str(error))[:500]}); next in {poll_seconds} s")
            else:
                for outcome in report.envs:
                    if outcome.action in (INSTALLED, SWITCHED):
                        say(f"{outcome.env}: revision {outcome.revision} {outcome.action}")
            stop.wait(poll_seconds)
