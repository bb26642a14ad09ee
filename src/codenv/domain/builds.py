"""A build's life: its states, the transitions between them, and how it resolves.

queued → running → succeeded / failed / cancelled; a queued build may also be cancelled, or
failed when it can never run (its env was deleted, its worker died). Nothing leaves a
finished state.
"""

from __future__ import annotations

from enum import StrEnum

from codenv.domain.errors import Conflict


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED})
UNFINISHED = (BuildStatus.QUEUED, BuildStatus.RUNNING)

TRANSITIONS: dict[BuildStatus, frozenset[BuildStatus]] = {
    BuildStatus.QUEUED: frozenset({BuildStatus.RUNNING, BuildStatus.FAILED, BuildStatus.CANCELLED}),
    BuildStatus.RUNNING: FINISHED,
    BuildStatus.SUCCEEDED: frozenset(),
    BuildStatus.FAILED: frozenset(),
    BuildStatus.CANCELLED: frozenset(),
}


def check_transition(current: str, new: BuildStatus) -> BuildStatus:
    """`new`, when a build in state `current` may go there; Conflict otherwise."""
    state = BuildStatus(current)
    if new not in TRANSITIONS[state]:
        raise Conflict(f"a {state.value} build cannot become {new.value}", field="status")
    return new


class BuildKind(StrEnum):
    UPDATE = "update"  # a new revision (Save and update, create, upgrade, rebuild)
    INIT = "init"  # the resources init script, run now in the active revision
    IMPORT = "import"  # a new revision (a version) that installs a bundle's exact lock
    IMAGE = "image"  # a container image of a revision, for one container config


class ResolutionPolicy(StrEnum):
    """How a build turns requirements into a lock."""

    FRESH = "fresh"  # no earlier lock: resolve from scratch
    KEEP_LOCKED = "keep-locked"  # unchanged requirements keep the active revision's versions
    UPGRADE_ALL = "upgrade-all"  # every package at the newest version allowed
    EXACT = "exact"  # a bundle's lock, installed as it is: nothing is resolved

    @classmethod
    def choose(cls, has_previous_lock: bool, upgrade_all: bool) -> ResolutionPolicy:
        if upgrade_all:
            return cls.UPGRADE_ALL
        return cls.KEEP_LOCKED if has_previous_lock else cls.FRESH

    def describe(self) -> str:
        return {
            ResolutionPolicy.FRESH: "first resolution of this env",
            ResolutionPolicy.KEEP_LOCKED: "keeping locked versions",
            ResolutionPolicy.UPGRADE_ALL: "upgrading all packages",
            ResolutionPolicy.EXACT: "installing the bundle's exact lock (nothing is resolved)",
        }[self]
