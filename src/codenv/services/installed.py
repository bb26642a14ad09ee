"""What a revision actually installed, and what changed since the revision before it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from codenv.domain.errors import NotFound
from codenv.services.actor import Actor, env_for
from codenv.services.app import Codenv
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
        before, after = _versions(previous.installed), _versions(current.installed)
        return cls(
            previous=previous.number,
            added=[{"name": n, "version": after[n]} for n in _sorted(set(after) - set(before))],
            removed=[{"name": n, "version": before[n]} for n in _sorted(set(before) - set(after))],
            changed=[
                PackageChange(n, before[n], after[n])
                for n in _sorted(set(before) & set(after))
                if before[n] != after[n]
            ],
        )


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _versions(packages: list[dict[str, Any]]) -> dict[str, str]:
    return {str(package["name"]): str(package["version"]) for package in packages}


def _sorted(names: set[str]) -> list[str]:
    return sorted(names, key=str.lower)


def _previous(rows: list[RevisionRow], number: int) -> RevisionRow | None:
    older = [row for row in rows if row.number < number]
    return max(older, key=lambda row: row.number) if older else None


def show_installed(
    app: Codenv, actor: Actor, name: str, number: int | None = None
) -> InstalledPackages:
    """The packages of revision `number` (default: the active one) and what changed."""
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
        previous = _previous(list(env.revisions), chosen)
        return InstalledPackages(
            env=env.name,
            revision=chosen,
            packages=sorted(row.installed, key=lambda p: str(p["name"]).lower()),
            diff=PackagesDiff.between(previous, row) if previous else None,
            warnings=list(row.warnings),
        )
