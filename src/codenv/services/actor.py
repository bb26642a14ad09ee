"""Who is calling: every service call takes an Actor and checks its rights once, here."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from codenv.domain.errors import NotFound, PermissionDenied
from codenv.storage.models import CodeEnvRow


@dataclass(frozen=True)
class Actor:
    name: str
    is_admin: bool = False
    may_create: bool = False

    @classmethod
    def local_admin(cls) -> Actor:
        """The local CLI acts on `--home` directly, as the node's administrator."""
        return cls(name=getpass.getuser(), is_admin=True, may_create=True)


def require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"only an administrator may {what}")


def require_create(actor: Actor) -> None:
    if not (actor.is_admin or actor.may_create):
        raise PermissionDenied("you may not create code envs; ask an administrator")


def may_use(actor: Actor, env: CodeEnvRow) -> bool:
    return actor.is_admin or env.owner == actor.name


def require_use(actor: Actor, env: CodeEnvRow) -> None:
    # Envs a user may not use do not exist for them: 404, not 403.
    if not may_use(actor, env):
        raise NotFound(f"no code env named {env.name!r}", field="name")


def require_update(actor: Actor, env: CodeEnvRow) -> None:
    require_use(actor, env)
    if not (actor.is_admin or env.owner == actor.name):
        raise PermissionDenied(f"you may not change code env {env.name!r}")


def require_delete(actor: Actor, env: CodeEnvRow) -> None:
    require_use(actor, env)
    require_admin(actor, f"delete code env {env.name!r}")
