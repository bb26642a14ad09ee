"""Who is calling: every service call takes an Actor and checks its rights once, here.

Global rights come from the actor's groups (computed when it authenticates): administrator,
may create code envs (and manage the ones they own), may manage all code envs. Per env:

* administrators and those who may manage all code envs: everything;
* the owner: everything but deleting;
* `usable_by_all`: use;
* a group grant: its level, `use` < `update` < `manage_users` (each includes the ones before).

An env a user may not use does not exist for them (NotFound, as for a missing name); one they
may use but not change refuses with PermissionDenied.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field, replace

from sqlalchemy.orm import Session

from codenv.domain.errors import AuthenticationFailed as AuthenticationFailed  # noqa: PLC0414 (re-exported)
from codenv.domain.errors import NotFound, PermissionDenied
from codenv.domain.errors import TooManyAttempts as TooManyAttempts  # noqa: PLC0414 (re-exported)
from codenv.domain.names import name_key
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow

# Per-env levels, each including the ones before.
NONE, USE, UPDATE, MANAGE_USERS, FULL = 0, 1, 2, 3, 4
LEVELS: dict[str, int] = {"use": USE, "update": UPDATE, "manage_users": MANAGE_USERS}
LEVEL_NAMES: dict[int, str] = {
    NONE: "none",
    USE: "use",
    UPDATE: "update",
    MANAGE_USERS: "manage_users",
    FULL: "all",
}


@dataclass(frozen=True)
class Actor:
    name: str
    # None for the local CLI administrator, who acts on the home without an account.
    user_id: int | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    may_create: bool = False
    may_manage_all: bool = False
    # Where the call comes from, for the audit log: a client address, or "cli".
    source: str = ""

    @classmethod
    def local_admin(cls) -> Actor:
        """The local CLI acts on `--home` directly, as the node's administrator."""
        return cls(
            name=getpass.getuser(),
            is_admin=True,
            may_create=True,
            may_manage_all=True,
            source="cli",
        )

    @property
    def manages_all(self) -> bool:
        return self.is_admin or self.may_manage_all

    @property
    def group_keys(self) -> frozenset[str]:
        return frozenset(name_key(group) for group in self.groups)

    def from_source(self, source: str) -> Actor:
        return replace(self, source=source)


def owns(actor: Actor, env: CodeEnvRow) -> bool:
    return name_key(env.owner) == name_key(actor.name)


def env_level(actor: Actor, env: CodeEnvRow) -> int:
    """The actor's level on `env` (NONE … FULL); the env's grants are loaded with it."""
    granted = NONE
    if not (actor.manages_all or owns(actor, env)):  # then the grants change nothing
        keys = actor.group_keys
        levels = (LEVELS.get(g.level, NONE) for g in env.grants if g.group.name_key in keys)
        granted = max(levels, default=NONE)
    return level_of(actor, env.owner, env.usable_by_all, granted)


def level_of(actor: Actor, owner: str, usable_by_all: bool, granted: int) -> int:
    """The actor's level on an env of `owner`, given the highest level granted to the
    actor's groups on it (what a page of envs reads as one column)."""
    if actor.manages_all:
        return FULL
    if name_key(owner) == name_key(actor.name):
        return MANAGE_USERS
    return max(USE if usable_by_all else NONE, granted)


def require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"only an administrator may {what}")


def require_create(actor: Actor) -> None:
    if not (actor.is_admin or actor.may_create):
        raise PermissionDenied("you may not create code envs; ask an administrator")


def may_use(actor: Actor, env: CodeEnvRow) -> bool:
    return env_level(actor, env) >= USE


def _not_found(name: str) -> NotFound:
    return NotFound(f"no code env named {name!r}", field="name")


def require_use(actor: Actor, env: CodeEnvRow, asked: str | None = None) -> None:
    # Envs a user may not use do not exist for them: 404, not 403.
    if not may_use(actor, env):
        raise _not_found(asked or env.name)


def require_update(actor: Actor, env: CodeEnvRow, asked: str | None = None) -> None:
    require_use(actor, env, asked)
    if env_level(actor, env) < UPDATE:
        raise PermissionDenied(f"you may not change code env {env.name!r}")


def require_manage_users(actor: Actor, env: CodeEnvRow, asked: str | None = None) -> None:
    require_use(actor, env, asked)
    if env_level(actor, env) < MANAGE_USERS:
        raise PermissionDenied(f"you may not change the permissions of code env {env.name!r}")


def require_delete(actor: Actor, env: CodeEnvRow, asked: str | None = None) -> None:
    require_use(actor, env, asked)
    if not actor.manages_all:
        raise PermissionDenied(
            f"only administrators and users who may manage all code envs may delete "
            f"code env {env.name!r}"
        )


_CHECKS = {
    USE: require_use,
    UPDATE: require_update,
    MANAGE_USERS: require_manage_users,
    FULL: require_delete,
}


def env_for(session: Session, actor: Actor, name: str, need: int = USE) -> CodeEnvRow:
    """The env named `name` when the actor has level `need` on it.

    A missing env and one the actor may not use answer the same NotFound, with the name as
    typed; one they may use but not act on as asked answers PermissionDenied."""
    env = queries.env_by_name(session, name)
    if env is None:
        raise _not_found(name)
    _CHECKS[need](actor, env, name)
    return env
