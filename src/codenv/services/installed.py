"""What a revision actually installed, and what changed since the revision before it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codenv.backends.base import Run
from codenv.domain.errors import CodenvError, NotFound
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import Actor, env_for
from codenv.services.app import Codenv
from codenv.services.read_cache import reader_key
from codenv.services.views import plain
from codenv.storage import queries
from codenv.storage.models import RevisionRow


@dataclass(frozen=True)
class PackageChange:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class PackagesDiff:
    """The difference from the newest earlier revision (its record outlives pruning)."""

    previous: int
    added: list[dict[str, str]]  # {"name", "version"}
    removed: list[dict[str, str]]  # {"name", "version"}
    changed: list[PackageChange]

    @classmethod
    def between(cls, previous: RevisionRow, current: RevisionRow) -> PackagesDiff:
        added, removed, changed = _difference(
            _versions(previous.installed), _versions(current.installed)
        )
        return cls(previous.number, added, removed, changed)


@dataclass(frozen=True)
class Drift:
    """What was installed, removed or changed in the live env by hand (`pip install` in it),
    outside any revision: the next update builds a new revision without it."""

    added: list[dict[str, str]]
    removed: list[dict[str, str]]
    changed: list[PackageChange]

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _difference(
    before: dict[str, str], after: dict[str, str]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[PackageChange]]:
    added = [{"name": n, "version": after[n]} for n in _sorted(set(after) - set(before))]
    removed = [{"name": n, "version": before[n]} for n in _sorted(set(before) - set(after))]
    changed = [
        PackageChange(n, before[n], after[n])
        for n in _sorted(set(before) & set(after))
        if before[n] != after[n]
    ]
    return added, removed, changed


class _Quiet:
    def write(self, text: str) -> None:
        return None


# The live listing of an env (a subprocess, ~20 ms) by what changes when a package is added,
# removed or upgraded: its site-packages directory's identity and modification time.
_LIVE: dict[tuple[str, int, int], dict[str, str]] = {}
_LIVE_LOCK = threading.Lock()
_LIVE_ENTRIES = 1024
# One listing of an env at a time: readers that come while it runs wait for its answer instead
# of starting the same subprocess (20 clients opening an env not read yet started 20 of them).
_LISTING: dict[str, threading.Lock] = {}


def _site_key(python: Path) -> tuple[str, int, int] | None:
    found = sorted(python.parent.parent.glob("lib/python*/site-packages"))
    try:
        status = found[0].stat() if found else None
    except OSError:
        return None
    return (str(python), status.st_ino, status.st_mtime_ns) if status else None


def _listed(app: Codenv, python: Path) -> dict[str, str]:
    live = app.tools.installer.installed(Run(_Quiet(), 60), python)
    return {package.name: package.version for package in live}


def _kept(key: tuple[str, int, int]) -> tuple[dict[str, str] | None, threading.Lock]:
    with _LIVE_LOCK:
        return _LIVE.get(key), _LISTING.setdefault(key[0], threading.Lock())


def _live_versions(app: Codenv, python: Path) -> dict[str, str]:
    key = _site_key(python)
    if key is None:
        return _listed(app, python)
    cached, listing = _kept(key)
    if cached is not None:
        return cached
    with listing:
        cached, _ = _kept(key)
        if cached is not None:  # listed by the reader this one waited for
            return cached
        versions = _listed(app, python)
        with _LIVE_LOCK:
            if len(_LIVE) >= _LIVE_ENTRIES:
                _LIVE.clear()
                _LISTING.clear()
            _LIVE[key] = versions
    return versions


def live_drift(app: Codenv, python: Path, recorded: list[dict[str, Any]]) -> Drift | None:
    """The live env's packages against its revision's record; None when it cannot be read.
    The live listing is read again only when the env's site-packages changed."""
    if not python.exists():  # the revision's directory is gone (pruned, deleted by hand)
        return None
    try:
        now = _live_versions(app, python)
    except (CodenvError, OSError):
        return None
    return Drift(*_difference(_versions(recorded), now))


@dataclass(frozen=True)
class InstalledPackages:
    env: str
    revision: int
    # As recorded after the build: {"name", "version"} and, for editables, "editable".
    packages: list[dict[str, Any]]
    # None for the env's first revision.
    diff: PackagesDiff | None
    # What the install check reported that does not break the env (a wheel's tags).
    warnings: list[str]
    # For the active revision: what differs in the live env (None: not checked).
    drift: Drift | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def _versions(packages: list[dict[str, Any]]) -> dict[str, str]:
    return {str(package["name"]): str(package["version"]) for package in packages}


def _sorted(names: set[str]) -> list[str]:
    return sorted(names, key=str.lower)


def _previous(session: Session, env_id: int, number: int) -> RevisionRow | None:
    """The revision before `number`: one row, not every revision with its lock."""
    query = (
        select(RevisionRow)
        .where(RevisionRow.env_id == env_id, RevisionRow.number < number)
        .order_by(RevisionRow.number.desc())
        .limit(1)
    )
    return session.scalar(query)


def show_installed(
    app: Codenv, actor: Actor, name: str, number: int | None = None
) -> InstalledPackages:
    """The packages of revision `number` (default: the active one) and what changed: read
    again from the database only when the data version changed; the live env every time."""
    shown, python, active = app.reads.read(
        ("installed", reader_key(actor), name, number),
        lambda: _stored_packages(app, actor, name, number),
    )
    # Outside the unit of work: it runs the installer's listing of the live env.
    return replace(shown, drift=live_drift(app, python, shown.packages)) if active else shown


def _stored_packages(
    app: Codenv, actor: Actor, name: str, number: int | None
) -> tuple[InstalledPackages, Path, bool]:
    with app.db.session() as session:
        env = env_for(session, actor, name)
        chosen = number if number is not None else env.active_revision
        if chosen is None:
            raise NotFound(
                f"code env {env.name!r} has never built successfully: no packages are installed",
                field="revision",
            )
        row = queries.revision(session, env.id, chosen)
        if row is None:
            raise NotFound(f"code env {env.name!r} has no revision {chosen}", field="revision")
        previous = _previous(session, env.id, chosen)
        shown = InstalledPackages(
            env=env.name,
            revision=chosen,
            packages=sorted(row.installed, key=lambda p: str(p["name"]).lower()),
            diff=PackagesDiff.between(previous, row) if previous else None,
            warnings=list(row.warnings),
        )
        python = EnvLayout.of(app.settings.envs_dir, env.name).python(chosen)
        return shown, python, chosen == env.active_revision
